// End to end: the real HTTP API, a real worker, a real Temporal dev server and real PostgreSQL. The test
// plays the payment provider, sending signed confirmations to the callback endpoint.
import assert from 'node:assert/strict';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { auditDatabases, formatReport } from '../../src/audit/auditor';
import { connectNats } from '../../src/events/nats-connection';
import { connectQueryDb } from '../../src/query/db';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { findOrder, stateOfRecord } from '../../src/activities/orders/read-model';
import { orderIdForKey } from '../../src/api/order-workflows';
import { startApiServer, type ApiServer } from '../../src/api/server';
import type { RunningStack } from '../../src/local-stack/stack';
import { OrderStatusAttribute } from '../../src/workflows/definitions';
import { freePort } from '../../src/local-stack/free-port';
import { KEYS, PRINCIPALS, TestStack, type As, type HttpResponse, type Json } from '../support/stack';

describe('order API end to end (Temporal dev server, PostgreSQL, worker, HTTP)', function () {
  let system: TestStack;
  let stack: RunningStack;
  let client: Client;
  let ordersDb: OrdersDb;

  before(async function () {
    system = await TestStack.start('e2e');
    ({ stack, client } = system);
    ordersDb = connectOrdersDb(stack.databaseUrls.orders);
  });

  after(async function () {
    await ordersDb?.$disconnect();
    await system?.stop();
  });

  const http = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}, as?: As) => system.http(method, url, body, headers, as);
  const providerCallback = (orderId: string, outcome: 'CONFIRMED' | 'DECLINED', secret?: string) => system.providerCallback(orderId, outcome, secret);
  const providerDecides = (orderId: string, outcome: 'CONFIRMED' | 'DECLINED') => system.providerDecides(orderId, outcome);
  const waitForStatus = (orderId: string, status: string) => system.waitForStatus(orderId, status);

  // The catalog and customer credit come from the query side: read once it has applied what the services did.
  const stockOf = async (sku: string) => {
    await system.viewsCaughtUp();
    return (await http('GET', `/catalog/${sku}`)).body.onHand as number;
  };
  const creditUsedBy = async (customerId: string) => {
    await system.viewsCaughtUp();
    return (await http('GET', `/customers/${customerId}`, undefined, {}, 'manager')).body.creditUsedCents as number;
  };

  async function placeOrder(order: Json, headers: Record<string, string> = {}, query = '') {
    const response = await http('POST', `/orders${query}`, order, headers);
    assert.ok([200, 202].includes(response.status), `POST /orders answered ${response.status}: ${JSON.stringify(response.body)}`);
    return response;
  }

  it('a completed order lowers stock, uses credit, and is findable by its status search attribute', async function () {
    const [stockBefore, creditBefore] = [await stockOf('KB-001'), await creditUsedBy('cust-alice')];
    const placed = await placeOrder({ customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 2 }] });
    assert.equal(placed.status, 202);
    assert.equal(placed.body.statusUrl, `/orders/${placed.body.orderId}`);
    const { orderId } = placed.body;

    const waiting = await waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    assert.deepEqual(waiting.completedSteps, ['ORDER_CREATED', 'STOCK_RESERVED', 'PAYMENT_AUTHORIZED']);
    assert.equal(await stockOf('KB-001'), stockBefore - 2, 'stock is reserved while the saga runs');
    assert.equal((await providerDecides(orderId, 'CONFIRMED')).body.status, 'AUTHORIZED');

    await waitForStatus(orderId, 'COMPLETED');
    await client.workflow.getHandle(orderId).result();
    const done = (await http('GET', `/orders/${orderId}`)).body;
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.source, 'orders-db', 'a closed order is read from the orders database');
    assert.equal(done.totalCents, 2 * 8_900);
    assert.deepEqual(done.compensations, []);
    assert.equal(await stockOf('KB-001'), stockBefore - 2);
    assert.equal(await creditUsedBy('cust-alice'), creditBefore + 2 * 8_900);

    const description = await client.workflow.getHandle(orderId).describe();
    assert.equal(description.typedSearchAttributes.get(OrderStatusAttribute), 'COMPLETED');
    let found: string[] = [];
    for (let i = 0; i < 50 && !found.includes(orderId); i++) {
      found = [];
      for await (const execution of client.workflow.list({ query: `OrderStatus = 'COMPLETED' AND CustomerId = 'cust-alice'` })) found.push(execution.workflowId);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(found.includes(orderId), 'the order is found by OrderStatus and CustomerId, as in the Web UI');

    // Every service published what it did for the order, through its outbox and relay, in order.
    const expected = {
      orders: ['1:OrderCreated', '2:OrderClosed'],
      inventory: ['1:StockReserved', '2:ReservationConsumed'],
      payments: ['1:PaymentAuthorized', '2:PaymentCaptured'],
      shipping: ['1:ShipmentScheduled', '2:ShipmentDispatched'],
    } as const;
    for (const [service, events] of Object.entries(expected)) {
      let published: string[] = [];
      for (let i = 0; i < 50 && published.length < events.length; i++) {
        published = await system.publishedEvents(service as keyof typeof expected, orderId);
        if (published.length < events.length) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(published, events, `${service} published the order's events`);
    }

    // The orders service keeps the order as its event list: its own events, and what the others' streams told it.
    let history: Json = {};
    for (let i = 0; i < 100 && history.events?.length !== 8; i++) {
      history = (await http('GET', `/orders/${orderId}/events`)).body;
      if (history.events?.length !== 8) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const events = history.events as { sequence: number; type: string; source: string }[];
    assert.deepEqual(events.map((event) => event.sequence), [1, 2, 3, 4, 5, 6, 7, 8], JSON.stringify(events));
    assert.equal(events[0].type, 'OrderCreated');
    const bySource = (source: string) => events.filter((event) => event.source === source).map((event) => event.type);
    assert.deepEqual(bySource('orders'), ['OrderCreated', 'OrderClosed']);
    assert.deepEqual(bySource('inventory'), ['StockReserved', 'ReservationConsumed'], 'in the order the inventory service published them');
    assert.deepEqual(bySource('payments'), ['PaymentAuthorized', 'PaymentCaptured']);
    assert.deepEqual(bySource('shipping'), ['ShipmentScheduled', 'ShipmentDispatched']);
    assert.deepEqual(
      { status: history.state.status, reservation: history.state.reservation, payment: history.state.payment, shipment: history.state.shipment },
      { status: 'COMPLETED', reservation: 'CONSUMED', payment: 'CAPTURED', shipment: 'DISPATCHED' },
    );
    assert.deepEqual(history.state, stateOfRecord((await findOrder(ordersDb, orderId))!), 'the fold equals what the service reports');
    assert.equal((await http('GET', `/orders/${orderId}/events`, undefined, {}, 'otherClient')).status, 404, "another client's order");
  });

  it('lists orders from the query database: filtered, newest first, a page at a time, with how far behind it is', async function () {
    // Orders of this suite so far, and two more of another customer.
    const placed: string[] = [];
    for (let i = 0; i < 2; i++) placed.push((await placeOrder({ customerId: 'cust-dave', lines: [{ sku: 'CB-005', quantity: 1 + i }] })).body.orderId as string);
    for (const orderId of placed) await waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    await system.viewsCaughtUp();

    const all = await http('GET', '/orders?limit=100', undefined, {}, 'manager');
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.asOf.pendingEvents, 0, 'caught up');
    const ids = all.body.orders.map((order: Json) => order.orderId);
    for (const orderId of placed) assert.ok(ids.includes(orderId));
    const times = all.body.orders.map((order: Json) => order.createdAt);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    const first = all.body.orders.find((order: Json) => order.orderId === placed[1]);
    assert.deepEqual(
      { status: first.status, customerId: first.customerId, totalCents: first.totalCents, reservation: first.reservation, payment: first.payment?.status },
      { status: 'PENDING', customerId: 'cust-dave', totalCents: 2 * 900, reservation: 'RESERVED', payment: 'AUTHORIZED' },
    );

    // Filters, and pages that add up to the whole list.
    const dave = await http('GET', '/orders?customerId=cust-dave&status=PENDING', undefined, {}, 'manager');
    assert.ok(dave.body.orders.every((order: Json) => order.customerId === 'cust-dave' && order.status === 'PENDING'));
    assert.ok(placed.every((orderId) => dave.body.orders.some((order: Json) => order.orderId === orderId)));
    const since = await http('GET', `/orders?from=${encodeURIComponent(first.createdAt)}`, undefined, {}, 'manager');
    assert.ok(since.body.orders.every((order: Json) => order.createdAt >= first.createdAt));
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: HttpResponse = await http('GET', `/orders?limit=2${cursor ? `&cursor=${cursor}` : ''}`, undefined, {}, 'manager');
      assert.ok(page.body.orders.length <= 2);
      paged.push(...page.body.orders.map((order: Json) => order.orderId));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(paged, ids);

    // A client sees its own orders only; bad parameters are named.
    const own = await http('GET', '/orders?limit=100');
    assert.equal(own.status, 200);
    assert.ok(own.body.orders.length > 0);
    const bad = await http('GET', '/orders?status=LOST&limit=1000&cursor=nope&colour=red', undefined, {}, 'manager');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.error.fields.map((field: Json) => field.field).sort(), ['query', 'query.cursor', 'query.limit', 'query.status']);
    for (const orderId of placed) await http('POST', `/orders/${orderId}/cancel`, { reason: 'listing test' });
  });

  it('a payment declined by the provider ends REJECTED with stock and credit restored', async function () {
    const [stockBefore, creditBefore] = [await stockOf('MN-003'), await creditUsedBy('cust-alice')];
    const { orderId } = (await placeOrder({ customerId: 'cust-alice', lines: [{ sku: 'MN-003', quantity: 1 }] })).body;
    await waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    assert.equal(await creditUsedBy('cust-alice'), creditBefore + 32_900, 'the authorization holds credit');
    assert.equal((await providerDecides(orderId, 'DECLINED')).body.status, 'DECLINED');
    const rejected = await waitForStatus(orderId, 'REJECTED');
    assert.match(rejected.failureReason, /declined by the provider/);
    assert.deepEqual(rejected.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.equal(await stockOf('MN-003'), stockBefore);
    assert.equal(await creditUsedBy('cust-alice'), creditBefore);
  });

  it('answers the outcome directly when asked to wait (?wait=)', async function () {
    const stockBefore = await stockOf('MS-002');
    const response = await placeOrder({ customerId: 'cust-carol', lines: [{ sku: 'MS-002', quantity: 1 }] }, {}, '?wait=20');
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'REJECTED');
    assert.match(response.body.failureReason, /insufficient credit/);
    assert.equal(await stockOf('MS-002'), stockBefore);

    const pending = await placeOrder({ customerId: 'cust-alice', lines: [{ sku: 'MS-002', quantity: 1 }] }, {}, '?wait=1');
    assert.equal(pending.status, 202, 'a saga still waiting when the wait ends is answered 202');
    await http('POST', `/orders/${pending.body.orderId}/cancel`, { reason: 'test cleanup' });
    await waitForStatus(pending.body.orderId, 'CANCELLED');
  });

  it('answers at the decision when asked to (?until=decision): accepted before the dispatch window, or refused', async function () {
    const key = `decision-${randomUUID()}`;
    const placing = placeOrder({ customerId: 'cust-bob', lines: [{ sku: 'MS-002', quantity: 1 }] }, { 'Idempotency-Key': key }, '?wait=30&until=decision');
    // The suite plays the bank: the order is accepted once the provider confirms its payment.
    const placed = orderIdForKey({ clientId: PRINCIPALS.client, customerId: 'cust-bob' }, key);
    await waitForStatus(placed, 'AWAITING_PAYMENT_CONFIRMATION');
    await providerDecides(placed, 'CONFIRMED');
    const accepted = await placing;
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.orderId, placed);
    assert.equal(accepted.body.decision, 'ACCEPTED');
    assert.equal(accepted.body.status, 'AWAITING_DISPATCH', 'answered before the dispatch window, not at the end');
    assert.equal(accepted.headers.get('location'), `/orders/${placed}`);
    await waitForStatus(placed, 'COMPLETED');

    const refused = await placeOrder({ customerId: 'cust-carol', lines: [{ sku: 'MS-002', quantity: 1 }] }, {}, '?wait=20&until=decision');
    assert.equal(refused.status, 200);
    assert.equal(refused.body.decision, 'REFUSED');
    assert.match(refused.body.failureReason, /insufficient credit/);
  });

  it('starts one saga for a repeated Idempotency-Key, even when the requests race', async function () {
    const order = { customerId: 'cust-dave', lines: [{ sku: 'CB-005', quantity: 3 }] };
    const key = `e2e-${Date.now()}`;
    const responses = await Promise.all([1, 2, 3, 4].map(() => placeOrder(order, { 'Idempotency-Key': key })));
    const ids = new Set(responses.map((response) => response.body.orderId));
    assert.equal(ids.size, 1, 'every request names the same order');
    const [orderId] = ids;
    assert.equal(responses.filter((response) => response.headers.get('idempotent-replayed') === 'true').length, 3);
    let runs: string[] = [];
    for (let i = 0; i < 50 && runs.length === 0; i++) {
      runs = [];
      for await (const execution of client.workflow.list({ query: `WorkflowId = '${orderId}'` })) runs.push(execution.runId);
      if (runs.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(runs.length, 1, 'exactly one workflow run');

    const different = await http('POST', '/orders', { ...order, lines: [{ sku: 'CB-005', quantity: 4 }] }, { 'Idempotency-Key': key });
    assert.equal(different.status, 409, 'the same key with a different order is refused');

    await waitForStatus(orderId as string, 'AWAITING_PAYMENT_CONFIRMATION');
    await providerDecides(orderId as string, 'CONFIRMED');
    await waitForStatus(orderId as string, 'COMPLETED');
    const replay = await http('POST', '/orders', order, { 'Idempotency-Key': key });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.orderId, orderId);
    assert.equal(replay.body.status, 'COMPLETED');
    assert.equal(replay.body.requestFingerprint, undefined, 'the fingerprint is internal');
    // Closed, the order is checked against the request as a running one is: a different body is refused.
    const closedDifferent = await http('POST', '/orders', { ...order, lines: [{ sku: 'CB-005', quantity: 4 }] }, { 'Idempotency-Key': key });
    assert.equal(closedDifferent.status, 409, JSON.stringify(closedDifferent.body));
    assert.equal(closedDifferent.body.error.code, 'conflict');
  });

  it('waits for a manager above the approval threshold, and only a manager can approve', async function () {
    const { orderId } = (await placeOrder({ customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] })).body;
    const waiting = await waitForStatus(orderId, 'AWAITING_APPROVAL');
    assert.equal(waiting.approvalRequired, true);

    const anonymous = await http('POST', `/orders/${orderId}/approve`, { manager: 'mallory' }, {}, 'anonymous');
    assert.equal(anonymous.status, 401);
    const wrongToken = await http('POST', `/orders/${orderId}/approve`, { manager: 'mallory' }, { authorization: 'Bearer nope' });
    assert.equal(wrongToken.status, 401);
    const byTheClient = await http('POST', `/orders/${orderId}/approve`, {}, {}, 'client');
    assert.equal(byTheClient.status, 403, 'a client application cannot approve its own order');
    const byAnOperator = await http('POST', `/orders/${orderId}/approve`, {}, {}, 'operator');
    assert.equal(byAnOperator.status, 403);

    const approved = await http('POST', `/orders/${orderId}/approve`, { manager: PRINCIPALS.manager }, { authorization: `Bearer ${KEYS.manager}` });
    assert.equal(approved.status, 200);
    await waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    const again = await http('POST', `/orders/${orderId}/reject`, {}, {}, 'manager');
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /already approved|not awaiting approval/);
    await http('POST', `/orders/${orderId}/cancel`);
    await waitForStatus(orderId, 'CANCELLED');
  });

  it('takes the first manager decision only: a second approve or reject, even at the same moment, is a 409', async function () {
    const { orderId } = (await placeOrder({ customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] })).body;
    await waitForStatus(orderId, 'AWAITING_APPROVAL');
    const decisions = await Promise.all([
      http('POST', `/orders/${orderId}/approve`, { note: 'fine' }, {}, 'manager'),
      http('POST', `/orders/${orderId}/reject`, { note: 'too expensive' }, {}, 'manager'),
      http('POST', `/orders/${orderId}/approve`, {}, {}, 'manager'),
    ]);
    const statuses = decisions.map((decision) => decision.status).sort();
    assert.deepEqual(statuses, [200, 409, 409], decisions.map((decision) => decision.text).join('\n'));
    for (const refused of decisions.filter((decision) => decision.status === 409)) assert.equal(refused.body.error.code, 'conflict');
    const winner = decisions.find((decision) => decision.status === 200)!;
    const approvedFirst = decisions.indexOf(winner) !== 1;
    const state = await waitForStatus(orderId, approvedFirst ? 'AWAITING_PAYMENT_CONFIRMATION' : 'REJECTED');
    if (!approvedFirst) assert.match(state.failureReason, /rejected by maria: too expensive/);
    const late = await http('POST', `/orders/${orderId}/${approvedFirst ? 'reject' : 'approve'}`, {}, {}, 'manager');
    assert.equal(late.status, 409, 'a late decision is refused too');
    if (approvedFirst) {
      await http('POST', `/orders/${orderId}/cancel`);
      await waitForStatus(orderId, 'CANCELLED');
    }
  });

  it('cancels through the API with compensation, and refuses to cancel a closed order', async function () {
    const stockBefore = await stockOf('GPU-006');
    const { orderId } = (await placeOrder({ customerId: 'cust-dave', lines: [{ sku: 'GPU-006', quantity: 1 }] })).body;
    await waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    const cancel = await http('POST', `/orders/${orderId}/cancel`, { reason: 'found it cheaper' });
    assert.equal(cancel.status, 202);
    const cancelled = await waitForStatus(orderId, 'CANCELLED');
    assert.equal(cancelled.failureReason, 'found it cheaper');
    assert.deepEqual(cancelled.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.equal(await stockOf('GPU-006'), stockBefore);

    const again = await http('POST', `/orders/${orderId}/cancel`);
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /is CANCELLED/);
    const nullBody = await http('POST', `/orders/${orderId}/cancel`, 'null', { 'content-type': 'application/json' });
    assert.equal(nullBody.status, 400, 'a JSON null body is not "no body"');
    const late = await providerCallback(orderId, 'CONFIRMED');
    assert.equal(late.status, 409, 'a callback for a closed order is refused');
  });

  describe('bad input', function () {
    const cases: [string, unknown, string][] = [
      ['a missing customerId', { lines: [{ sku: 'KB-001', quantity: 1 }] }, 'customerId'],
      ['no lines', { customerId: 'cust-alice', lines: [] }, 'lines'],
      ['a zero quantity', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 0 }] }, 'lines[0].quantity'],
      ['a negative quantity', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: -5 }] }, 'lines[0].quantity'],
      ['a fractional quantity', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1.5 }] }, 'lines[0].quantity'],
      ['a huge quantity', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1e12 }] }, 'lines[0].quantity'],
      ['a quantity as text', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: '2' }] }, 'lines[0].quantity'],
      ['an unknown SKU', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }, { sku: 'NOPE-1', quantity: 1 }] }, 'lines[1].sku'],
      ['a duplicated SKU', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }, { sku: 'KB-001', quantity: 2 }] }, 'lines[1].sku'],
      ['an unknown customer', { customerId: 'cust-nobody', lines: [{ sku: 'KB-001', quantity: 1 }] }, 'customerId'],
      ['an unexpected field', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }], total: 1 }, 'body'],
      ['an array body', [{ customerId: 'cust-alice' }], 'body'],
    ];
    let ordersBefore: number;
    let workflowsBefore: number;
    before(async function () {
      ordersBefore = await ordersDb.order.count();
      workflowsBefore = (await client.workflow.count()).count;
    });

    /** Nothing exists for the order this request would have created: no workflow, no orders-database row. */
    async function assertNothingStartedFor(body: unknown, key: string) {
      const customerId = typeof (body as Json)?.customerId === 'string' ? (body as Json).customerId : '';
      const orderId = orderIdForKey({ clientId: PRINCIPALS.client, customerId }, key);
      await assert.rejects(client.workflow.getHandle(orderId).describe(), WorkflowNotFoundError, `a workflow ${orderId} was started`);
      assert.equal(await findOrder(ordersDb, orderId), undefined, `an order ${orderId} was recorded`);
    }

    for (const [what, body, field] of cases) {
      it(`answers 400 naming ${field} for ${what}, and starts nothing`, async function () {
        const key = `bad-${what.replaceAll(' ', '-')}`;
        const response = await http('POST', '/orders', body, { 'Idempotency-Key': key });
        assert.equal(response.status, 400, JSON.stringify(response.body));
        assert.equal(response.body.error.code, 'validation_failed');
        assert.ok(
          response.body.error.fields.some((f: Json) => f.field === field),
          `expected a field error for ${field}: ${JSON.stringify(response.body.error.fields)}`,
        );
        await assertNothingStartedFor(body, key);
      });
    }

    it('answers 400 for malformed JSON, 415 for another content type, 413 for a huge body', async function () {
      const malformed = await http('POST', '/orders', '{"customerId": ', {});
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.code, 'invalid_json');
      const text = await http('POST', '/orders', undefined, { 'content-type': 'text/plain' });
      assert.equal(text.status, 415);
      const huge = await http('POST', '/orders', { customerId: 'cust-alice', lines: [], padding: 'x'.repeat(100_000) });
      assert.equal(huge.status, 413);
    });

    it('answers 400 for a bad wait parameter or Idempotency-Key', async function () {
      const order = { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] };
      assert.equal((await http('POST', '/orders?wait=forever', order)).body.error.fields[0].field, 'wait');
      assert.equal((await http('POST', '/orders?wait=5&until=later', order)).body.error.fields[0].field, 'until');
      assert.equal((await http('POST', '/orders', order, { 'Idempotency-Key': 'x'.repeat(300) })).body.error.fields[0].field, 'Idempotency-Key');
    });

    it('answers 404 for unknown orders and routes, 401 for unsigned callbacks', async function () {
      assert.equal((await http('GET', '/orders/ord_does_not_exist')).status, 404);
      assert.equal((await http('POST', '/orders/ord_does_not_exist/cancel')).status, 404);
      assert.equal((await http('GET', '/orders/bad%20id')).status, 400);
      assert.equal((await http('GET', '/nowhere')).status, 404);
      assert.equal((await providerCallback('ord_x', 'CONFIRMED', 'wrong-secret')).status, 401);
      assert.equal((await http('POST', '/payments/callback', { orderId: 'ord_x', providerRef: 'p', outcome: 'CONFIRMED' })).status, 401);
    });

    it('started no workflow and recorded no order for any of the bad requests above', async function () {
      // Visibility is eventually consistent: give a start that should not have happened time to show.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.equal(await ordersDb.order.count(), ordersBefore, 'no order row was written');
      assert.equal((await client.workflow.count()).count, workflowsBefore, 'no workflow was started');
    });
  });

  it('reports health of Temporal, the query database, NATS, every service and the event path', async function () {
    await system.viewsCaughtUp();
    const health = await http('GET', '/health');
    assert.equal(health.status, 200);
    const { events, ...servers } = health.body;
    assert.deepEqual(servers, {
      status: 'ok',
      temporal: 'ok',
      databases: { query: 'ok' },
      nats: 'ok',
      services: { orders: 'ok', inventory: 'ok', payments: 'ok', shipping: 'ok' },
    });
    // The event path, as each service reports its outbox and the query side its lag: all caught up here.
    for (const service of ['orders', 'inventory', 'payments', 'shipping']) {
      const outbox = events.outboxes[service];
      assert.equal(outbox.backlog, 0, `${service}: ${JSON.stringify(outbox)}`);
      assert.ok(outbox.published > 0);
      if (system.config.events.relayMode === 'wal') {
        assert.equal(outbox.slot.name, `outbox_relay_e2e_${service}`);
        assert.equal(outbox.slot.active, true);
        assert.equal(typeof outbox.slot.lagBytes, 'number');
      }
    }
    assert.equal(events.views.pendingEvents, 0);
  });

  it('leaves every order fully done or fully undone, and the event path whole (consistency auditor)', async function () {
    const nats = await connectNats(stack.natsServers, 'e2e-audit');
    try {
      const report = await auditDatabases(stack.databaseUrls, { events: { queryDatabaseUrl: stack.queryDatabaseUrl, nats } });
      assert.equal(report.orders.inFlight, 0, 'every saga of this suite has ended');
      assert.ok(report.orders.completed >= 2 && report.orders.rejected >= 2 && report.orders.cancelled >= 3, JSON.stringify(report.orders));
      assert.equal(report.violations, 0, formatReport(report));
      const checked = (name: RegExp) => report.checks.find((check) => name.test(check.name))?.checked ?? 0;
      assert.ok(checked(/^no event lost/) > 0 && checked(/fold equals/) >= report.orders.total && checked(/every order view/) >= report.orders.total, formatReport(report));
    } finally {
      await nats.close();
    }
  });

  it('the audit names an event path that does not add up: a view, an order snapshot, an event missing from its stream', async function () {
    const [cancelled] = await ordersDb.order.findMany({ where: { status: 'CANCELLED' }, take: 1 });
    const [completed] = await ordersDb.order.findMany({ where: { status: 'COMPLETED' }, take: 1 });
    const [row] = await ordersDb.$queryRaw<{ id: string }[]>`SELECT id::text FROM outbox WHERE aggregate_id = ${completed.id} ORDER BY sequence LIMIT 1`;
    const query = connectQueryDb(stack.queryDatabaseUrl);
    const nats = await connectNats(stack.natsServers, 'e2e-audit');
    const stranger = randomUUID();
    try {
      await query.$executeRaw`UPDATE order_view SET status = 'COMPLETED' WHERE order_id = ${cancelled.id}`;
      await ordersDb.$executeRaw`UPDATE orders SET payment_status = 'VOIDED' WHERE id = ${completed.id}`;
      await ordersDb.$executeRaw`UPDATE outbox SET id = ${stranger}::uuid WHERE id = ${row.id}::uuid`; // an UPDATE is not relayed
      const report = await auditDatabases(stack.databaseUrls, { events: { queryDatabaseUrl: stack.queryDatabaseUrl, nats, settleMs: 0 } });
      const examples = (name: RegExp) => report.checks.filter((check) => name.test(check.name)).flatMap((check) => check.examples).join('\n');
      assert.match(examples(/every order view/), new RegExp(`${cancelled.id}: view .*"status":"COMPLETED"`));
      assert.match(examples(/fold equals/), new RegExp(`${completed.id}: fold`));
      assert.match(examples(/agrees with those services/), new RegExp(`${completed.id}: .*"payment":"VOIDED"`));
      assert.match(examples(/^no event lost/), new RegExp(stranger));
    } finally {
      await ordersDb.$executeRaw`UPDATE outbox SET id = ${row.id}::uuid WHERE id = ${stranger}::uuid`;
      await ordersDb.$executeRaw`UPDATE orders SET payment_status = 'CAPTURED' WHERE id = ${completed.id}`;
      await query.$executeRaw`UPDATE order_view SET status = 'CANCELLED' WHERE order_id = ${cancelled.id}`;
      await Promise.all([query.$disconnect(), nats.close()]);
    }
  });

  describe('with Temporal unreachable', function () {
    let orphan: ApiServer;
    before(async function () {
      // A second API on the same databases, pointed at a port where no Temporal server listens.
      orphan = await startApiServer({ config: system.sideApiConfig(), serviceUrls: stack.serviceUrls, queryDatabaseUrl: stack.queryDatabaseUrl, natsServers: stack.natsServers, temporalAddress: `127.0.0.1:${await freePort()}` });
    });
    after(async function () {
      await orphan?.close();
    });

    it('answers 503 with a JSON error within a bounded time, and /health says why', async function () {
      const startedAt = Date.now();
      const response = await fetch(`${orphan.url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.client}` },
        body: JSON.stringify({ customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] }),
      });
      assert.equal(response.status, 503);
      assert.equal(((await response.json()) as Json).error.code, 'temporal_unavailable');
      assert.ok(Date.now() - startedAt < 15_000, 'the API does not hang');
      const health = await fetch(`${orphan.url}/health`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as Json).temporal, 'unreachable');
    });
  });
});
