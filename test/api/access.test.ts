// The API's callers and their rights, against the real system (Temporal dev server, worker, PostgreSQL, HTTP):
// API keys and roles, a client seeing only its own orders, Idempotency-Keys scoped to the client and customer,
// the bound on an order's total, an operator resuming a saga in NEEDS_ATTENTION, and a saga stuck retrying a
// step showing which step and why.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import { repriceProduct } from '../../src/activities/inventory/catalog';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { signCallback, SIGNATURE_HEADER } from '../../src/activities/payments/provider';
import { connectShippingDb, type ShippingDb } from '../../src/activities/shipping/db';
import { createApp } from '../../src/api/app';
import { httpServiceReads } from '../../src/api/service-reads';
import { connectQueryDb, type QueryDb } from '../../src/query/db';
import { OrderWorkflows, type Execution } from '../../src/api/order-workflows';
import { apiTemporalConnection } from '../../src/api/server';
import { MAX_ORDER_TOTAL_CENTS, providerRefFor } from '../../src/domain';
import { httpRequest, KEYS, PRINCIPALS, TestStack, WEBHOOK_SECRET, type As, type Json } from '../support/stack';

describe('API access: keys, roles, ownership, idempotency scope, bounds, operators', function () {
  let system: TestStack;
  let inventoryDb: InventoryDb;
  let shippingDb: ShippingDb;

  before(async function () {
    system = await TestStack.start('access', {
      // A compensation that keeps failing for a while: the saga must show that it is stuck retrying it.
      FAULT_INJECTION: 'voidPayment:fail-first=3',
      // Time to break a scheduled shipment before its dispatch.
      DISPATCH_DELAY: '4s',
    });
    inventoryDb = connectInventoryDb(system.stack.databaseUrls.inventory);
    shippingDb = connectShippingDb(system.stack.databaseUrls.shipping);
  });

  after(async function () {
    await Promise.all([inventoryDb?.$disconnect(), shippingDb?.$disconnect()]);
    await system?.stop();
  });

  const http = (method: string, url: string, body?: unknown, as: As = 'client', headers: Record<string, string> = {}) => system.http(method, url, body, headers, as);
  const order = (customerId = 'cust-alice', sku = 'CB-005', quantity = 1) => ({ customerId, lines: [{ sku, quantity }] });
  /**
   * An order above the approval threshold: cancelled while it waits for a manager, it has nothing to undo, so it
   * ends at once; an order cancelled after its payment would wait out this stack's failing voidPayment (some 7 s).
   */
  const awaitingApproval = () => order('cust-dave', 'LT-004');

  async function place(body: Json, as: As = 'client', key?: string) {
    const response = await http('POST', '/orders', body, as, key ? { 'Idempotency-Key': key } : {});
    assert.equal(response.status, 202, response.text);
    return response.body.orderId as string;
  }

  async function cancel(orderId: string, as: As = 'client') {
    const response = await http('POST', `/orders/${orderId}/cancel`, { reason: 'test cleanup' }, as);
    assert.ok([202, 409].includes(response.status), response.text);
  }

  describe('authentication', function () {
    it('answers 401 without a key, with an unknown key or with a malformed Authorization header', async function () {
      const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer not-a-key' }, { 'x-api-key': 'not-a-key' }, { authorization: `Basic ${KEYS.client}` }, { authorization: 'Bearer' }];
      for (const headers of attempts) {
        const response = await http('GET', '/catalog', undefined, 'anonymous', headers);
        assert.equal(response.status, 401, JSON.stringify(headers));
        assert.equal(response.body.error.code, 'unauthorized');
        assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
      // Every route, not just some: placing an order without a key starts nothing.
      assert.equal((await http('POST', '/orders', order(), 'anonymous')).status, 401);
      assert.equal((await http('GET', '/orders/ord_x', undefined, 'anonymous')).status, 401);
      assert.equal((await http('POST', '/orders/ord_x/resolve', { action: 'retry' }, 'anonymous')).status, 401);
    });

    it('accepts a key as a bearer token or in X-API-Key; keeps /health open for health checks', async function () {
      assert.equal((await http('GET', '/catalog', undefined, 'anonymous', { authorization: `Bearer ${KEYS.client}` })).status, 200);
      assert.equal((await http('GET', '/catalog', undefined, 'anonymous', { 'x-api-key': KEYS.manager })).status, 200);
      assert.equal((await http('GET', '/catalog', undefined, 'anonymous', { authorization: `Bearer ${KEYS.client}`, 'x-api-key': KEYS.manager })).status, 401, 'two different keys');
      assert.equal((await http('GET', '/health', undefined, 'anonymous')).status, 200);
    });
  });

  describe('roles', function () {
    it('lets only client applications place orders', async function () {
      for (const as of ['manager', 'operator'] as const) {
        const response = await http('POST', '/orders', order(), as);
        assert.equal(response.status, 403, `${as}: ${response.text}`);
        assert.equal(response.body.error.code, 'forbidden');
      }
    });

    it('shows customer credit to managers and operators only', async function () {
      assert.equal((await http('GET', '/customers', undefined, 'client')).status, 403);
      assert.equal((await http('GET', '/customers/cust-alice', undefined, 'client')).status, 403);
      const list = await http('GET', '/customers', undefined, 'manager');
      assert.equal(list.status, 200);
      assert.ok(list.body.customers.length >= 4);
      assert.equal((await http('GET', '/customers/cust-alice', undefined, 'operator')).status, 200);
      assert.equal((await http('GET', '/catalog', undefined, 'client')).status, 200, 'the catalog is for everyone with a key');
    });

    it('records a manager decision under the key, not under a name in the body', async function () {
      const orderId = await place(awaitingApproval());
      await system.waitForStatus(orderId, 'AWAITING_APPROVAL');
      const impersonation = await http('POST', `/orders/${orderId}/approve`, { manager: 'someone-else' }, 'manager');
      assert.equal(impersonation.status, 403);
      assert.equal(impersonation.body.error.fields[0].field, 'manager');
      const approved = await http('POST', `/orders/${orderId}/reject`, { note: 'not this month' }, 'manager');
      assert.equal(approved.status, 200, approved.text);
      const rejected = await system.waitForStatus(orderId, 'REJECTED');
      assert.match(rejected.failureReason, new RegExp(PRINCIPALS.manager));
    });
  });

  describe('ownership', function () {
    it("lets a client read and cancel its own orders only; another client's order is not found; staff see all", async function () {
      const orderId = await place(awaitingApproval());
      await system.waitForStatus(orderId, 'AWAITING_APPROVAL');

      const mine = await http('GET', `/orders/${orderId}`);
      assert.equal(mine.status, 200);
      assert.equal(mine.body.clientId, PRINCIPALS.client);
      const theirs = await http('GET', `/orders/${orderId}`, undefined, 'otherClient');
      assert.equal(theirs.status, 404, 'another client cannot tell the order exists');
      assert.deepEqual(theirs.body, { error: { code: 'not_found', message: `order ${orderId} not found` } }, 'the same answer as for an unknown order');
      const cancelByOther = await http('POST', `/orders/${orderId}/cancel`, { reason: 'mischief' }, 'otherClient');
      assert.equal(cancelByOther.status, 404);
      assert.equal((await http('GET', `/orders/${orderId}`, undefined, 'manager')).status, 200);
      assert.equal((await http('GET', `/orders/${orderId}`, undefined, 'operator')).status, 200);
      assert.equal((await http('POST', `/orders/${orderId}/cancel`, {}, 'operator')).status, 403, 'operators resolve, they do not cancel');
      assert.equal((await system.waitForStatus(orderId, 'AWAITING_APPROVAL')).status, 'AWAITING_APPROVAL', 'still running');

      const cancelled = await http('POST', `/orders/${orderId}/cancel`, { reason: 'changed my mind' });
      assert.equal(cancelled.status, 202);
      await system.waitForStatus(orderId, 'CANCELLED', 60_000);
      // Closed, the order is read from the orders database: still only by its client (and staff).
      assert.equal((await http('GET', `/orders/${orderId}`)).body.source, 'orders-db');
      assert.equal((await http('GET', `/orders/${orderId}`, undefined, 'otherClient')).status, 404);
      assert.equal((await http('POST', `/orders/${orderId}/cancel`, {}, 'otherClient')).status, 404, 'not a 409 that would reveal it');
      assert.equal((await http('POST', `/orders/${orderId}/cancel`, {})).status, 409);
    });

    it('shows a step that keeps failing (activity, attempt, last failure) while the saga retries it', async function () {
      const orderId = await place(order('cust-alice', 'MS-002'));
      await system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
      const initial = await http('GET', `/orders/${orderId}`);
      assert.deepEqual(initial.body.retryingActivities, [], 'nothing retries yet');
      await cancel(orderId);
      // voidPayment fails its first three attempts (FAULT_INJECTION): from its third attempt on, it shows.
      let seen: Json | undefined;
      for (let i = 0; i < 150 && !seen; i++) {
        const state = (await http('GET', `/orders/${orderId}`)).body;
        seen = (state.retryingActivities ?? []).find((activity: Json) => activity.activityType === 'voidPayment');
        if (!seen) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(seen, 'the retrying compensation is shown');
      assert.ok(seen.attempt >= 3, JSON.stringify(seen));
      assert.match(seen.lastFailure, /injected fault/);
      assert.ok(['SCHEDULED', 'STARTED'].includes(seen.state), seen.state);
      const done = await system.waitForStatus(orderId, 'CANCELLED', 60_000);
      assert.deepEqual(done.retryingActivities ?? [], [], 'once the compensation went through, nothing is retrying');
      assert.deepEqual(done.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
    });
  });

  describe('Idempotency-Key scope', function () {
    it('gives two clients using the same key two orders', async function () {
      const key = `shared-key-${Date.now()}`;
      const mine = await place(order('cust-alice', 'CB-005'), 'client', key);
      const theirs = await place(order('cust-alice', 'CB-005'), 'otherClient', key);
      assert.notEqual(mine, theirs);
      assert.equal((await http('GET', `/orders/${mine}`)).status, 200);
      assert.equal((await http('GET', `/orders/${theirs}`, undefined, 'otherClient')).status, 200);
      // Each client's retry still finds its own order.
      const retry = await http('POST', '/orders', order('cust-alice', 'CB-005'), 'otherClient', { 'Idempotency-Key': key });
      assert.equal(retry.body.orderId, theirs);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      await Promise.all([cancel(mine), cancel(theirs, 'otherClient')]);
    });

    it('scopes a key to the customer too, and treats the same lines in another order as the same request', async function () {
      const key = `customer-key-${Date.now()}`;
      const lines = [{ sku: 'CB-005', quantity: 1 }, { sku: 'MS-002', quantity: 1 }];
      const forAlice = await place({ customerId: 'cust-alice', lines }, 'client', key);
      const forDave = await place({ customerId: 'cust-dave', lines }, 'client', key);
      assert.notEqual(forAlice, forDave);
      const reordered = await http('POST', '/orders', { customerId: 'cust-alice', lines: [...lines].reverse() }, 'client', { 'Idempotency-Key': key });
      assert.equal(reordered.status, 202);
      assert.equal(reordered.body.orderId, forAlice);
      const different = await http('POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'CB-005', quantity: 2 }] }, 'client', { 'Idempotency-Key': key });
      assert.equal(different.status, 409);
      await Promise.all([cancel(forAlice), cancel(forDave)]);
    });
  });

  describe('bounds', function () {
    /** The API validates against the query side's catalog, which learns a new price from the inventory's event. */
    async function waitForCatalogPrice(sku: string, priceCents: number): Promise<void> {
      for (let i = 0; i < 100; i++) {
        if ((await http('GET', `/catalog/${sku}`, undefined, 'manager')).body.priceCents === priceCents) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`the catalog did not show ${sku} at ${priceCents} cents`);
    }

    it('refuses an order whose total would exceed the maximum with a 400 naming lines, and starts nothing', async function () {
      // At 2,000,000.00 a unit, 600 units are 1.2e11 cents: above MAX_ORDER_TOTAL_CENTS, far below MAX_QUANTITY.
      await repriceProduct(inventoryDb, 'GPU-006', 200_000_000);
      try {
        await waitForCatalogPrice('GPU-006', 200_000_000);
        const key = `too-large-${Date.now()}`;
        const response = await http('POST', '/orders', order('cust-dave', 'GPU-006', 600), 'client', { 'Idempotency-Key': key });
        assert.equal(response.status, 400, response.text);
        assert.equal(response.body.error.code, 'validation_failed');
        assert.deepEqual(response.body.error.fields.map((field: Json) => field.field), ['lines']);
        assert.match(response.body.error.fields[0].message, new RegExp(String(MAX_ORDER_TOTAL_CENTS)));
        const within = await http('POST', '/orders', order('cust-dave', 'GPU-006', 5), 'client');
        assert.equal(within.status, 202, 'a total at or below the maximum is taken');
        await cancel(within.body.orderId);
      } finally {
        await repriceProduct(inventoryDb, 'GPU-006', 79_900);
        await waitForCatalogPrice('GPU-006', 79_900);
      }
    });

    it('answers a cancel whose body is JSON null with a 400, and cancels nothing', async function () {
      const orderId = await place(awaitingApproval());
      await system.waitForStatus(orderId, 'AWAITING_APPROVAL');
      const response = await http('POST', `/orders/${orderId}/cancel`, 'null', 'client', { 'content-type': 'application/json' });
      assert.equal(response.status, 400, response.text);
      assert.equal(response.body.error.fields[0].field, 'body');
      assert.equal((await http('GET', `/orders/${orderId}`)).body.status, 'AWAITING_APPROVAL');
      assert.equal((await http('POST', `/orders/${orderId}/cancel`)).status, 202, 'no body at all is a cancel without a reason');
      await system.waitForStatus(orderId, 'CANCELLED', 60_000);
    });
  });

  describe('a saga that ends between the check and the message', function () {
    // The API checks that the saga runs, then sends the update or signal. Here the check answers "running" for
    // a saga that has in fact just ended, as when it ends in between: the answer must be 409 or 404, never a 500.
    class CheckedJustBeforeItEnded extends OrderWorkflows {
      override async inspect(orderId: string): Promise<Execution> {
        return { ...(await super.inspect(orderId)), state: 'RUNNING' };
      }
    }
    let server: Server;
    let url: string;
    let client: Client;
    let ordersDb: OrdersDb;
    let queryDb: QueryDb;

    before(async function () {
      client = new Client({ connection: apiTemporalConnection(system.config.temporal, system.stack.temporalAddress) });
      ordersDb = connectOrdersDb(system.stack.databaseUrls.orders);
      queryDb = connectQueryDb(system.stack.queryDatabaseUrl);
      const workflows = new CheckedJustBeforeItEnded(client, system.config.saga);
      const app = createApp({ workflows, services: httpServiceReads(system.stack.serviceUrls), query: { db: queryDb }, config: system.config });
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async function () {
      await new Promise((resolve) => server?.close(resolve));
      await client?.connection.close();
      await Promise.all([ordersDb?.$disconnect(), queryDb?.$disconnect()]);
    });

    it('answers 409 for an update or a signal to a saga that has just ended, and 404 for one that never existed', async function () {
      const orderId = await place(awaitingApproval());
      await system.waitForStatus(orderId, 'AWAITING_APPROVAL');
      await cancel(orderId);
      await system.waitForStatus(orderId, 'CANCELLED', 60_000);
      await system.client.workflow.getHandle(orderId).result();

      const late = await httpRequest(url, 'POST', `/orders/${orderId}/cancel`, { reason: 'too late' });
      assert.equal(late.status, 409, late.text);
      assert.match(late.body.error.message, /CANCELLED/);
      const decision = await httpRequest(url, 'POST', `/orders/${orderId}/approve`, {}, {}, 'manager');
      assert.equal(decision.status, 409, decision.text);
      const body = JSON.stringify({ orderId, providerRef: providerRefFor(orderId), outcome: 'CONFIRMED' });
      const callback = await httpRequest(url, 'POST', '/payments/callback', body, { 'content-type': 'application/json', [SIGNATURE_HEADER]: signCallback(WEBHOOK_SECRET, body) }, 'anonymous');
      assert.equal(callback.status, 409, callback.text);

      const unknown = 'ord_0123456789abcdef0123456789abcdef';
      assert.equal((await httpRequest(url, 'POST', `/orders/${unknown}/approve`, {}, {}, 'manager')).status, 404);
      const unknownBody = JSON.stringify({ orderId: unknown, providerRef: providerRefFor(unknown), outcome: 'CONFIRMED' });
      const unknownCallback = await httpRequest(url, 'POST', '/payments/callback', unknownBody, { 'content-type': 'application/json', [SIGNATURE_HEADER]: signCallback(WEBHOOK_SECRET, unknownBody) }, 'anonymous');
      assert.equal(unknownCallback.status, 404, unknownCallback.text);
    });
  });

  describe('operators and NEEDS_ATTENTION', function () {
    it('refuses resolve to anyone but an operator, and for a saga that is not waiting for one', async function () {
      const orderId = await place(order());
      await system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
      assert.equal((await http('POST', `/orders/${orderId}/resolve`, { action: 'retry' }, 'client')).status, 403);
      assert.equal((await http('POST', `/orders/${orderId}/resolve`, { action: 'retry' }, 'manager')).status, 403);
      const badAction = await http('POST', `/orders/${orderId}/resolve`, { action: 'ignore' }, 'operator');
      assert.equal(badAction.status, 400);
      assert.equal(badAction.body.error.fields[0].field, 'action');
      const notWaiting = await http('POST', `/orders/${orderId}/resolve`, { action: 'retry' }, 'operator');
      assert.equal(notWaiting.status, 409, notWaiting.text);
      assert.match(notWaiting.body.error.message, /not waiting for an operator/);
      assert.equal((await http('POST', '/orders/ord_00000000000000000000000000000000/resolve', { action: 'retry' }, 'operator')).status, 404);
      await cancel(orderId);
    });

    it('resumes a saga stopped in NEEDS_ATTENTION when an operator resolves it', async function () {
      const orderId = await place(order('cust-alice', 'KB-001'));
      await system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
      await system.providerDecides(orderId, 'CONFIRMED');
      await system.waitForStatus(orderId, 'AWAITING_DISPATCH');
      // Someone cancels the parcel at the carrier by hand: dispatch fails for good, past the point of no return.
      await shippingDb.shipment.update({ where: { orderId }, data: { status: 'CANCELLED' } });
      const stuck = await system.waitForStatus(orderId, 'NEEDS_ATTENTION', 30_000);
      assert.equal(stuck.attention.step, 'dispatchShipment');
      assert.deepEqual(stuck.attention.allowedActions, ['retry', 'resolved-manually']);
      assert.equal((await http('GET', `/orders/${orderId}`, undefined, 'operator')).body.status, 'NEEDS_ATTENTION');

      const abort = await http('POST', `/orders/${orderId}/resolve`, { action: 'abort' }, 'operator');
      assert.equal(abort.status, 409, 'abort is not possible past the point of no return');
      const impersonation = await http('POST', `/orders/${orderId}/resolve`, { action: 'retry', operator: 'mallory' }, 'operator');
      assert.equal(impersonation.status, 403);

      // The carrier is called, the parcel rebooked; the operator retries the step.
      await shippingDb.shipment.update({ where: { orderId }, data: { status: 'SCHEDULED' } });
      const resumed = await http('POST', `/orders/${orderId}/resolve`, { action: 'retry', note: 'parcel rebooked' }, 'operator');
      assert.equal(resumed.status, 200, resumed.text);
      const done = await system.waitForStatus(orderId, 'COMPLETED', 60_000);
      assert.ok(done.completedSteps.includes('SHIPMENT_DISPATCHED'), JSON.stringify(done.completedSteps));
      const again = await http('POST', `/orders/${orderId}/resolve`, { action: 'retry' }, 'operator');
      assert.equal(again.status, 409);
    });
  });
});
