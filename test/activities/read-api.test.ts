// The services' internal read APIs (src/activities/<service>/read-api.ts) against real PostgreSQL: all four
// routers on one express app on a free port, as the worker mounts them. Data goes in through the real activities
// (payments through the sandbox provider), and each answer is checked against what the service's database holds,
// read through its Prisma client. Also: 404 for an unknown id, 400 naming orderId for a malformed one, the
// health answers, and 503 database_unavailable (quickly, not a 500 or a hang) when a database cannot be reached.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { providerRefFor } from '../../src/domain';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { inventoryReadApi } from '../../src/activities/inventory/read-api';
import { createOrdersActivities } from '../../src/activities/orders/activities';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { ordersReadApi } from '../../src/activities/orders/read-api';
import { createPaymentsActivities, type PaymentsActivities } from '../../src/activities/payments/activities';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import { httpPaymentProvider } from '../../src/activities/payments/provider';
import { paymentsReadApi } from '../../src/activities/payments/read-api';
import { createShippingActivities } from '../../src/activities/shipping/activities';
import { connectShippingDb, type ShippingDb } from '../../src/activities/shipping/db';
import { shippingReadApi } from '../../src/activities/shipping/read-api';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { API_KEY, decide, startReceiver, startTestProvider, tempDataDir, type Receiver } from '../payment-provider/support';
import { createServiceDatabases } from '../support/postgres';

interface Databases {
  orders: OrdersDb;
  inventory: InventoryDb;
  payments: PaymentsDb;
  shipping: ShippingDb;
}

/** The four routers on one app, listening on a free port, as the worker serves them. */
async function serve(dbs: Databases): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(ordersReadApi(dbs.orders), inventoryReadApi(dbs.inventory), paymentsReadApi(dbs.payments), shippingReadApi(dbs.shipping));
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function get(baseUrl: string, path: string): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  const response = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(15_000) });
  assert.match(response.headers.get('content-type') ?? '', /application\/json/, `GET ${path} answers JSON`);
  return { status: response.status, body: await response.json(), ms: Date.now() - started };
}

const iso = (date: Date | null) => date?.toISOString() ?? null;
const bySku = <T extends { sku: string }>(lines: T[]) => [...lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));

const DATA_ROUTES = ['/orders/:id', '/orders/:id/events', '/reservations/:id', '/payments/:id', '/shipments/:id'];
const route = (template: string, id: string) => template.replace(':id', id);

