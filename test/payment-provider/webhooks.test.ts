// The sandbox provider's webhooks, delivered to a real local HTTP receiver: signed, carrying an event id,
// retried until acknowledged, given up on a final 4xx, and still owed after a restart of the provider. Also
// the bank's automatic confirmation, and a decision still owed at a restart.
import assert from 'node:assert/strict';
import { isValidSignature, SIGNATURE_HEADER } from '../../src/activities/payments/provider';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { call, decide, SECRET, sleep, startReceiver, startTestProvider, tempDataDir, waitFor, type Receiver } from './support';

describe('payment provider webhooks (sandbox, over HTTP)', function () {
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  let provider: RunningPaymentProvider | undefined;
  let sequence = 0;
  const newRef = () => `pay_wh_${++sequence}`;

  beforeEach(async function () {
    receiver = await startReceiver();
    data = tempDataDir();
  });

  afterEach(async function () {
    await provider?.stop();
    provider = undefined;
    await receiver.close();
    data.remove();
  });

  const authorize = (url: string, ref: string, amountCents = 2_500) =>
    call(url, 'POST', '/v1/authorizations', { body: { providerRef: ref, orderId: `ord_${ref}`, amountCents }, headers: { 'idempotency-key': ref } });
  const deliveriesFor = (ref: string) => receiver.received.filter((hit) => JSON.parse(hit.body).providerRef === ref);

  it('delivers a decision as a signed webhook with an event id, exactly the body POST /payments/callback accepts', async function () {
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    const confirmed = newRef();
    const declined = newRef();
    await authorize(provider.url, confirmed);
    await authorize(provider.url, declined);
    await decide(provider.url, confirmed, 'CONFIRMED');
    await decide(provider.url, declined, 'DECLINED', 'card expired');

    await waitFor(() => deliveriesFor(confirmed).length === 1 && deliveriesFor(declined).length === 1, 5_000, 'both webhooks');
    const [yes] = deliveriesFor(confirmed);
    const [no] = deliveriesFor(declined);
    assert.deepEqual(JSON.parse(yes.body), { orderId: `ord_${confirmed}`, providerRef: confirmed, outcome: 'CONFIRMED' });
    assert.deepEqual(JSON.parse(no.body), { orderId: `ord_${declined}`, providerRef: declined, outcome: 'DECLINED', reason: 'card expired' });
    for (const hit of [yes, no]) {
      assert.ok(isValidSignature(SECRET, Buffer.from(hit.body), hit.headers[SIGNATURE_HEADER] as string), 'signed with the webhook secret');
      assert.ok(!isValidSignature('another-secret', Buffer.from(hit.body), hit.headers[SIGNATURE_HEADER] as string));
      assert.match(String(hit.headers['x-event-id']), /^evt_/);
      assert.equal(hit.headers['x-event-attempt'], '1');
      assert.equal(hit.headers['content-type'], 'application/json');
    }
    assert.notEqual(yes.headers['x-event-id'], no.headers['x-event-id']);

    await sleep(300);
    assert.equal(deliveriesFor(confirmed).length, 1, 'an acknowledged webhook is not sent again');
    const events = await call(provider.url, 'GET', `/v1/events?providerRef=${confirmed}`);
    assert.equal(events.body.data.length, 1);
    assert.equal(events.body.data[0].state, 'DELIVERED');
    assert.equal(events.body.data[0].id, yes.headers['x-event-id']);
  });

  it('retries with the same event id and bytes until the receiver answers 2xx (5xx, 429, 408 and refused connections are retried)', async function () {
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    const answers = [503, 429, 500, 408, 502];
    receiver.answer = () => answers.shift() ?? 200;
    const ref = newRef();
    await authorize(provider.url, ref);
    await decide(provider.url, ref, 'CONFIRMED');

    await waitFor(() => deliveriesFor(ref).some((hit) => hit.answered === 200), 10_000, 'an acknowledged delivery');
    const hits = deliveriesFor(ref);
    assert.deepEqual(
      hits.map((hit) => hit.answered),
      [503, 429, 500, 408, 502, 200],
    );
    assert.deepEqual(
      hits.map((hit) => hit.headers['x-event-attempt']),
      ['1', '2', '3', '4', '5', '6'],
    );
    assert.equal(new Set(hits.map((hit) => hit.headers['x-event-id'])).size, 1, 'one event, retried');
    assert.equal(new Set(hits.map((hit) => hit.body)).size, 1, 'the same bytes every time');
    await sleep(300);
    assert.equal(deliveriesFor(ref).length, 6, 'no attempt after the acknowledgement');
  });

  it('keeps retrying while nothing listens at the callback URL, and delivers once something does', async function () {
    const url = receiver.url;
    await receiver.close(); // nothing listens there now
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: url });
    const ref = newRef();
    await authorize(provider.url, ref);
    await decide(provider.url, ref, 'CONFIRMED');
    await waitFor(
      async () => (await call(provider!.url, 'GET', `/v1/events?providerRef=${ref}`)).body.data[0]?.attempts >= 3,
      5_000,
      'three failed attempts',
    );
    receiver = await startReceiver(() => 204, Number(new URL(url).port));
    await waitFor(() => deliveriesFor(ref).length >= 1, 5_000, 'the delivery once a receiver listens');
    assert.equal(JSON.parse(deliveriesFor(ref)[0].body).outcome, 'CONFIRMED');
  });

  it('takes a 4xx other than 408/425/429 as a final answer: not retried, recorded as FAILED', async function () {
    const logged: string[] = [];
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, log: (line) => logged.push(line) });
    receiver.answer = () => 409;
    const ref = newRef();
    await authorize(provider.url, ref);
    await decide(provider.url, ref, 'CONFIRMED');
    await waitFor(() => deliveriesFor(ref).length === 1, 5_000, 'the first delivery');
    await sleep(500);
    assert.equal(deliveriesFor(ref).length, 1, 'a final refusal is not retried');
    const events = await call(provider.url, 'GET', `/v1/events?providerRef=${ref}`);
    assert.equal(events.body.data[0].state, 'FAILED');
    assert.match(events.body.data[0].lastError, /HTTP 409/);
    assert.ok(logged.some((line) => line.includes(ref) && /refused for good/.test(line)), 'the refusal is logged');
  });

  it('confirms automatically after the configured delay, and sends the webhook', async function () {
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, confirmDelayMs: 300 });
    const ref = newRef();
    const started = Date.now();
    assert.equal((await authorize(provider.url, ref)).body.status, 'PENDING');
    await sleep(100);
    assert.equal((await call(provider.url, 'GET', `/v1/authorizations/${ref}`)).body.status, 'PENDING', 'not before the delay');
    await waitFor(() => deliveriesFor(ref).length === 1, 5_000, 'the automatic confirmation');
    assert.ok(Date.now() - started >= 300);
    assert.equal((await call(provider.url, 'GET', `/v1/authorizations/${ref}`)).body.status, 'AUTHORIZED');
    assert.equal(JSON.parse(deliveriesFor(ref)[0].body).outcome, 'CONFIRMED');
  });

  it('a void before the automatic confirmation cancels it: no decision, no webhook', async function () {
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, confirmDelayMs: 200 });
    const ref = newRef();
    await authorize(provider.url, ref);
    assert.equal((await call(provider.url, 'POST', `/v1/authorizations/${ref}/void`)).body.status, 'VOIDED');
    await sleep(500);
    assert.equal((await call(provider.url, 'GET', `/v1/authorizations/${ref}`)).body.status, 'VOIDED');
    assert.equal(deliveriesFor(ref).length, 0);
  });

  it('after a stop and a start on the same data folder: owed webhooks are delivered and owed decisions are made', async function () {
    receiver.answer = () => 503; // the merchant is down
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, confirmDelayMs: 400 });
    const owedWebhook = newRef();
    const owedDecision = newRef();
    await authorize(provider.url, owedWebhook);
    await decide(provider.url, owedWebhook, 'CONFIRMED');
    await waitFor(() => deliveriesFor(owedWebhook).length >= 1, 5_000, 'a first, refused delivery');
    await authorize(provider.url, owedDecision);
    const port = provider.port;
    await provider.stop();
    provider = undefined;

    receiver.answer = () => 204; // the merchant is back
    await sleep(600); // the decision falls due while the provider is down
    assert.equal(deliveriesFor(owedDecision).length, 0);
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, confirmDelayMs: 400, port });
    await waitFor(
      () => deliveriesFor(owedWebhook).some((hit) => hit.answered === 204) && deliveriesFor(owedDecision).some((hit) => hit.answered === 204),
      5_000,
      'both webhooks after the restart',
    );
    assert.equal((await call(provider.url, 'GET', `/v1/authorizations/${owedDecision}`)).body.status, 'AUTHORIZED');
    const ids = new Set(deliveriesFor(owedWebhook).map((hit) => hit.headers['x-event-id']));
    assert.equal(ids.size, 1, 'the same event, resumed');
  });

  it('refuses a second provider on a data folder that is in use', async function () {
    provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    await assert.rejects(startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url }), /already open|in use/);
  });
});

