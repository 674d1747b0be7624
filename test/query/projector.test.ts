// The query side against real PostgreSQL and a real NATS JetStream server: real activities write the services'
// outboxes, the relays publish them, the projector's durable consumers apply them to the views once each.
// Checked: the views equal the service databases once quiet; a redelivered event changes nothing (inbox); a
// poison event is dead-lettered after its last attempt and does not block the events behind it; a database
// outage is waited out, never dead-lettered; a rebuild from the streams equals the incremental views.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { SERVICES, type DatabaseUrls } from '../../src/config';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { createOrdersActivities } from '../../src/activities/orders/activities';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { createPaymentsActivities } from '../../src/activities/payments/activities';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import { httpPaymentProvider } from '../../src/activities/payments/provider';
import { createShippingActivities } from '../../src/activities/shipping/activities';
import { connectShippingDb, type ShippingDb } from '../../src/activities/shipping/db';
import { applyOnce, DurableConsumer, type ConsumedEvent, type DeadLetter } from '../../src/events/consumer';
import { connectNats } from '../../src/events/nats-connection';
import { PollingRelay } from '../../src/events/relay';
import type { SqlPool } from '../../src/events/sql-pool';
import { DEAD_LETTER_STREAM, ensureStreams, streamOf, subjectOf } from '../../src/events/streams';
import { freePort } from '../../src/local-stack/free-port';
import { startNatsServer, type RunningNatsServer } from '../../src/local-stack/nats';
import { createLogger } from '../../src/observability/logging';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { connectQueryDb, type QueryDb } from '../../src/query/db';
import { connectProjectorDb, startProjector, type RunningProjector } from '../../src/query/projector';
import { viewsLag } from '../../src/query/read';
import { rebuildViews } from '../../src/query/rebuild';
import { API_KEY, startReceiver, startTestProvider, tempDataDir, waitFor, type Receiver } from '../payment-provider/support';
import { createQueryDatabase, createServiceDatabases } from '../support/postgres';

