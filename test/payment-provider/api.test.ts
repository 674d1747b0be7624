// The sandbox payment provider's HTTP API, over real HTTP: authentication, idempotent authorization, the
// state machine with a clear 409 for every impossible transition, tombstones, and the list for reconciliation.
import assert from 'node:assert/strict';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { call, decide, startReceiver, startTestProvider, tempDataDir, type Receiver } from './support';

describe('payment provider API (sandbox, over HTTP)', function () {
  let provider: RunningPaymentProvider;
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  let sequence = 0;
  const newRef = () => `pay_api_${++sequence}`;

  before(async function () {
    receiver = await startReceiver();
    data = tempDataDir();
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
  });

  after(async function () {
    await provider?.stop();
    await receiver?.close();
    data?.remove();
  });

  const authorize = (ref: string, body: Record<string, unknown> = {}, headers: Record<string, string> = { 'idempotency-key': ref }) =>
    call(provider.url, 'POST', '/v1/authorizations', { body: { providerRef: ref, orderId: `ord_${ref}`, amountCents: 1_000, ...body }, headers });
  const action = (ref: string, verb: 'capture' | 'void' | 'refund', body?: unknown) =>
    call(provider.url, 'POST', `/v1/authorizations/${ref}/${verb}`, { body });
  const get = (ref: string) => call(provider.url, 'GET', `/v1/authorizations/${ref}`);

  describe('authentication', function () {
    it('refuses a missing or wrong API key with 401, and accepts the right one', async function () {
      for (const apiKey of [null, 'wrong-key', `${'test-provider-key'}x`, '']) {
        const { status, body } = await call(provider.url, 'GET', '/v1/authorizations', { apiKey });
        assert.equal(status, 401, `API key ${JSON.stringify(apiKey)}`);
        assert.equal(body.error.code, 'unauthorized');
      }
      const unauthorized = await call(provider.url, 'POST', '/v1/authorizations', {
        apiKey: 'wrong-key',
        body: { providerRef: 'pay_x', orderId: 'ord_x', amountCents: 1 },
        headers: { 'idempotency-key': 'pay_x' },
      });
      assert.equal(unauthorized.status, 401);
      assert.equal((await get('pay_x')).status, 404, 'nothing was created without the key');
      assert.equal((await call(provider.url, 'GET', '/v1/authorizations')).status, 200);
      assert.equal((await call(provider.url, 'GET', '/v1/health', { apiKey: null })).status, 200, 'health needs no key');
    });
  });

  describe('POST /v1/authorizations', function () {
    it('creates a PENDING authorization; a replay returns the same record (200, Idempotent-Replayed), never a second one', async function () {
      const ref = newRef();
      const first = await authorize(ref);
      assert.equal(first.status, 201);
      assert.equal(first.body.status, 'PENDING');
      assert.equal(first.body.providerRef, ref);
      assert.equal(first.body.orderId, `ord_${ref}`);
      assert.equal(first.body.amountCents, 1_000);
      assert.equal(first.body.currency, 'USD');
      assert.equal(first.body.tombstone, false);

      const replays = await Promise.all([authorize(ref), authorize(ref), authorize(ref)]);
      for (const replay of replays) {
        assert.equal(replay.status, 200);
        assert.equal(replay.headers.get('idempotent-replayed'), 'true');
        assert.deepEqual(replay.body, first.body);
      }
      const listed = await call(provider.url, 'GET', '/v1/authorizations?limit=1000');
      assert.equal(listed.body.data.filter((record: any) => record.providerRef === ref).length, 1);
    });

    it('concurrent first requests under one key create one authorization', async function () {
      const ref = newRef();
      const answers = await Promise.all(Array.from({ length: 6 }, () => authorize(ref)));
      assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 200, 200, 200, 200, 201]);
      for (const answer of answers) assert.deepEqual(answer.body, answers[0].body);
    });

    it('answers 409 for the same key with a different body, and keeps the original', async function () {
      const ref = newRef();
      await authorize(ref);
      for (const different of [{ amountCents: 1_001 }, { orderId: 'ord_other' }, { currency: 'EUR' }]) {
        const { status, body } = await authorize(ref, different);
        assert.equal(status, 409, JSON.stringify(different));
        assert.equal(body.error.code, 'idempotency_key_reused');
      }
      assert.equal((await get(ref)).body.amountCents, 1_000);
    });

    it('needs an Idempotency-Key equal to providerRef and a valid body', async function () {
      const ref = newRef();
      assert.equal((await authorize(ref, {}, {})).body.error.code, 'idempotency_key_required');
      assert.equal((await authorize(ref, {}, { 'idempotency-key': 'other' })).body.error.code, 'idempotency_key_mismatch');
      for (const bad of [{ amountCents: 0 }, { amountCents: 1.5 }, { amountCents: '100' }, { orderId: '' }, { currency: 'usd' }]) {
        const { status, body } = await authorize(ref, bad);
        assert.equal(status, 400, JSON.stringify(bad));
        assert.equal(body.error.code, 'validation_failed');
      }
      const notJson = await fetch(`${provider.url}/v1/authorizations`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-provider-key', 'content-type': 'text/plain', 'idempotency-key': ref },
        body: 'hello',
      });
      assert.equal(notJson.status, 415);
      const broken = await fetch(`${provider.url}/v1/authorizations`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-provider-key', 'content-type': 'application/json', 'idempotency-key': ref },
        body: '{"providerRef":',
      });
      assert.equal(broken.status, 400);
      assert.equal((await get(ref)).status, 404, 'no refused request created anything');
    });
  });

  describe('transitions', function () {
    it('PENDING → AUTHORIZED → CAPTURED → REFUNDED, each step idempotent', async function () {
      const ref = newRef();
      await authorize(ref);
      assert.equal((await decide(provider.url, ref, 'CONFIRMED')).status, 'AUTHORIZED');
      assert.equal((await decide(provider.url, ref, 'CONFIRMED')).status, 'AUTHORIZED', 'the same decision again is a no-op');
      for (let i = 0; i < 2; i++) {
        const captured = await action(ref, 'capture');
        assert.equal(captured.status, 200);
        assert.equal(captured.body.status, 'CAPTURED');
      }
      for (let i = 0; i < 2; i++) {
        const refunded = await action(ref, 'refund');
        assert.equal(refunded.status, 200);
        assert.equal(refunded.body.status, 'REFUNDED');
      }
      assert.equal((await get(ref)).body.status, 'REFUNDED');
    });

    it('answers 409 with the current status for every impossible transition', async function () {
      const pending = newRef();
      await authorize(pending);
      const expectConflict = async (ref: string, verb: 'capture' | 'void' | 'refund', status: string) => {
        const answer = await action(ref, verb);
        assert.equal(answer.status, 409, `${verb} of ${status}`);
        assert.equal(answer.body.error.code, 'invalid_transition');
        assert.equal(answer.body.error.status, status);
        assert.match(answer.body.error.message, new RegExp(`cannot ${verb} .*${status}`));
      };
      await expectConflict(pending, 'capture', 'PENDING');
      await expectConflict(pending, 'refund', 'PENDING');

      const authorized = newRef();
      await authorize(authorized);
      await decide(provider.url, authorized, 'CONFIRMED');
      await expectConflict(authorized, 'refund', 'AUTHORIZED');

      const captured = newRef();
      await authorize(captured);
      await decide(provider.url, captured, 'CONFIRMED');
      await action(captured, 'capture');
      await expectConflict(captured, 'void', 'CAPTURED');

      const refunded = newRef();
      await authorize(refunded);
      await decide(provider.url, refunded, 'CONFIRMED');
      await action(refunded, 'capture');
      await action(refunded, 'refund');
      await expectConflict(refunded, 'void', 'REFUNDED');
      await expectConflict(refunded, 'capture', 'REFUNDED');

      const voided = newRef();
      await authorize(voided);
      await decide(provider.url, voided, 'CONFIRMED');
      await action(voided, 'void');
      await expectConflict(voided, 'capture', 'VOIDED');
      await expectConflict(voided, 'refund', 'VOIDED');
      const lateDecision = await call(provider.url, 'POST', `/v1/authorizations/${voided}/decide`, { body: { outcome: 'DECLINED' } });
      assert.equal(lateDecision.status, 409);

      const declined = newRef();
      await authorize(declined);
      await decide(provider.url, declined, 'DECLINED', 'insufficient funds');
      await expectConflict(declined, 'capture', 'DECLINED');
      await expectConflict(declined, 'refund', 'DECLINED');
      const otherDecision = await call(provider.url, 'POST', `/v1/authorizations/${declined}/decide`, { body: { outcome: 'CONFIRMED' } });
      assert.equal(otherDecision.status, 409);
    });

    it('voids a PENDING or AUTHORIZED authorization, idempotently; a DECLINED one holds nothing and stays DECLINED', async function () {
      for (const decision of [undefined, 'CONFIRMED'] as const) {
        const ref = newRef();
        await authorize(ref);
        if (decision) await decide(provider.url, ref, decision);
        for (let i = 0; i < 2; i++) {
          const voided = await action(ref, 'void');
          assert.equal(voided.status, 200);
          assert.equal(voided.body.status, 'VOIDED');
          assert.equal(voided.body.tombstone, false);
          assert.equal(voided.body.amountCents, 1_000);
        }
      }
      const declined = newRef();
      await authorize(declined);
      const decided = await decide(provider.url, declined, 'DECLINED', 'do not honour');
      assert.equal(decided.declineReason, 'do not honour');
      const voided = await action(declined, 'void');
      assert.equal(voided.status, 200);
      assert.equal(voided.body.status, 'DECLINED');
    });

    it('a void of an unknown reference leaves a tombstone that a late authorize gets back instead of a new authorization', async function () {
      const ref = newRef();
      const tombstone = await action(ref, 'void', { orderId: `ord_${ref}` });
      assert.equal(tombstone.status, 200);
      assert.equal(tombstone.body.status, 'VOIDED');
      assert.equal(tombstone.body.tombstone, true);
      assert.equal(tombstone.body.amountCents, 0);
      assert.equal(tombstone.body.orderId, `ord_${ref}`);
      assert.deepEqual((await action(ref, 'void')).body, tombstone.body, 'voiding again changes nothing');

      const late = await authorize(ref);
      assert.equal(late.status, 200);
      assert.deepEqual(late.body, tombstone.body, 'the late authorization is refused: the key names the tombstone');
      assert.equal((await call(provider.url, 'POST', `/v1/authorizations/${ref}/decide`, { body: { outcome: 'CONFIRMED' } })).status, 409);
      assert.equal((await action(ref, 'capture')).status, 409);
      assert.equal((await get(ref)).body.status, 'VOIDED');
    });

    it('answers 404 for a capture, refund, decide or read of an unknown reference', async function () {
      const ref = newRef();
      assert.equal((await action(ref, 'capture')).status, 404);
      assert.equal((await action(ref, 'refund')).status, 404);
      assert.equal((await call(provider.url, 'POST', `/v1/authorizations/${ref}/decide`, { body: { outcome: 'CONFIRMED' } })).status, 404);
      const read = await get(ref);
      assert.equal(read.status, 404);
      assert.equal(read.body.error.code, 'not_found');
      assert.equal((await get(ref)).status, 404, 'a 404 creates nothing');
    });
  });

  describe('GET /v1/authorizations', function () {
    it('pages through every record in providerRef order', async function () {
      const all: any[] = [];
      let after: string | undefined;
      for (;;) {
        const { status, body } = await call(provider.url, 'GET', `/v1/authorizations?limit=3${after ? `&after=${after}` : ''}`);
        assert.equal(status, 200);
        assert.ok(body.data.length <= 3);
        all.push(...body.data);
        if (!body.hasMore) break;
        after = body.nextAfter;
      }
      const refs = all.map((record) => record.providerRef);
      assert.deepEqual(refs, [...refs].sort());
      assert.equal(new Set(refs).size, refs.length);
      const everything = await call(provider.url, 'GET', '/v1/authorizations?limit=1000');
      assert.deepEqual(all, everything.body.data);
      assert.ok(all.length > 10);
      assert.equal((await call(provider.url, 'GET', '/v1/authorizations?limit=0')).status, 400);
    });
  });
});
