// Property-based tests of the whole HTTP API against the real system: whatever arrives — random or
// malformed bodies, wrong types, huge or negative quantities, unknown or duplicated SKUs, unicode, wrong
// content types, oversized payloads, unsigned callbacks, actions on unknown or finished orders, the same
// Idempotency-Key replayed or raced — the answer is a 4xx with a JSON error or a correct success:
// never a 5xx, never a hang, never a second saga.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SEED_PRODUCTS } from '../../src/activities/inventory/catalog';
import { SEED_CUSTOMERS } from '../../src/activities/payments/customers';
import { signCallback, SIGNATURE_HEADER } from '../../src/activities/payments/provider';
import { MAX_LINES, MAX_QUANTITY } from '../../src/api/validation';
import { TestStack, type As, type HttpResponse } from '../support/stack';

const SKUS = SEED_PRODUCTS.map((p) => p.sku);
const CUSTOMERS = SEED_CUSTOMERS.map((c) => c.id);
const RUNS = { numRuns: 60 };

/** Every answer: a success, or a 4xx whose body is a JSON error naming what was wrong. */
function assertWellFormed(response: HttpResponse, context: unknown): void {
  assert.ok(response.status < 500, `5xx for ${JSON.stringify(context)}: ${response.text}`);
  if (response.status >= 400) {
    assert.equal(typeof response.body.error?.code, 'string', `no JSON error for ${JSON.stringify(context)}: ${response.text}`);
    assert.equal(typeof response.body.error?.message, 'string');
  }
}

/** The API's contract for an order, written independently of its implementation. */
function isValidOrder(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const { customerId, lines, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || typeof customerId !== 'string' || !CUSTOMERS.includes(customerId)) return false;
  if (!Array.isArray(lines) || lines.length < 1 || lines.length > MAX_LINES) return false;
  const skus = new Set<string>();
  for (const line of lines) {
    if (typeof line !== 'object' || line === null || Array.isArray(line)) return false;
    const { sku, quantity, ...extra } = line as Record<string, unknown>;
    if (Object.keys(extra).length > 0 || typeof sku !== 'string' || !SKUS.includes(sku) || skus.has(sku)) return false;
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) return false;
    skus.add(sku);
  }
  return true;
}

const quantity = fc.oneof(
  fc.integer({ min: 1, max: 5 }),
  fc.integer({ min: -1_000_000, max: 0 }),
  fc.constantFrom(1_001, 2 ** 31, 2 ** 53, 1e308, -0, 0.5, 2.5),
  fc.double({ noNaN: false }),
  fc.string(),
  fc.constant(null),
  fc.boolean(),
);
const sku = fc.oneof(fc.constantFrom(...SKUS), fc.constantFrom(...SKUS), fc.string(), fc.string({ unit: 'grapheme' }), fc.constant(''), fc.integer());
const line = fc.oneof(
  fc.record({ sku, quantity }),
  fc.record({ sku, quantity }, { requiredKeys: [] }),
  fc.record({ sku, quantity, price: fc.integer() }),
  fc.jsonValue(),
);
const plausibleOrder = fc.record({
  customerId: fc.constantFrom(...CUSTOMERS),
  lines: fc.uniqueArray(fc.record({ sku: fc.constantFrom(...SKUS), quantity: fc.integer({ min: 1, max: 3 }) }), {
    selector: (l) => l.sku,
    minLength: 1,
    maxLength: 3,
  }),
});
const orderBody = fc.oneof(
  plausibleOrder,
  fc.record({ customerId: fc.oneof(fc.constantFrom(...CUSTOMERS), fc.string({ unit: 'grapheme' }), fc.integer()), lines: fc.array(line, { maxLength: 4 }) }),
  fc.record({ customerId: fc.constantFrom(...CUSTOMERS), lines: fc.array(line, { minLength: 1, maxLength: 3 }) }, { requiredKeys: [] }),
  fc.jsonValue(),
);

