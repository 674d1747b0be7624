// The transactional outbox against real PostgreSQL: every state change of every service records its event in
// the same local transaction, a repeated call records nothing more, sequences run 1, 2, 3… per aggregate, and a
// transaction that fails at its commit (after both writes) leaves neither the change nor its event.
import assert from 'node:assert/strict';
import type { DatabaseUrls } from '../../src/config';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { createOrdersActivities } from '../../src/activities/orders/activities';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { createPaymentsActivities } from '../../src/activities/payments/activities';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import { httpPaymentProvider } from '../../src/activities/payments/provider';
import { createShippingActivities } from '../../src/activities/shipping/activities';
import { connectShippingDb, type ShippingDb } from '../../src/activities/shipping/db';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { API_KEY, decide, startReceiver, startTestProvider, tempDataDir, type Receiver } from '../payment-provider/support';
import type { OutboxRow as StoredOutboxRow } from '../../src/events/relay';
import { createServiceDatabases } from '../support/postgres';
import { sql } from '../support/sql';

/** The columns of an outbox row these tests read. */
type OutboxRow = Pick<StoredOutboxRow, 'aggregate_type' | 'aggregate_id' | 'sequence' | 'type' | 'payload' | 'correlation_id'>;

describe('transactional outbox (PostgreSQL)', function () {
  let urls: DatabaseUrls;
  let ordersDb: OrdersDb;
  let inventoryDb: InventoryDb;
  let paymentsDb: PaymentsDb;
  let shippingDb: ShippingDb;
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  let sandbox: RunningPaymentProvider;
  let sequence = 0;
  const newOrderId = () => `ord_outbox_${++sequence}`;

  before(async function () {
    urls = await createServiceDatabases('outbox');
    ordersDb = connectOrdersDb(urls.orders);
    inventoryDb = connectInventoryDb(urls.inventory);
    paymentsDb = connectPaymentsDb(urls.payments);
    shippingDb = connectShippingDb(urls.shipping);
    receiver = await startReceiver();
    data = tempDataDir();
    sandbox = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
  });

  after(async function () {
    await Promise.all([ordersDb?.$disconnect(), inventoryDb?.$disconnect(), paymentsDb?.$disconnect(), shippingDb?.$disconnect()]);
    await sandbox?.stop();
    await receiver?.close();
    data?.remove();
  });

  const activities = () => ({
    orders: createOrdersActivities(ordersDb),
    inventory: createInventoryActivities(inventoryDb),
    payments: createPaymentsActivities(paymentsDb, httpPaymentProvider({ url: sandbox.url, apiKey: API_KEY, timeoutMs: 3_000 })),
    shipping: createShippingActivities(shippingDb),
  });

  /** The events an order left in one service's outbox, in the order they were written. */
  const eventsOf = (url: string, orderId: string) =>
    sql<OutboxRow>(url, `SELECT aggregate_type, aggregate_id, sequence, type, payload, correlation_id FROM outbox WHERE aggregate_id = '${orderId}' ORDER BY position`);
  const typesOf = async (url: string, orderId: string) => (await eventsOf(url, orderId)).map((event) => `${event.sequence}:${event.type}`);

  it('records one event per change, in the same order, however often each activity runs', async function () {
    const { orders, inventory, payments, shipping } = activities();
    const orderId = newOrderId();
    const lines = [{ sku: 'CB-005', quantity: 2, unitPriceCents: 900 }];
    for (let run = 0; run < 2; run++) {
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines });
      await inventory.reserveStock({ orderId, lines: [{ sku: 'CB-005', quantity: 2 }] });
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 1_800 });
      await shipping.scheduleShipment({ orderId, lines: [{ sku: 'CB-005', quantity: 2 }] });
    }
    await decide(sandbox.url, `pay_${orderId}`, 'CONFIRMED');
    for (let run = 0; run < 2; run++) {
      await shipping.dispatchShipment({ orderId });
      await payments.capturePayment({ orderId });
      await inventory.consumeReservation({ orderId });
      await orders.closeOrder({ orderId, customerId: 'cust-alice', lines, status: 'COMPLETED', completedSteps: ['ORDER_CREATED'], compensations: [] });
    }
    assert.deepEqual(await typesOf(urls.orders, orderId), ['1:OrderCreated', '2:OrderClosed']);
    assert.deepEqual(await typesOf(urls.inventory, orderId), ['1:StockReserved', '2:ReservationConsumed']);
    assert.deepEqual(await typesOf(urls.payments, orderId), ['1:PaymentAuthorized', '2:PaymentCaptured']);
    assert.deepEqual(await typesOf(urls.shipping, orderId), ['1:ShipmentScheduled', '2:ShipmentDispatched']);

    const [created] = await eventsOf(urls.orders, orderId);
    assert.equal(created.aggregate_type, 'Order');
    assert.equal(created.aggregate_id, orderId);
    assert.equal(created.correlation_id, orderId);
    assert.deepEqual(created.payload, { orderId, customerId: 'cust-alice', clientId: null, lines, totalCents: 1_800 });
    const [reserved] = await eventsOf(urls.inventory, orderId);
    assert.deepEqual(reserved.payload, { orderId, lines: [{ sku: 'CB-005', quantity: 2 }] });
    const [authorized] = await eventsOf(urls.payments, orderId);
    assert.deepEqual(authorized.payload, { orderId, customerId: 'cust-alice', amountCents: 1_800, providerRef: `pay_${orderId}` });
    // The product's and the customer's new state, in the same transactions, correlated with the order.
    const caused = async (url: string) =>
      (await sql<OutboxRow>(url, `SELECT aggregate_type, aggregate_id, sequence, type, payload, correlation_id FROM outbox WHERE correlation_id = '${orderId}' AND aggregate_id <> '${orderId}' ORDER BY position`)).map(
        (event) => `${event.aggregate_type}:${event.aggregate_id}:${event.type}`,
      );
    assert.deepEqual(await caused(urls.inventory), ['Product:CB-005:StockLevelChanged']);
    assert.deepEqual(await caused(urls.payments), ['Customer:cust-alice:CustomerCreditChanged']);
  });

  it('records the compensations, and a compensation that ran first (a tombstone) as such', async function () {
    const { inventory, payments, shipping } = activities();
    const undone = newOrderId();
    await inventory.reserveStock({ orderId: undone, lines: [{ sku: 'MS-002', quantity: 1 }] });
    await payments.authorizePayment({ orderId: undone, customerId: 'cust-alice', amountCents: 2_900 });
    await shipping.scheduleShipment({ orderId: undone, lines: [{ sku: 'MS-002', quantity: 1 }] });
    for (let run = 0; run < 2; run++) {
      await shipping.cancelShipment({ orderId: undone });
      await payments.voidPayment({ orderId: undone, customerId: 'cust-alice' });
      await inventory.releaseStock({ orderId: undone });
    }
    assert.deepEqual(await typesOf(urls.inventory, undone), ['1:StockReserved', '2:StockReleased']);
    assert.deepEqual(await typesOf(urls.payments, undone), ['1:PaymentAuthorized', '2:PaymentVoided']);
    assert.deepEqual(await typesOf(urls.shipping, undone), ['1:ShipmentScheduled', '2:ShipmentCancelled']);
    const [, released] = await eventsOf(urls.inventory, undone);
    assert.deepEqual(released.payload, { orderId: undone, lines: [{ sku: 'MS-002', quantity: 1 }], beforeReservation: false });

    const early = newOrderId();
    await inventory.releaseStock({ orderId: early });
    await inventory.reserveStock({ orderId: early, lines: [{ sku: 'MS-002', quantity: 1 }] }); // late: changes nothing
    await shipping.cancelShipment({ orderId: early });
    await shipping.scheduleShipment({ orderId: early, lines: [{ sku: 'MS-002', quantity: 1 }] });
    assert.deepEqual(await typesOf(urls.inventory, early), ['1:StockReleased']);
    assert.equal((await eventsOf(urls.inventory, early))[0].payload.beforeReservation, true);
    assert.deepEqual(await typesOf(urls.shipping, early), ['1:ShipmentCancelled']);
  });

  it('records attention and its resolution only when they change', async function () {
    const { orders } = activities();
    const orderId = newOrderId();
    const identity = { orderId, customerId: 'cust-bob', lines: [{ sku: 'KB-001', quantity: 1, unitPriceCents: 8_900 }] };
    await orders.createOrder(identity);
    const attention = { phase: 'FORWARD' as const, step: 'reserveStock', error: 'boom', errorType: 'Error', since: '2026-12-03T08:00:00.000Z', allowedActions: ['retry' as const, 'abort' as const] };
    await orders.recordAttention({ ...identity, attention });
    await orders.recordAttention({ ...identity, attention });
    await orders.recordAttention({ ...identity, attention: null });
    await orders.recordAttention({ ...identity, attention: null });
    assert.deepEqual(await typesOf(urls.orders, orderId), ['1:OrderCreated', '2:OrderNeedsAttention', '3:OrderResumed']);
  });

  describe('a transaction that fails at its commit, after the change and its event were written', function () {
    // A deferred constraint trigger on the outbox fails the commit for marked aggregates: the fault lands after
    // every statement of the transaction succeeded, the last moment anything could go wrong.
    const FAIL_AT_COMMIT = `
      CREATE OR REPLACE FUNCTION fail_at_commit() RETURNS trigger AS $$
      BEGIN
        IF NEW.aggregate_id LIKE 'ord_failcommit_%' THEN RAISE EXCEPTION 'injected failure at commit'; END IF;
        RETURN NULL;
      END $$ LANGUAGE plpgsql;
      DROP TRIGGER IF EXISTS fail_at_commit ON outbox;
      CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON outbox DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION fail_at_commit();`;
    const REMOVE = 'DROP TRIGGER IF EXISTS fail_at_commit ON outbox';

    before(async function () {
      for (const url of Object.values(urls)) await sql(url, FAIL_AT_COMMIT);
    });

    it('leaves neither the change nor its event, in every service; the retry records both once', async function () {
      // Clients of their own: a transaction whose COMMIT fails keeps its pooled connection checked out (seen with
      // @prisma/adapter-pg 6.19), so these pools could never be closed; they are left to the end of the process.
      const own = { orders: connectOrdersDb(urls.orders), inventory: connectInventoryDb(urls.inventory), payments: connectPaymentsDb(urls.payments), shipping: connectShippingDb(urls.shipping) };
      const orders = createOrdersActivities(own.orders);
      const inventory = createInventoryActivities(own.inventory);
      const payments = createPaymentsActivities(own.payments, httpPaymentProvider({ url: sandbox.url, apiKey: API_KEY, timeoutMs: 3_000 }));
      const shipping = createShippingActivities(own.shipping);
      const orderId = 'ord_failcommit_1';
      const stockBefore = (await inventoryDb.product.findUniqueOrThrow({ where: { sku: 'KB-001' } })).onHand;
      const creditBefore = (await paymentsDb.customer.findUniqueOrThrow({ where: { id: 'cust-alice' } })).creditUsedCents;
      const calls = [
        () => orders.createOrder({ orderId, customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1, unitPriceCents: 8_900 }] }),
        () => inventory.reserveStock({ orderId, lines: [{ sku: 'KB-001', quantity: 1 }] }),
        () => payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 8_900 }),
        () => shipping.scheduleShipment({ orderId, lines: [{ sku: 'KB-001', quantity: 1 }] }),
      ];
      for (const call of calls) await assert.rejects(call(), /injected failure at commit/);

      assert.equal(await ordersDb.order.count({ where: { id: orderId } }), 0);
      assert.equal(await inventoryDb.reservation.count({ where: { orderId } }), 0);
      assert.equal((await inventoryDb.product.findUniqueOrThrow({ where: { sku: 'KB-001' } })).onHand, stockBefore);
      assert.equal(await paymentsDb.payment.count({ where: { orderId } }), 0);
      assert.equal((await paymentsDb.customer.findUniqueOrThrow({ where: { id: 'cust-alice' } })).creditUsedCents, creditBefore);
      assert.equal(await shippingDb.shipment.count({ where: { orderId } }), 0);
      for (const url of Object.values(urls)) assert.deepEqual(await eventsOf(url, orderId), []);

      for (const url of Object.values(urls)) await sql(url, REMOVE);
      for (const call of calls) await call();
      assert.deepEqual(await typesOf(urls.orders, orderId), ['1:OrderCreated']);
      assert.deepEqual(await typesOf(urls.inventory, orderId), ['1:StockReserved']);
      assert.deepEqual(await typesOf(urls.payments, orderId), ['1:PaymentAuthorized']);
      assert.deepEqual(await typesOf(urls.shipping, orderId), ['1:ShipmentScheduled']);
    });
  });
});