describe('query side: events projected into the query database', function () {
  this.timeout(180_000);
  let storeDir: string;
  let server: RunningNatsServer;
  let nc: NatsConnection;
  let urls: DatabaseUrls;
  let queryUrl: string;
  let query: QueryDb;
  /** What the projector writes with, as it runs (connectProjectorDb); `query` reads the views. */
  let projectorDb: SqlPool;
  let dbs: { orders: OrdersDb; inventory: InventoryDb; payments: PaymentsDb; shipping: ShippingDb };
  let relays: PollingRelay[] = [];
  let relayRuns: Promise<void>[] = [];
  let projector: RunningProjector | undefined;
  let receiver: Receiver;
  let providerData: ReturnType<typeof tempDataDir>;
  let sandbox: RunningPaymentProvider;
  let seq = 0;
  const newOrderId = () => `ord_query_${++seq}`;

  before(async function () {
    storeDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-query-'));
    server = await startNatsServer({ port: await freePort(), storeDir });
    nc = await connectNats([server.url], 'query-test');
    await ensureStreams(nc, { replicas: 1 });
    urls = await createServiceDatabases('query_side');
    queryUrl = await createQueryDatabase('query_side');
    query = connectQueryDb(queryUrl);
    projectorDb = connectProjectorDb(queryUrl);
    dbs = {
      orders: connectOrdersDb(urls.orders),
      inventory: connectInventoryDb(urls.inventory),
      payments: connectPaymentsDb(urls.payments),
      shipping: connectShippingDb(urls.shipping),
    };
    relays = SERVICES.map((service) => new PollingRelay({ service, databaseUrl: urls[service], nats: nc }));
    relayRuns = relays.map((relay) => relay.run({ idleMs: 20 }));
    receiver = await startReceiver();
    providerData = tempDataDir();
    sandbox = await startTestProvider({ dataDir: providerData.dir, callbackUrl: receiver.url });
  });

  after(async function () {
    await projector?.stop();
    for (const relay of relays) relay.stop();
    await Promise.all(relayRuns);
    await Promise.all(relays.map((relay) => relay.close()));
    await sandbox?.stop();
    await receiver?.close();
    providerData?.remove();
    await Promise.all([query, ...Object.values(dbs ?? {})].filter(Boolean).map((db) => db.$disconnect()));
    await projectorDb?.end();
    await nc?.close();
    await server?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  /** Waits until every outbox row is published and the projector has applied everything on the streams. */
  async function quiet(): Promise<void> {
    await waitFor(
      async () => {
        for (const db of Object.values(dbs)) {
          const [{ backlog }] = await db.$queryRaw<{ backlog: bigint }[]>`SELECT count(*) AS backlog FROM outbox WHERE published_at IS NULL`;
          if (backlog > 0n) return false;
        }
        return (await viewsLag(query, nc)).pendingEvents === 0;
      },
      60_000,
      'the views to catch up with the outboxes',
    );
  }

  /** What the service databases say about every order, product and customer, in the views' terms. */
  async function truthFromServices() {
    const [orders, reservations, payments, shipments, products, customers] = await Promise.all([
      dbs.orders.order.findMany({ include: { lines: true } }),
      dbs.inventory.reservation.findMany(),
      dbs.payments.payment.findMany(),
      dbs.shipping.shipment.findMany(),
      dbs.inventory.product.findMany({ orderBy: { sku: 'asc' } }),
      dbs.payments.customer.findMany({ orderBy: { id: 'asc' } }),
    ]);
    const ids = [...new Set([...orders, ...reservations, ...payments, ...shipments].map((row) => ('orderId' in row ? row.orderId : row.id)))].sort();
    return {
      orders: ids.map((orderId) => {
        const order = orders.find((row) => row.id === orderId);
        return {
          orderId,
          status: order?.status ?? null,
          customerId: order?.customerId ?? null,
          totalCents: order?.totalCents ?? null,
          reservation: reservations.find((row) => row.orderId === orderId)?.status ?? null,
          payment: payments.find((row) => row.orderId === orderId)?.status ?? null,
          shipment: shipments.find((row) => row.orderId === orderId)?.status ?? null,
        };
      }),
      products: products.map(({ sku, name, priceCents, onHand }) => ({ sku, name, priceCents, onHand })),
      customers: customers.map(({ id, name, creditLimitCents, creditUsedCents }) => ({ id, name, creditLimitCents, creditUsedCents })),
    };
  }

  async function views() {
    const [orders, products, customers] = await Promise.all([
      query.orderView.findMany({ orderBy: { orderId: 'asc' } }),
      query.productView.findMany({ orderBy: { sku: 'asc' } }),
      query.customerView.findMany({ orderBy: { id: 'asc' } }),
    ]);
    return {
      orders: orders.map((row) => ({
        orderId: row.orderId,
        status: row.status,
        customerId: row.customerId,
        totalCents: row.totalCents,
        reservation: row.reservationStatus,
        payment: row.paymentStatus,
        shipment: row.shipmentStatus,
      })),
      products: products.map(({ sku, name, priceCents, onHand }) => ({ sku, name, priceCents, onHand })),
      customers: customers.map(({ id, name, creditLimitCents, creditUsedCents }) => ({ id, name, creditLimitCents, creditUsedCents })),
    };
  }

  /** A few orders through the real activities, ending in every way the services know. */
  async function workload(count: number): Promise<void> {
    const inventory = createInventoryActivities(dbs.inventory);
    const orders = createOrdersActivities(dbs.orders);
    const payments = createPaymentsActivities(dbs.payments, httpPaymentProvider({ url: sandbox.url, apiKey: API_KEY, timeoutMs: 3_000 }));
    const shipping = createShippingActivities(dbs.shipping);
    for (let i = 0; i < count; i++) {
      const orderId = newOrderId();
      const lines = [{ sku: i % 2 ? 'MS-002' : 'CB-005', quantity: 1 + (i % 3) }];
      const { totalCents } = await orders.createOrder({ orderId, customerId: 'cust-alice', lines: await inventory.priceOrder(lines) });
      await inventory.reserveStock({ orderId, lines });
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: totalCents });
      await shipping.scheduleShipment({ orderId, lines });
      if (i % 3 === 0) {
        // Compensated in reverse.
        await shipping.cancelShipment({ orderId });
        await payments.voidPayment({ orderId, customerId: 'cust-alice' });
        await inventory.releaseStock({ orderId });
        await orders.closeOrder({ orderId, customerId: 'cust-alice', lines, status: 'CANCELLED', completedSteps: [], compensations: ['releaseStock'] });
      } else {
        await shipping.dispatchShipment({ orderId });
        await inventory.consumeReservation({ orderId });
        await orders.closeOrder({ orderId, customerId: 'cust-alice', lines, status: 'COMPLETED', completedSteps: ['reserveStock'], compensations: [] });
      }
    }
  }

  it('keeps every view equal to the service databases, each event applied once', async function () {
    projector = startProjector({ nats: nc, db: projectorDb });
    await workload(6);
    await quiet();
    const truth = await truthFromServices();
    assert.equal(truth.orders.length, 6);
    assert.deepEqual(await views(), truth);
    // Each published event is in the inbox exactly once (its primary key), and nothing was dead-lettered.
    const jsm = await jetstreamManager(nc);
    let published = 0;
    for (const service of SERVICES) published += (await jsm.streams.info(streamOf(service))).state.messages;
    assert.equal(await query.inboxEntry.count({ where: { deadLetter: null } }), published);
  });

  it('changes nothing when an event is delivered again (the inbox)', async function () {
    const [entry] = await query.inboxEntry.findMany({ where: { eventType: 'OrderCreated' }, take: 1 });
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(entry.stream, { seq: Number(entry.streamSequence) });
    const event: ConsumedEvent = { envelope: stored!.json(), stream: entry.stream, streamSequence: Number(entry.streamSequence), deliveries: 2 };
    let effects = 0;
    const applied = await applyOnce(projectorDb, 'query-orders', event, async () => {
      effects++;
    });
    assert.equal(applied, false);
    assert.equal(effects, 0);

    // And end to end: the same event published again under another message id (so the broker lets it through).
    const before = await views();
    const inboxBefore = await query.inboxEntry.count();
    await jetstream(nc).publish(subjectOf('orders', event.envelope.type), JSON.stringify(event.envelope), { msgID: `replay-${event.envelope.id}` });
    await quiet();
    assert.deepEqual(await views(), before);
    assert.equal(await query.inboxEntry.count(), inboxBefore);
  });

  it('dead-letters a poison event after its last attempt, reports it, and goes on with the next ones', async function () {
    await projector?.stop();
    const lines: string[] = [];
    projector = startProjector({ nats: nc, db: projectorDb, maxDeliveries: 3, logger: createLogger({ service: 'test', destination: { write: (line: string) => void lines.push(line) } }) });
    const poisonId = '00000000-0000-4000-8000-000000000001';
    // A total that is no number: the projection fails the same way on every attempt.
    const poison = { service: 'orders', id: poisonId, aggregateType: 'Order', aggregateId: 'ord_poison', sequence: 1, type: 'OrderCreated', correlationId: 'ord_poison', occurredAt: new Date().toISOString(), payload: { orderId: 'ord_poison', customerId: 'cust-bob', lines: [], totalCents: 'lots' } };
    await jetstream(nc).publish(subjectOf('orders', 'OrderCreated'), JSON.stringify(poison), { msgID: poisonId });
    await workload(1); // behind the poison on the orders stream
    await quiet();

    const letter = await query.inboxEntry.findUnique({ where: { consumer_eventId: { consumer: 'query-orders', eventId: poisonId } } });
    assert.ok(letter?.deadLetter, 'the poison event is recorded as dead-lettered');
    const jsm = await jetstreamManager(nc);
    const dead = await jsm.streams.getMessage(DEAD_LETTER_STREAM, { last_by_subj: 'deadletter.query-orders' });
    const body = dead!.json<DeadLetter>();
    assert.equal('id' in body.event && body.event.id, poisonId);
    assert.match(body.reason, /lots|invalid|integer/i);
    const deadLetterLine = lines.map((line) => JSON.parse(line)).find((entry) => /DEAD LETTER/.test(entry.msg));
    assert.ok(deadLetterLine, 'the dead letter is logged');
    // With the event, its order and the consumer (src/observability/logging.ts, eventLogFields).
    assert.deepEqual(
      [deadLetterLine.level, deadLetterLine.component, deadLetterLine.consumer, deadLetterLine.eventId, deadLetterLine.orderId],
      ['error', 'consumer', 'query-orders', poisonId, 'ord_poison'],
    );
    assert.equal(await query.orderView.count({ where: { orderId: 'ord_poison' } }), 0);
    // The order behind it was applied.
    assert.deepEqual(await views(), await truthFromServices());
  });

  it('waits out a database outage instead of dead-lettering', async function () {
    await projector?.stop();
    let outage = 4; // more failing attempts than maxDeliveries
    const consumer = new DurableConsumer({
      nats: nc,
      name: 'outage-test',
      stream: streamOf('inventory'),
      maxDeliveries: 2,
      handle: async () => {
        if (outage-- > 0) throw Object.assign(new Error("Can't reach database server"), { code: 'P1001' });
      },
    });
    const run = consumer.run();
    await waitFor(() => consumer.counts.applied > 0, 60_000, 'the first event to be applied after the outage');
    consumer.stop();
    await run;
    assert.equal(consumer.counts.deadLettered, 0);
    projector = startProjector({ nats: nc, db: projectorDb });
  });

  it('rebuilds views equal to the incrementally maintained ones', async function () {
    await workload(3);
    await quiet();
    const incremental = await views();
    const inbox = await query.inboxEntry.count();
    const report = await rebuildViews(query, nc);
    assert.deepEqual(await views(), incremental);
    assert.equal(await query.inboxEntry.count(), inbox);
    assert.equal(report.deadLettered.length, 1, 'the poison event again, recorded with its reason');
    // The live projector goes on after the rebuild.
    await workload(1);
    await quiet();
    assert.deepEqual(await views(), await truthFromServices());
  });
});