describe('hostile input (property-based, against the running system)', function () {
  let system: TestStack;

  before(async function () {
    // Orders that do start wait for a provider that never calls: they stay in flight, holding little stock.
    system = await TestStack.start('hostile');
  });

  after(async function () {
    await system?.stop();
  });

  it('answers any order body with a correct success or a 4xx JSON error, never a 5xx', async function () {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(orderBody, async (body) => {
        const response = await system.http('POST', '/orders', JSON.stringify(body), { 'content-type': 'application/json' });
        assertWellFormed(response, body);
        if (isValidOrder(body)) {
          assert.equal(response.status, 202, `a valid order was refused: ${JSON.stringify(body)} → ${response.text}`);
          assert.match(response.body.orderId, /^ord_[0-9a-f]{32}$/);
          accepted++;
          await system.http('POST', `/orders/${response.body.orderId}/cancel`, { reason: 'property test cleanup' });
        } else {
          assert.equal(response.status, 400, `an invalid order was not refused: ${JSON.stringify(body)} → ${response.text}`);
          assert.ok(Array.isArray(response.body.error.fields) && response.body.error.fields.length > 0, 'the refusal names a field');
          refused++;
        }
      }),
      { numRuns: 100 },
    );
    assert.ok(accepted >= 5 && refused >= 50, `both sides exercised: ${accepted} accepted, ${refused} refused`);
  });

  it('answers raw bytes under any content type with a 4xx, never a 5xx', async function () {
    const contentType = fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data', '');
    const raw = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)), fc.constant('{"customerId":'));
    await fc.assert(
      fc.asyncProperty(contentType, raw, async (type, body) => {
        const response = await system.http('POST', '/orders', body, type ? { 'content-type': type } : { 'content-type': 'application/octet-stream' });
        assertWellFormed(response, { type, body: String(body) });
        assert.ok(response.status >= 400 && response.status < 500);
      }),
      RUNS,
    );
  });

  it('refuses an oversized payload with 413', async function () {
    const response = await system.http('POST', '/orders', { customerId: 'cust-alice', lines: Array.from({ length: 5_000 }, () => ({ sku: 'KB-001', quantity: 1 })) });
    assert.equal(response.status, 413);
    assertWellFormed(response, 'oversized');
  });

  it('answers any action on unknown orders with 400, 401 or 404, never a 5xx', async function () {
    // "." and ".." are dot segments: a URL client resolves /orders/. to /orders/ (the list) before anything is sent,
    // percent-encoded or not (%2E is a dot segment too), so no request can name an order so.
    const isDotSegment = (id: string) => id === '.' || id === '..';
    const orderId = fc
      .oneof(fc.string({ minLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1 }), fc.stringMatching(/^ord_[0-9a-f]{32}$/))
      .filter((id) => !isDotSegment(id));
    const action = fc.constantFrom('GET', 'cancel', 'approve', 'reject');
    await fc.assert(
      fc.asyncProperty(orderId, action, fc.boolean(), async (id, act, authorized) => {
        const url = `/orders/${encodeURIComponent(id)}${act === 'GET' ? '' : `/${act}`}`;
        // With the key of the role the action needs, or with none.
        const as: As = !authorized ? 'anonymous' : act === 'approve' || act === 'reject' ? 'manager' : 'client';
        const body = act === 'approve' || act === 'reject' ? { note: 'fuzz' } : undefined;
        const response = await system.http(act === 'GET' ? 'GET' : 'POST', url, body, {}, as);
        assertWellFormed(response, { id, act });
        assert.ok([400, 401, 404].includes(response.status), `${url} answered ${response.status}`);
      }),
      RUNS,
    );
  });

  it('accepts a payment callback only when signed with the secret', async function () {
    const body = fc.oneof(fc.jsonValue().map((value) => JSON.stringify(value)), fc.string());
    const signature = fc.oneof(fc.constant(undefined), fc.string(), fc.stringMatching(/^[0-9a-f]{64}$/));
    await fc.assert(
      fc.asyncProperty(body, signature, fc.boolean(), async (raw, forged, signedProperly) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (signedProperly) headers[SIGNATURE_HEADER] = signCallback('e2e-webhook-secret', raw);
        else if (forged !== undefined) headers[SIGNATURE_HEADER] = forged;
        const response = await system.http('POST', '/payments/callback', raw, headers, 'anonymous');
        assertWellFormed(response, { raw, signedProperly });
        if (!signedProperly) assert.equal(response.status, 401);
        else assert.ok([400, 404].includes(response.status), `signed junk answered ${response.status}`);
      }),
      RUNS,
    );
  });

  it('starts exactly one saga for an Idempotency-Key, however often and concurrently it is sent', async function () {
    let attempt = 0;
    await fc.assert(
      fc.asyncProperty(fc.uuid(), fc.integer({ min: 2, max: 6 }), fc.constantFrom(...SKUS), async (uuid, copies, chosen) => {
        // Unique per run, so that fast-check re-running a shrunk case does not replay an earlier key.
        const key = `${uuid}-${++attempt}`;
        const order = { customerId: 'cust-dave', lines: [{ sku: chosen, quantity: 1 }] };
        const responses = await Promise.all(Array.from({ length: copies }, () => system.http('POST', '/orders', order, { 'Idempotency-Key': key })));
        responses.forEach((response) => assertWellFormed(response, { key, copies }));
        assert.ok(responses.every((response) => response.status === 202), responses.map((r) => r.status).join(','));
        const ids = new Set(responses.map((response) => response.body.orderId));
        assert.equal(ids.size, 1);
        const [orderId] = ids;
        // Visibility is eventually consistent: wait for the run to be listed, then count.
        let runs: string[] = [];
        for (let i = 0; i < 50 && runs.length === 0; i++) {
          runs = [];
          for await (const execution of system.client.workflow.list({ query: `WorkflowId = '${orderId}'` })) runs.push(execution.runId);
          if (runs.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(runs.length, 1, `one workflow run per key, found ${runs.length}`);
        assert.equal(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true').length, copies - 1);
        await system.http('POST', `/orders/${orderId}/cancel`);
      }),
      { numRuns: 15 },
    );
  });
});
