// The payment provider client (httpPaymentProvider) against the real sandbox provider over HTTP, how it
// classifies what goes wrong (an impossible transition, an unknown reference, a wrong key, an outage, a 5xx, a
// provider that does not answer), and the callback signature the API checks.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../src/local-stack/free-port';
import {
  httpPaymentProvider,
  isValidSignature,
  listAllAuthorizations,
  ProviderConflictError,
  ProviderNotFoundError,
  ProviderRequestError,
  signCallback,
  type PaymentProvider,
} from '../../src/activities/payments/provider';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { API_KEY, decide, startReceiver, startTestProvider, tempDataDir, type Receiver } from '../payment-provider/support';

describe('payment provider client (httpPaymentProvider → sandbox provider)', function () {
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  let sandbox: RunningPaymentProvider;
  let provider: PaymentProvider;
  let sequence = 0;
  const newRef = () => `pay_client_${++sequence}`;

  before(async function () {
    receiver = await startReceiver();
    data = tempDataDir();
    sandbox = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    provider = httpPaymentProvider({ url: `${sandbox.url}/`, apiKey: API_KEY });
  });

  after(async function () {
    await sandbox?.stop();
    await receiver?.close();
    data?.remove();
  });

  it('authorizes idempotently and walks an authorization through capture and refund', async function () {
    const providerRef = newRef();
    const request = { providerRef, orderId: `ord_${providerRef}`, amountCents: 9_999 };
    const first = await provider.authorize(request);
    assert.equal(first.status, 'PENDING');
    assert.deepEqual(await provider.authorize(request), first);
    assert.deepEqual(await provider.get(providerRef), first);

    await decide(sandbox.url, providerRef, 'CONFIRMED');
    assert.equal((await provider.capture(providerRef)).status, 'CAPTURED');
    assert.equal((await provider.capture(providerRef)).status, 'CAPTURED');
    assert.equal((await provider.refund(providerRef)).status, 'REFUNDED');
    assert.equal((await provider.refund(providerRef)).status, 'REFUNDED');
  });

  it('voids, leaving a tombstone for an unknown reference with the order id given', async function () {
    const providerRef = newRef();
    const tombstone = await provider.void(providerRef, { orderId: 'ord_t' });
    assert.equal(tombstone.status, 'VOIDED');
    assert.equal(tombstone.tombstone, true);
    assert.equal(tombstone.orderId, 'ord_t');
    assert.deepEqual(await provider.authorize({ providerRef, orderId: 'ord_t', amountCents: 5 }), tombstone);
  });

  it('throws ProviderConflictError with the current status for an impossible transition, and for a reused key', async function () {
    const providerRef = newRef();
    await provider.authorize({ providerRef, orderId: 'ord_c', amountCents: 100 });
    await assert.rejects(provider.capture(providerRef), (error: unknown) => {
      assert.ok(error instanceof ProviderConflictError);
      assert.equal(error.code, 'invalid_transition');
      assert.equal(error.currentStatus, 'PENDING');
      assert.match(error.message, /cannot capture .* PENDING/);
      return true;
    });
    await assert.rejects(provider.authorize({ providerRef, orderId: 'ord_c', amountCents: 101 }), (error: unknown) => {
      assert.ok(error instanceof ProviderConflictError);
      assert.equal(error.code, 'idempotency_key_reused');
      return true;
    });
  });

  it('answers undefined from get() for an unknown reference, and throws ProviderNotFoundError from capture/refund', async function () {
    const providerRef = newRef();
    assert.equal(await provider.get(providerRef), undefined);
    await assert.rejects(provider.capture(providerRef), ProviderNotFoundError);
    await assert.rejects(provider.refund(providerRef), ProviderNotFoundError);
  });

  it('lists every record across pages', async function () {
    const refs = Array.from({ length: 5 }, newRef);
    for (const providerRef of refs) await provider.authorize({ providerRef, orderId: `ord_${providerRef}`, amountCents: 1 });
    const all = await listAllAuthorizations(provider, 2);
    for (const providerRef of refs) assert.equal(all.filter((record) => record.providerRef === providerRef).length, 1);
    const page = await provider.list({ limit: 2 });
    assert.equal(page.data.length, 2);
    assert.equal(page.hasMore, true);
    assert.equal(page.nextAfter, page.data[1].providerRef);
  });

  it('a wrong API key is a ProviderRequestError (401), a plain retryable error', async function () {
    const wrong = httpPaymentProvider({ url: sandbox.url, apiKey: 'not-the-key' });
    await assert.rejects(wrong.get('pay_x'), (error: unknown) => {
      assert.ok(error instanceof ProviderRequestError);
      assert.equal(error.status, 401);
      return true;
    });
  });

  it('an unreachable provider, a 5xx and a provider that does not answer are plain errors with a clear message', async function () {
    const nothingThere = httpPaymentProvider({ url: `http://127.0.0.1:${await freePort()}`, apiKey: API_KEY });
    await assert.rejects(nothingThere.authorize({ providerRef: 'pay_u', orderId: 'ord_u', amountCents: 1 }), (error: any) => {
      assert.equal(error.constructor, Error);
      assert.match(error.message, /payment provider at http:\/\/127\.0\.0\.1:\d+ is unreachable \(POST \/v1\/authorizations\): ECONNREFUSED/);
      return true;
    });

    // Stand-ins for a failing provider: these test the client's handling of answers the sandbox does not give.
    let mode: 'error' | 'silent' = 'error';
    const failing: Server = createServer((_req, res) => {
      if (mode === 'error') res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"overloaded","message":"try later"}}');
      // silent: never answers
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
      const client = httpPaymentProvider({ url, apiKey: API_KEY, timeoutMs: 300 });
      await assert.rejects(client.capture('pay_5'), (error: any) => {
        assert.equal(error.constructor, Error);
        assert.match(error.message, /answered POST \/v1\/authorizations\/pay_5\/capture with HTTP 503/);
        return true;
      });
      mode = 'silent';
      await assert.rejects(client.get('pay_6'), (error: any) => {
        assert.equal(error.constructor, Error);
        assert.match(error.message, /did not answer GET \/v1\/authorizations\/pay_6 within 300 ms/);
        return true;
      });
    } finally {
      failing.closeAllConnections();
      failing.close();
    }
  });
});

describe('payment callback signature', function () {
  it('accepts only a signature made with the same secret over the same bytes', function () {
    const body = Buffer.from('{"orderId":"ord_x"}');
    const signature = signCallback('secret', body);
    assert.ok(isValidSignature('secret', body, signature));
    assert.ok(!isValidSignature('other', body, signature));
    assert.ok(!isValidSignature('secret', Buffer.from('{"orderId":"ord_y"}'), signature));
    assert.ok(!isValidSignature('secret', body, undefined));
    assert.ok(!isValidSignature('secret', body, 'not-hex'));
  });
});