describe('service read APIs (PostgreSQL)', function () {
  let dbs: Databases;
  let api: Awaited<ReturnType<typeof serve>>;
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  let sandbox: RunningPaymentProvider;
  let payments: PaymentsActivities;
  let sequence = 0;
  const newOrderId = () => `ord_read_api_${++sequence}`;

  before(async function () {
    const urls = await createServiceDatabases('read_api');
    dbs = {
      orders: connectOrdersDb(urls.orders),
      inventory: connectInventoryDb(urls.inventory),
      payments: connectPaymentsDb(urls.payments),
      shipping: connectShippingDb(urls.shipping),
    };
    receiver = await startReceiver();
    data = tempDataDir();
    sandbox = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    payments = createPaymentsActivities(dbs.payments, httpPaymentProvider({ url: sandbox.url, apiKey: API_KEY, timeoutMs: 3_000 }));
    api = await serve(dbs);
  });

  after(async function () {
    await api?.close();
    await sandbox?.stop();
    await receiver?.close();
    data?.remove();
    await Promise.all(Object.values(dbs ?? {}).map((db) => db.$disconnect()));
  });

  describe('orders', function () {
    /** A priced, recorded and closed order, as the saga leaves it. */
    async function closedOrder(orderId: string) {
      const lines = await createInventoryActivities(dbs.inventory).priceOrder([
        { sku: 'MS-002', quantity: 2 },
        { sku: 'KB-001', quantity: 1 },
      ]);
      const origin = { clientId: 'web-shop', requestFingerprint: `fp-${orderId}` };
      const orders = createOrdersActivities(dbs.orders);
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines, ...origin });
      await orders.closeOrder({ orderId, customerId: 'cust-alice', lines, ...origin, status: 'COMPLETED', completedSteps: ['reserveStock', 'authorizePayment'], compensations: [] });
    }

    /** The order's row and lines, in the shape of the record the API answers. */
    async function recordInDatabase(orderId: string) {
      const row = await dbs.orders.order.findUniqueOrThrow({ where: { id: orderId }, include: { lines: true } });
      return {
        orderId: row.id,
        customerId: row.customerId,
        clientId: row.clientId,
        requestFingerprint: row.requestFingerprint,
        status: row.status,
        totalCents: row.totalCents,
        failureReason: row.failureReason,
        completedSteps: row.completedSteps,
        compensations: row.compensations,
        attention: row.attention ?? null,
        lines: bySku(row.lines.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents }))),
        createdAt: iso(row.createdAt),
        closedAt: iso(row.closedAt),
        version: row.version,
        approval: row.approvalStatus,
        reservation: row.reservationStatus,
        payment: row.paymentStatus,
        shipment: row.shipmentStatus,
      };
    }

    it('GET /orders/:orderId answers the order as its database holds it, requestFingerprint and clientId included', async function () {
      const orderId = newOrderId();
      await closedOrder(orderId);

      const { status, body } = await get(api.url, `/orders/${orderId}`);

      assert.equal(status, 200);
      const expected = await recordInDatabase(orderId);
      assert.deepEqual(body, expected);
      assert.equal(body.requestFingerprint, `fp-${orderId}`);
      assert.equal(body.clientId, 'web-shop');
      assert.equal(body.status, 'COMPLETED');
      assert.notEqual(body.closedAt, null);
    });

    it('GET /orders/:orderId/events answers the stream as stored, its version, and a fold equal to the snapshot row', async function () {
      const orderId = newOrderId();
      await closedOrder(orderId);

      const { status, body } = await get(api.url, `/orders/${orderId}/events`);

      assert.equal(status, 200);
      const rows = await dbs.orders.orderStreamEvent.findMany({ where: { rootId: orderId }, orderBy: { sequence: 'asc' } });
      assert.deepEqual(Object.keys(body).sort(), ['events', 'orderId', 'state', 'version']);
      assert.equal(body.orderId, orderId);
      assert.deepEqual(
        body.events.map((event: any) => ({ id: event.id, sequence: event.sequence, type: event.type, payload: event.payload, source: event.source, occurredAt: event.occurredAt })),
        rows.map((row) => ({ id: row.id, sequence: row.sequence, type: row.type, payload: row.payload, source: row.source, occurredAt: iso(row.occurredAt) })),
      );
      assert.deepEqual(body.events.map((event: any) => event.type), ['OrderCreated', 'OrderClosed']);
      const { requestFingerprint: _fp, createdAt: _created, closedAt: _closed, ...snapshot } = await recordInDatabase(orderId);
      assert.equal(body.version, snapshot.version);
      assert.equal(body.version, rows.length);
      assert.deepEqual(body.state, snapshot);
    });
  });

  describe('inventory', function () {
    it('GET /reservations/:orderId answers the reservation with its lines sorted by SKU', async function () {
      const orderId = newOrderId();
      await createInventoryActivities(dbs.inventory).reserveStock({
        orderId,
        lines: [
          { sku: 'MS-002', quantity: 2 },
          { sku: 'CB-005', quantity: 3 },
          { sku: 'KB-001', quantity: 1 },
        ],
      });

      const { status, body } = await get(api.url, `/reservations/${orderId}`);

      assert.equal(status, 200);
      const row = await dbs.inventory.reservation.findUniqueOrThrow({ where: { orderId }, include: { lines: true } });
      assert.deepEqual(body, {
        orderId,
        status: row.status,
        lines: bySku(row.lines.map(({ sku, quantity }) => ({ sku, quantity }))),
        createdAt: iso(row.createdAt),
        updatedAt: iso(row.updatedAt),
      });
      assert.equal(body.status, 'RESERVED');
      assert.deepEqual(body.lines.map((line: any) => line.sku), ['CB-005', 'KB-001', 'MS-002']);
    });

    it('answers a tombstone (a release before any reservation) as it is: RELEASED, no lines', async function () {
      const orderId = newOrderId();
      await createInventoryActivities(dbs.inventory).releaseStock({ orderId });

      const { status, body } = await get(api.url, `/reservations/${orderId}`);

      assert.equal(status, 200);
      const row = await dbs.inventory.reservation.findUniqueOrThrow({ where: { orderId } });
      assert.deepEqual(body, { orderId, status: row.status, lines: [], createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) });
      assert.equal(body.status, 'RELEASED');
    });
  });

  describe('payments', function () {
    async function paymentInDatabase(orderId: string) {
      const row = await dbs.payments.payment.findUniqueOrThrow({ where: { orderId } });
      const { customerId, amountCents, status, providerRef } = row;
      return { orderId, customerId, amountCents, status, providerRef, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
    }

    it('GET /payments/:orderId answers an authorized payment as the payments database holds it', async function () {
      const orderId = newOrderId();
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 4_200 });

      const { status, body } = await get(api.url, `/payments/${orderId}`);

      assert.equal(status, 200);
      assert.deepEqual(body, await paymentInDatabase(orderId));
      assert.equal(body.status, 'AUTHORIZED');
      assert.equal(body.providerRef, providerRefFor(orderId));
    });

    it('answers a captured payment with its new status', async function () {
      const orderId = newOrderId();
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 9_900 });
      await decide(sandbox.url, providerRefFor(orderId), 'CONFIRMED');
      await payments.capturePayment({ orderId });

      const { status, body } = await get(api.url, `/payments/${orderId}`);

      assert.equal(status, 200);
      assert.deepEqual(body, await paymentInDatabase(orderId));
      assert.equal(body.status, 'CAPTURED');
    });
  });

  describe('shipping', function () {
    const lines = [
      { sku: 'KB-001', quantity: 1 },
      { sku: 'CB-005', quantity: 3 },
    ];

    async function shipmentInDatabase(orderId: string) {
      const row = await dbs.shipping.shipment.findUniqueOrThrow({ where: { orderId } });
      return {
        orderId,
        status: row.status,
        lines: row.lines,
        trackingCode: row.trackingCode,
        createdAt: iso(row.createdAt),
        updatedAt: iso(row.updatedAt),
        dispatchedAt: iso(row.dispatchedAt),
      };
    }

    it('GET /shipments/:orderId answers a scheduled shipment: no tracking code, not dispatched', async function () {
      const orderId = newOrderId();
      await createShippingActivities(dbs.shipping).scheduleShipment({ orderId, lines });

      const { status, body } = await get(api.url, `/shipments/${orderId}`);

      assert.equal(status, 200);
      assert.deepEqual(body, await shipmentInDatabase(orderId));
      assert.equal(body.status, 'SCHEDULED');
      assert.equal(body.trackingCode, null);
      assert.equal(body.dispatchedAt, null);
    });

    it('answers a dispatched shipment with its tracking code and dispatch time', async function () {
      const orderId = newOrderId();
      const shipping = createShippingActivities(dbs.shipping);
      await shipping.scheduleShipment({ orderId, lines });
      await shipping.dispatchShipment({ orderId });

      const { status, body } = await get(api.url, `/shipments/${orderId}`);

      assert.equal(status, 200);
      assert.deepEqual(body, await shipmentInDatabase(orderId));
      assert.equal(body.status, 'DISPATCHED');
      assert.equal(typeof body.trackingCode, 'string');
      assert.equal(typeof body.dispatchedAt, 'string');
    });
  });

  describe('refusals', function () {
    for (const template of DATA_ROUTES) {
      it(`GET ${template} answers 404 not_found for an id nothing is recorded for`, async function () {
        const { status, body } = await get(api.url, route(template, newOrderId()));
        assert.equal(status, 404);
        assert.equal(body.error.code, 'not_found');
        assert.equal(typeof body.error.message, 'string');
        assert.equal(body.error.fields, undefined);
      });

      it(`GET ${template} answers 400 bad_request naming orderId for an id the public API would refuse`, async function () {
        for (const bad of [encodeURIComponent('ord 1'), 'ord$1', 'x'.repeat(65)]) {
          const { status, body } = await get(api.url, route(template, bad));
          assert.equal(status, 400, `${template} with ${bad}`);
          assert.equal(body.error.code, 'bad_request');
          assert.deepEqual(body.error.fields, ['orderId']);
          assert.match(body.error.message, /orderId/);
        }
      });
    }
  });

  describe('health', function () {
    for (const service of ['orders', 'inventory', 'payments', 'shipping']) {
      it(`GET /health/${service} answers 200 ok when its database answers, with its outbox's status`, async function () {
        const { status, body } = await get(api.url, `/health/${service}`);
        assert.equal(status, 200);
        assert.equal(body.status, 'ok');
        // The same figures as a connection of its own reads (nothing is relayed in this suite: all of it waits).
        const [row] = await dbs[service as keyof Databases].$queryRawUnsafe<{ n: bigint }[]>('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL');
        assert.equal(body.outbox.backlog, Number(row.n));
        assert.ok(body.outbox.backlog > 0, 'the seed and the tests wrote events');
        assert.equal(typeof body.outbox.oldestUnpublishedAgeMs, 'number');
        assert.equal(body.outbox.slot, null, 'no WAL relay ran on these databases');
      });
    }
  });

  describe('a database that cannot be reached', function () {
    // Nothing listens on port 1: every connection is refused.
    const NOWHERE = 'postgresql://postgres:postgres@127.0.0.1:1/x';
    let unreachable: Databases;
    let down: Awaited<ReturnType<typeof serve>>;

    before(async function () {
      unreachable = {
        orders: connectOrdersDb(NOWHERE),
        inventory: connectInventoryDb(NOWHERE),
        payments: connectPaymentsDb(NOWHERE),
        shipping: connectShippingDb(NOWHERE),
      };
      down = await serve(unreachable);
    });

    after(async function () {
      await down?.close();
      await Promise.all(Object.values(unreachable ?? {}).map((db) => db.$disconnect()));
    });

    for (const template of DATA_ROUTES) {
      it(`GET ${template} answers 503 database_unavailable within a few seconds`, async function () {
        const { status, body, ms } = await get(down.url, route(template, 'ord_anything'));
        assert.equal(status, 503, JSON.stringify(body));
        assert.equal(body.error.code, 'database_unavailable');
        assert.equal(typeof body.error.message, 'string');
        assert.ok(ms < 5_000, `answered after ${ms} ms`);
      });
    }

    for (const service of ['orders', 'inventory', 'payments', 'shipping']) {
      it(`GET /health/${service} answers 503 unavailable with the reason`, async function () {
        const { status, body, ms } = await get(down.url, `/health/${service}`);
        assert.equal(status, 503);
        assert.equal(body.status, 'unavailable');
        assert.equal(typeof body.error, 'string');
        assert.ok(body.error.length > 0);
        assert.ok(ms < 5_000, `answered after ${ms} ms`);
      });
    }

    it('still answers 400 for a malformed id: the id is checked before the database is asked', async function () {
      const { status, body } = await get(down.url, '/payments/ord$1');
      assert.equal(status, 400);
      assert.deepEqual(body.error.fields, ['orderId']);
    });
  });
});
