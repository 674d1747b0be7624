// The sandbox provider as its own process (node --require tsx/cjs src/payment-provider/index.ts), killed with
// SIGKILL while it owes a decision and an undelivered webhook: restarted on the same data folder, it makes the
// decision and delivers both webhooks. Also: its log survives a torn last write and refuses real corruption.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isValidSignature, SIGNATURE_HEADER } from '../../src/activities/payments/provider';
import { freePort } from '../../src/local-stack/free-port';
import { API_KEY, call, SECRET, startReceiver, startTestProvider, tempDataDir, waitFor, type Receiver } from './support';

const REPO = path.resolve(__dirname, '../..');

interface ProviderProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts the provider program and resolves once it prints its listening line. */
function spawnProvider(env: Record<string, string>): Promise<ProviderProcess> {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'src/payment-provider/index.ts'], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the provider did not start within 20 s:\n${output}`));
    }, 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /payment-provider: listening on (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1], output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the provider exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
}

function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('payment provider durability (its own process, kill -9)', function () {
  this.timeout(90_000);
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  const children: ChildProcess[] = [];

  beforeEach(async function () {
    receiver = await startReceiver();
    data = tempDataDir();
  });

  afterEach(async function () {
    for (const child of children.splice(0)) await killHard(child);
    await receiver.close();
    data.remove();
  });

  it('restarted after SIGKILL on the same data folder, it makes the owed decision and delivers the owed webhooks', async function () {
    receiver.answer = () => 503; // the merchant's API is down at first
    const port = await freePort();
    const env = {
      PROVIDER_HOST: '127.0.0.1',
      PROVIDER_PORT: String(port),
      PROVIDER_DATA_DIR: data.dir,
      PAYMENT_PROVIDER_API_KEY: API_KEY,
      PAYMENT_WEBHOOK_SECRET: SECRET,
      PAYMENT_CALLBACK_URL: receiver.url,
      SANDBOX_CONFIRM_DELAY_MS: '1500',
      PROVIDER_WEBHOOK_BACKOFF_MS: '100',
      PROVIDER_WEBHOOK_BACKOFF_MAX_MS: '300',
    };
    const first = await spawnProvider(env);
    children.push(first.child);
    assert.equal(first.url, `http://127.0.0.1:${port}`);

    const authorize = (url: string, ref: string) =>
      call(url, 'POST', '/v1/authorizations', { body: { providerRef: ref, orderId: `ord_${ref}`, amountCents: 4_200 }, headers: { 'idempotency-key': ref } });
    const hitsFor = (ref: string) => receiver.received.filter((hit) => JSON.parse(hit.body).providerRef === ref);

    // A decision made, whose webhook the merchant has not acknowledged yet…
    assert.equal((await authorize(first.url, 'pay_owed_webhook')).status, 201);
    await waitFor(() => hitsFor('pay_owed_webhook').length >= 1, 10_000, 'a first, refused delivery');
    // …and a decision still to be made (due in 1.5 s), when the provider is killed outright.
    assert.equal((await authorize(first.url, 'pay_owed_decision')).status, 201);
    await killHard(first.child);
    assert.equal(first.child.signalCode, 'SIGKILL');
    assert.equal(hitsFor('pay_owed_decision').length, 0);

    receiver.answer = () => 202; // the merchant is back
    const second = await spawnProvider(env);
    children.push(second.child);
    await waitFor(
      () => hitsFor('pay_owed_webhook').some((hit) => hit.answered === 202) && hitsFor('pay_owed_decision').some((hit) => hit.answered === 202),
      15_000,
      'both webhooks from the restarted provider',
    );
    for (const ref of ['pay_owed_webhook', 'pay_owed_decision']) {
      const delivered = hitsFor(ref).find((hit) => hit.answered === 202)!;
      assert.deepEqual(JSON.parse(delivered.body), { orderId: `ord_${ref}`, providerRef: ref, outcome: 'CONFIRMED' });
      assert.ok(isValidSignature(SECRET, Buffer.from(delivered.body), delivered.headers[SIGNATURE_HEADER] as string));
      assert.equal((await call(second.url, 'GET', `/v1/authorizations/${ref}`)).body.status, 'AUTHORIZED');
      const events = await call(second.url, 'GET', `/v1/events?providerRef=${ref}`);
      assert.equal(events.body.data.length, 1, 'one event per decision, across the restart');
      assert.equal(events.body.data[0].state, 'DELIVERED');
    }
    assert.equal(new Set(hitsFor('pay_owed_webhook').map((hit) => hit.headers['x-event-id'])).size, 1);

    // Everything it answered before the kill is still there, and still idempotent.
    const replay = await authorize(second.url, 'pay_owed_decision');
    assert.equal(replay.status, 200);
    assert.equal(replay.body.status, 'AUTHORIZED');
  });

  it('stops cleanly on SIGTERM and refuses a bad configuration naming the variable', async function () {
    const port = await freePort();
    const env = { PROVIDER_PORT: String(port), PROVIDER_DATA_DIR: data.dir, PAYMENT_CALLBACK_URL: receiver.url };
    // Signalled the moment it says it listens (as a supervisor may): its handlers must already be there.
    for (let round = 0; round < 3; round++) {
      const running = await spawnProvider(env);
      children.push(running.child);
      const exited = new Promise<number | null>((resolve) => running.child.once('exit', (code) => resolve(code)));
      running.child.kill('SIGTERM');
      assert.equal(await exited, 0, `round ${round + 1}: exit code 0 after SIGTERM`);
    }

    for (const [name, value] of [
      ['PROVIDER_PORT', 'eighty'],
      ['SANDBOX_CONFIRM_DELAY_MS', '-5'],
      ['PAYMENT_CALLBACK_URL', 'ftp://example'],
      ['PAYMENT_PROVIDER_API_KEY', ''],
    ]) {
      const failed = await spawnProvider({ ...env, [name]: value }).then(
        (started) => {
          children.push(started.child);
          return assert.fail(`started despite ${name}=${value}`);
        },
        (error: Error) => error.message,
      );
      assert.match(failed, new RegExp(`exited \\(2\\)[\\s\\S]*${name}`), failed);
    }
  });

  it('drops a torn last line of its log (a crash mid-write) and refuses a log corrupt in the middle', async function () {
    const provider = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    const created = await call(provider.url, 'POST', '/v1/authorizations', {
      body: { providerRef: 'pay_torn', orderId: 'ord_torn', amountCents: 10 },
      headers: { 'idempotency-key': 'pay_torn' },
    });
    await provider.stop();
    const log = path.join(data.dir, 'provider.jsonl');
    appendFileSync(log, '{"entries":[{"kind":"authorization","value":{"providerRef":"pay_half'); // no newline: torn

    const lines: string[] = [];
    const reopened = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, log: (line) => lines.push(line) });
    assert.deepEqual((await call(reopened.url, 'GET', '/v1/authorizations/pay_torn')).body, created.body);
    assert.equal((await call(reopened.url, 'GET', '/v1/authorizations/pay_half')).status, 404);
    assert.ok(lines.some((line) => /unfinished last line/.test(line)));
    await reopened.stop();

    writeFileSync(log, `garbage\n${readFileSync(log, 'utf8')}`);
    await assert.rejects(startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url }), /corrupt at line 1/);
  });
});
