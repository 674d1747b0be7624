// The order as its event list, against a real PostgreSQL: every change the orders service makes, and every fact
// another service's event tells it, is appended to the order's stream with the next sequence, and the snapshot
// row the service reports always equals the fold of the stream. Two writers cannot both append sequence n; a
// writer that lost the race starts over; a redelivered event changes nothing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createOrdersActivities, type OrdersActivities } from '../../src/activities/orders/activities';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { connectFactsDb, recordOrderFact } from '../../src/activities/orders/facts-consumer';
import type { SqlPool } from '../../src/events/sql-pool';
import { appendToOrderStream, foldOrder, OrderStreamConflict, readOrderStream } from '../../src/activities/orders/order-stream';
import { findOrder, stateOfRecord } from '../../src/activities/orders/read-model';
import type { ConsumedEvent } from '../../src/events/consumer';
import type { EventEnvelope } from '../../src/events/relay';
import { createServiceDatabases } from '../support/postgres';

describe('the order as its event list (PostgreSQL)', function () {
  let db: OrdersDb;
  /** What the orders service's consumers write with (connectFactsDb). */
  let factsDb: SqlPool;
  let orders: OrdersActivities;
  let sequence = 0;
  const newOrderId = () => `ord_stream_${++sequence}`;
  const lines = [
    { sku: 'MS-002', quantity: 2, unitPriceCents: 2_900 },
    { sku: 'KB-001', quantity: 1, unitPriceCents: 8_900 },
  ];

  before(async function () {
    const { orders: url } = await createServiceDatabases('order_stream');
    db = connectOrdersDb(url);
    factsDb = connectFactsDb(url);
    orders = createOrdersActivities(db);
  });

  after(async function () {
    await db?.$disconnect();
    await factsDb?.end();
  });

  /** The stream's event types, in sequence order. */
  const types = async (orderId: string) => (await readOrderStream(db, orderId)).map((event) => event.type);

  /** The fold of the order's stream equals what the service reports for it. */
  async function assertFoldEqualsReport(orderId: string): Promise<void> {
    const record = await findOrder(db, orderId);
    assert.ok(record, `order ${orderId} is recorded`);
    assert.deepEqual(foldOrder(await readOrderStream(db, orderId)), stateOfRecord(record));
  }

  /** Another service's event about an order, as the orders service's consumer receives it. */
  let streamSequence = 0;
  function delivered(service: string, aggregateType: string, orderId: string, type: string, payload: Record<string, unknown> = {}): ConsumedEvent {
    const envelope: EventEnvelope = {
      id: randomUUID(),
      service: service as EventEnvelope['service'],
      aggregateType,
      aggregateId: orderId,
      sequence: 1,
      type,
      payload: { orderId, ...payload },
      correlationId: orderId,
      occurredAt: new Date().toISOString(),
    };
    return { envelope, stream: `${service.toUpperCase()}_EVENTS`, streamSequence: ++streamSequence, deliveries: 1 };
  }

  describe('fold', function () {
    const event = (sequence: number, type: string, payload: Record<string, unknown> = {}) => ({ orderId: 'ord_f', sequence, type, payload });
    const created = event(1, 'OrderCreated', { customerId: 'cust-alice', clientId: 'shop', lines, totalCents: 14_700 });

    it('rebuilds the state event by event: created, approval, the other services\' facts, closed', function () {
      const state = foldOrder([
        created,
        event(2, 'ApprovalRequested', { totalCents: 14_700 }),
        event(3, 'ApprovalDecided', { approved: true, manager: 'maria' }),
        event(4, 'StockReserved'),
        event(5, 'PaymentAuthorized', { amountCents: 14_700 }),
        event(6, 'ShipmentScheduled'),
        event(7, 'ReservationConsumed'),
        event(8, 'PaymentCaptured'),
        event(9, 'ShipmentDispatched', { trackingCode: 'T1' }),
        event(10, 'OrderClosed', { status: 'COMPLETED', failureReason: null, completedSteps: ['ORDER_CREATED'], compensations: [] }),
      ]);
      assert.deepEqual(state, {
        orderId: 'ord_f',
        version: 10,
        customerId: 'cust-alice',
        clientId: 'shop',
        status: 'COMPLETED',
        totalCents: 14_700,
        lines: [lines[1], lines[0]],
        failureReason: null,
        completedSteps: ['ORDER_CREATED'],
        compensations: [],
        attention: null,
        approval: 'APPROVED',
        reservation: 'CONSUMED',
        payment: 'CAPTURED',
        shipment: 'DISPATCHED',
      });
    });

    it('refuses a stream with a gap, an event before OrderCreated, or an event type it does not know', function () {
      assert.throws(() => foldOrder([created, event(3, 'StockReserved')]), /event 2 has sequence 3/);
      assert.throws(() => foldOrder([event(1, 'StockReserved')]), /before OrderCreated/);
      assert.throws(() => foldOrder([created, event(2, 'SomethingElse')]), /unknown event type SomethingElse/);
      assert.equal(foldOrder([]), undefined);
    });
  });

  describe('the orders service appends', function () {
    it('each change once, in order, with the snapshot equal to the fold after every step', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', clientId: 'shop', lines, approvalThresholdCents: 10_000 };
      await orders.createOrder(input);
      await orders.createOrder(input); // a retry
      assert.deepEqual(await types(orderId), ['OrderCreated', 'ApprovalRequested']);
      await assertFoldEqualsReport(orderId);

      await orders.recordApproval({ orderId, approved: true, manager: 'maria' });
      await orders.recordApproval({ orderId, approved: false, manager: 'mark' }); // a second decision: the first stays
      assert.equal((await findOrder(db, orderId))?.approval, 'APPROVED');

      const attention = { phase: 'FORWARD' as const, step: 'reserveStock', error: 'boom', errorType: null, since: new Date(0).toISOString(), allowedActions: ['retry' as const, 'abort' as const] };
      await orders.recordAttention({ orderId, customerId: 'cust-alice', lines, attention });
      await orders.recordAttention({ orderId, customerId: 'cust-alice', lines, attention }); // a retry
      await assertFoldEqualsReport(orderId);
      await orders.recordAttention({ orderId, customerId: 'cust-alice', lines, attention: null });

      const close = { orderId, customerId: 'cust-alice', lines, status: 'COMPLETED' as const, completedSteps: ['ORDER_CREATED', 'APPROVED'], compensations: [] };
      await orders.closeOrder(close);
      await orders.closeOrder(close); // a retry
      assert.deepEqual(await types(orderId), ['OrderCreated', 'ApprovalRequested', 'ApprovalDecided', 'OrderNeedsAttention', 'OrderResumed', 'OrderClosed']);
      const events = await readOrderStream(db, orderId);
      assert.deepEqual(
        events.map((event) => event.sequence),
        [1, 2, 3, 4, 5, 6],
      );
      assert.ok(events.every((event) => event.source === 'orders'));
      await assertFoldEqualsReport(orderId);
      // The same events went to the outbox, for the other services and the query side.
      const outbox = await db.$queryRaw<{ type: string }[]>`SELECT type FROM outbox WHERE aggregate_id = ${orderId} ORDER BY sequence`;
      assert.deepEqual(outbox.map((row) => row.type), await types(orderId));
    });

    it('a saga that ended before recording its order: OrderCreated and OrderClosed in one go', async function () {
      const orderId = newOrderId();
      await orders.closeOrder({ orderId, customerId: 'cust-bob', lines: [{ sku: 'NOPE', quantity: 1 }], status: 'REJECTED', failureReason: 'unknown SKU', completedSteps: [], compensations: [] });
      assert.deepEqual(await types(orderId), ['OrderCreated', 'OrderClosed']);
      await assertFoldEqualsReport(orderId);
    });
  });

  describe('the other services\' events', function () {
    it('are recorded once each, in the order they arrive, and a redelivery changes nothing', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines });
      const reserved = delivered('inventory', 'Reservation', orderId, 'StockReserved', { lines });
      assert.equal(await recordOrderFact(factsDb, 'orders-inventory', reserved), true);
      assert.equal(await recordOrderFact(factsDb, 'orders-inventory', reserved), false, 'redelivered');
      assert.equal(await recordOrderFact(factsDb, 'orders-payments', delivered('payments', 'Payment', orderId, 'PaymentAuthorized', { amountCents: 1 })), true);
      assert.equal(await recordOrderFact(factsDb, 'orders-inventory', delivered('inventory', 'Reservation', orderId, 'StockReleased', { lines })), true);

      const events = await readOrderStream(db, orderId);
      assert.deepEqual(events.map((event) => `${event.sequence}:${event.type}:${event.source}`), [
        '1:OrderCreated:orders',
        '2:StockReserved:inventory',
        '3:PaymentAuthorized:payments',
        '4:StockReleased:inventory',
      ]);
      assert.equal(events[1].sourceEventId, reserved.envelope.id);
      const record = await findOrder(db, orderId);
      assert.equal(record?.reservation, 'RELEASED');
      assert.equal(record?.payment, 'AUTHORIZED');
      await assertFoldEqualsReport(orderId);
    });

    it('about an order this service does not know, or another aggregate, are noted and change nothing', async function () {
      assert.equal(await recordOrderFact(factsDb, 'orders-inventory', delivered('inventory', 'Reservation', 'ord_nobody', 'StockReserved')), false);
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines });
      assert.equal(await recordOrderFact(factsDb, 'orders-inventory', delivered('inventory', 'Product', orderId, 'StockReserved')), false);
      assert.deepEqual(await types(orderId), ['OrderCreated']);
      assert.equal(await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM order_events WHERE root_id = 'ord_nobody'`.then((rows) => Number(rows[0].n)), 0);
    });
  });

  it('orders placed before the stream existed get, from the migration, the events their row tells', async function () {
    // A database of its own, whose orders are put back as they were before the migration: no stream, version 0.
    const old = connectOrdersDb((await createServiceDatabases('order_stream_migration')).orders);
    try {
      const before = createOrdersActivities(old);
      const attention = { phase: 'FORWARD' as const, step: 'reserveStock', error: 'boom', errorType: null, since: new Date(0).toISOString(), allowedActions: ['retry' as const] };
      await before.closeOrder({ orderId: 'ord_closed', customerId: 'cust-bob', lines, status: 'CANCELLED', failureReason: 'changed my mind', completedSteps: ['ORDER_CREATED'], compensations: [] });
      await before.recordAttention({ orderId: 'ord_waiting', customerId: 'cust-bob', lines, attention });
      await before.createOrder({ orderId: 'ord_open', customerId: 'cust-bob', clientId: 'shop', lines });
      const ids = ['ord_closed', 'ord_waiting', 'ord_open'];
      const rows = await Promise.all(ids.map(async (orderId) => stateOfRecord((await findOrder(old, orderId))!)));
      await old.$executeRaw`DELETE FROM order_events`;
      await old.$executeRaw`UPDATE orders SET version = 0`;

      const migration = readFileSync(path.join(__dirname, '../../prisma/orders/migrations/20261203150000_order_event_stream/migration.sql'), 'utf8');
      const dataStep = migration.slice(migration.indexOf('-- Orders placed before the stream existed'));
      for (const statement of dataStep.split(';').filter((text) => text.replace(/--.*$/gm, '').trim())) await old.$executeRawUnsafe(statement);

      const streamTypes = async (orderId: string) => (await readOrderStream(old, orderId)).map((event) => event.type);
      assert.deepEqual(await streamTypes('ord_closed'), ['OrderCreated', 'OrderClosed']);
      assert.deepEqual(await streamTypes('ord_waiting'), ['OrderCreated', 'OrderNeedsAttention']);
      assert.deepEqual(await streamTypes('ord_open'), ['OrderCreated']);
      for (const [i, orderId] of ids.entries()) {
        const report = stateOfRecord((await findOrder(old, orderId))!);
        assert.deepEqual(foldOrder(await readOrderStream(old, orderId)), report, `${orderId}: the fold equals the row`);
        assert.deepEqual(report, rows[i], `${orderId}: the row is as it was`);
      }
    } finally {
      await old.$disconnect();
    }
  });

  describe('optimistic concurrency', function () {
    it('two writers at the same version: one appends, the other gets a conflict and leaves nothing behind', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      // The first writer appends sequence 2 and holds its transaction open; the second tries the same.
      const first = db.$transaction(async (tx) => {
        await appendToOrderStream(tx, orderId, 1, [{ type: 'StockReserved', payload: {}, source: 'inventory' }]);
        await held;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = db.$transaction((tx) => appendToOrderStream(tx, orderId, 1, [{ type: 'PaymentAuthorized', payload: {}, source: 'payments' }]));
      await new Promise((resolve) => setTimeout(resolve, 100));
      release();
      await first;
      await assert.rejects(second, (error: unknown) => error instanceof OrderStreamConflict);
      assert.deepEqual(await types(orderId), ['OrderCreated', 'StockReserved']);
      assert.equal((await findOrder(db, orderId))?.version, 2);
    });

    it('the unique key refuses a second sequence n even from a writer that skips the version check', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines });
      await assert.rejects(
        db.$executeRaw`INSERT INTO order_events (id, root_id, sequence, type, payload, source) VALUES (${randomUUID()}::uuid, ${orderId}, 1, 'OrderCreated', '{}', 'orders')`,
        /order_events_root_id_sequence_key|Unique constraint/i,
      );
    });

    it('many writers at once: every event appended once, sequences 1..n without a gap, the snapshot equal to the fold', async function () {
      const orderId = newOrderId();
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines });
      const facts = [
        ...Array.from({ length: 8 }, () => delivered('inventory', 'Reservation', orderId, 'StockReserved')),
        ...Array.from({ length: 8 }, () => delivered('payments', 'Payment', orderId, 'PaymentAuthorized')),
        ...Array.from({ length: 8 }, () => delivered('shipping', 'Shipment', orderId, 'ShipmentScheduled')),
      ];
      await Promise.all([
        ...facts.map((fact) => recordOrderFact(factsDb, `orders-${fact.envelope.service}`, fact)),
        orders.closeOrder({ orderId, customerId: 'cust-alice', lines, status: 'COMPLETED', completedSteps: [], compensations: [] }),
      ]);
      const events = await readOrderStream(db, orderId);
      assert.equal(events.length, 1 + facts.length + 1);
      assert.deepEqual(
        events.map((event) => event.sequence),
        events.map((_, i) => i + 1),
      );
      assert.deepEqual(new Set(events.filter((e) => e.sourceEventId).map((e) => e.sourceEventId)), new Set(facts.map((f) => f.envelope.id)));
      await assertFoldEqualsReport(orderId);
    });
  });
});
