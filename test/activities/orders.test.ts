// Order activities against a real PostgreSQL: one order record per order id however often createOrder runs,
// and closeOrder records where the saga ended, creating the record if the saga never got to createOrder.
import assert from 'node:assert/strict';
import { createOrdersActivities, type CloseOrderInput, type OrdersActivities } from '../../src/activities/orders/activities';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { findOrder } from '../../src/activities/orders/read-model';
import { createServiceDatabases } from '../support/postgres';
import { concurrently } from './refusals';

describe('order activities (PostgreSQL)', function () {
  let db: OrdersDb;
  let orders: OrdersActivities;
  let sequence = 0;
  const newOrderId = () => `ord_test_${++sequence}`;
  const priced = [
    { sku: 'MS-002', quantity: 2, unitPriceCents: 2_900 },
    { sku: 'KB-001', quantity: 1, unitPriceCents: 8_900 },
  ];
  const pricedTotal = 2 * 2_900 + 8_900;

  before(async function () {
    const urls = await createServiceDatabases('act_orders');
    db = connectOrdersDb(urls.orders);
    orders = createOrdersActivities(db);
  });

  after(async function () {
    await db?.$disconnect();
  });

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  describe('createOrder', function () {
    it('records a PENDING order with its priced lines and total; run twice returns the same result and keeps one record', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', lines: priced };

      const first = await orders.createOrder(input);
      const recorded = await findOrder(db, orderId);
      await pause(20);
      const second = await orders.createOrder(input);

      assert.deepEqual(first, { orderId, totalCents: pricedTotal });
      assert.deepEqual(second, first);
      assert.deepEqual(await findOrder(db, orderId), recorded, 'the second call changes nothing');
      assert.equal(recorded?.status, 'PENDING');
      assert.equal(recorded.customerId, 'cust-alice');
      assert.equal(recorded.totalCents, pricedTotal);
      assert.equal(recorded.closedAt, null);
      assert.deepEqual(recorded.lines, [
        { sku: 'KB-001', quantity: 1, unitPriceCents: 8_900 },
        { sku: 'MS-002', quantity: 2, unitPriceCents: 2_900 },
      ]);
    });

    it('run 5 times concurrently keeps one record with its lines once', async function () {
      const orderId = newOrderId();
      const results = await concurrently(5, () => orders.createOrder({ orderId, customerId: 'cust-bob', lines: priced }));
      assert.deepEqual(results, Array(5).fill({ orderId, totalCents: pricedTotal }));
      assert.equal(await db.order.count({ where: { id: orderId } }), 1);
      assert.equal(await db.orderLine.count({ where: { orderId } }), priced.length);
    });
  });

  describe('an order that ended under another saga (Temporal forgot the first, a replayed request started a second)', function () {
    const sorted = [...priced].sort((a, b) => a.sku.localeCompare(b.sku));
    /** How endedOrder's orders end, as their record answers a saga started again for them. */
    const ended = {
      status: 'REJECTED' as const,
      failureReason: 'out of stock: MS-002',
      completedSteps: ['ORDER_CREATED'],
      compensations: ['STOCK_RELEASED'],
      totalCents: pricedTotal,
      lines: sorted,
    };
    /** An order placed and closed by the saga whose first run id is `sagaRunId`. */
    async function endedOrder(sagaRunId: string | undefined): Promise<string> {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced, sagaRunId });
      const { status, failureReason, completedSteps, compensations } = ended;
      await orders.closeOrder({ orderId, customerId: 'cust-alice', lines: priced, sagaRunId, status, failureReason, completedSteps, compensations });
      return orderId;
    }
    const snapshot = async (orderId: string) => ({
      record: await findOrder(db, orderId),
      row: await db.order.findUnique({ where: { id: orderId } }),
      events: await db.orderStreamEvent.count({ where: { rootId: orderId } }),
      outbox: await db.outboxEvent.count({ where: { aggregateId: orderId } }),
    });

    it('createOrder answers the other saga with the order\'s record and changes nothing', async function () {
      const orderId = await endedOrder('run-first');
      const before = await snapshot(orderId);
      assert.equal(before.row?.sagaRunId, 'run-first', 'the order records the saga that placed it');

      // The second saga's request may even differ (its pricing ran again): the record is what answers.
      const second = await orders.createOrder({ orderId, customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 5, unitPriceCents: 9_900 }], sagaRunId: 'run-second' });

      assert.deepEqual(second, {
        orderId,
        totalCents: pricedTotal,
        closedByAnotherSaga: ended,
      });
      assert.deepEqual(await snapshot(orderId), before);
    });

    it('closeOrder from the other saga leaves the recorded end and answers with it; from the saga that placed it (a reset) it replaces it', async function () {
      const orderId = await endedOrder('run-first');
      const before = await snapshot(orderId);
      const close = (sagaRunId: string) =>
        orders.closeOrder({ orderId, customerId: 'cust-alice', lines: priced, sagaRunId, status: 'COMPLETED', completedSteps: ['ORDER_CREATED', 'STOCK_RESERVED'], compensations: [] });

      assert.deepEqual(await close('run-second'), { closedByAnotherSaga: ended }, 'the other saga is answered with the record');
      assert.deepEqual(await snapshot(orderId), before, 'the other saga changes nothing');
      assert.deepEqual(await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced, sagaRunId: 'run-first' }), { orderId, totalCents: pricedTotal }, 'its own saga gets no record');

      await close('run-first');
      const after = await snapshot(orderId);
      assert.equal(after.record?.status, 'COMPLETED', 'a reset of the same saga may end the order otherwise');
      assert.equal(after.events, before.events + 1);
    });

    it('an order placed before sagas were recorded, or a caller that does not say, is treated as before', async function () {
      const unrecorded = await endedOrder(undefined);
      assert.deepEqual(await orders.createOrder({ orderId: unrecorded, customerId: 'cust-alice', lines: priced, sagaRunId: 'run-second' }), { orderId: unrecorded, totalCents: pricedTotal });
      const recorded = await endedOrder('run-first');
      assert.deepEqual(await orders.createOrder({ orderId: recorded, customerId: 'cust-alice', lines: priced }), { orderId: recorded, totalCents: pricedTotal });
    });
  });

  describe('closeOrder', function () {
    it('records the outcome on the existing order, leaving its lines and total alone', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced });
      const input: CloseOrderInput = {
        orderId,
        customerId: 'cust-alice',
        lines: priced,
        status: 'COMPLETED',
        completedSteps: ['ORDER_CREATED', 'STOCK_RESERVED', 'PAYMENT_AUTHORIZED'],
        compensations: [],
      };

      await orders.closeOrder(input);

      const record = await findOrder(db, orderId);
      assert.equal(record?.status, 'COMPLETED');
      assert.equal(record.failureReason, null);
      assert.deepEqual(record.completedSteps, input.completedSteps);
      assert.deepEqual(record.compensations, []);
      assert.ok(record.closedAt, 'closedAt is set');
      assert.equal(record.totalCents, pricedTotal);
      assert.equal(record.lines.length, priced.length);
      assert.equal(await db.orderLine.count({ where: { orderId } }), priced.length);
    });

    it('run twice leaves the same record as once (the retry changes nothing, not even closedAt)', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced });
      const input: CloseOrderInput = {
        orderId,
        customerId: 'cust-alice',
        lines: priced,
        status: 'REJECTED',
        failureReason: 'payment declined: insufficient credit',
        completedSteps: ['ORDER_CREATED', 'STOCK_RESERVED'],
        compensations: ['PAYMENT_VOIDED', 'STOCK_RELEASED'],
      };

      await orders.closeOrder(input);
      const once = await findOrder(db, orderId);
      await pause(20);
      await orders.closeOrder(input);

      assert.equal(once?.status, 'REJECTED');
      assert.equal(once.failureReason, 'payment declined: insufficient credit');
      assert.deepEqual(once.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
      assert.deepEqual(await findOrder(db, orderId), once);
    });

    it('a close with a different outcome (a reset workflow ending otherwise) replaces the recorded one', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced });
      const base = { orderId, customerId: 'cust-alice', lines: priced, compensations: [] };
      await orders.closeOrder({ ...base, status: 'REJECTED', failureReason: 'rejected by manager', completedSteps: ['ORDER_CREATED'] });

      await orders.closeOrder({ ...base, status: 'COMPLETED', completedSteps: ['ORDER_CREATED', 'APPROVED'] });

      const record = await findOrder(db, orderId);
      assert.equal(record?.status, 'COMPLETED');
      assert.equal(record.failureReason, null);
      assert.deepEqual(record.completedSteps, ['ORDER_CREATED', 'APPROVED']);
      assert.equal(await db.order.count({ where: { id: orderId } }), 1);
    });

    it('creates the order record when createOrder never ran (the saga ended at pricing), once however often it runs', async function () {
      const orderId = newOrderId();
      const input: CloseOrderInput = {
        orderId,
        customerId: 'cust-carol',
        // Pricing failed: the lines carry no prices.
        lines: [
          { sku: 'NOPE-404', quantity: 1 },
          { sku: 'KB-001', quantity: 2 },
        ],
        status: 'REJECTED',
        failureReason: 'unknown SKU: NOPE-404',
        completedSteps: [],
        compensations: [],
      };

      await orders.closeOrder(input);
      const once = await findOrder(db, orderId);
      await pause(20);
      await orders.closeOrder(input);

      assert.deepEqual(await findOrder(db, orderId), once);
      assert.equal(once?.status, 'REJECTED');
      assert.equal(once.customerId, 'cust-carol');
      assert.equal(once.failureReason, 'unknown SKU: NOPE-404');
      assert.equal(once.totalCents, 0);
      assert.ok(once.closedAt);
      assert.deepEqual(once.lines, [
        { sku: 'KB-001', quantity: 2, unitPriceCents: 0 },
        { sku: 'NOPE-404', quantity: 1, unitPriceCents: 0 },
      ]);
      assert.equal(await db.order.count({ where: { id: orderId } }), 1);
      assert.equal(await db.orderLine.count({ where: { orderId } }), 2);
    });

    it('creates the record with priced lines and their total when the saga ended after pricing but before createOrder', async function () {
      const orderId = newOrderId();
      await orders.closeOrder({
        orderId,
        customerId: 'cust-alice',
        lines: priced,
        status: 'CANCELLED',
        failureReason: 'changed my mind',
        completedSteps: [],
        compensations: [],
      });

      const record = await findOrder(db, orderId);
      assert.equal(record?.status, 'CANCELLED');
      assert.equal(record.totalCents, pricedTotal);
      assert.deepEqual(
        record.lines,
        [...priced].sort((a, b) => a.sku.localeCompare(b.sku)),
      );

      // A createOrder attempt committing late must not reopen or duplicate the closed order.
      assert.deepEqual(await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced }), { orderId, totalCents: pricedTotal });
      assert.deepEqual(await findOrder(db, orderId), record);
    });
  });
});
