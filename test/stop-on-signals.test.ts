// How the API, relay and projector processes stop on a signal (src/stop-on-signals.ts), in a real child process: a
// clean stop exits 0, a stop that fails says why and exits 1, and a second signal does not stop twice.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** A process whose stop takes 200 ms and then resolves or rejects; it is sent `signals`, 50 ms apart. */
async function stopped(outcome: 'resolves' | 'rejects', signals: NodeJS.Signals[]): Promise<{ code: number | null; stdout: string }> {
  const script = `
    const { createLogger } = require('./src/observability/logging');
    const { stopOnSignals } = require('./src/stop-on-signals');
    const logger = createLogger({ service: 'probe' });
    stopOnSignals(async () => {
      console.log('stopping');
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (${JSON.stringify(outcome)} === 'rejects') throw new Error('the connection would not close');
    }, logger);
    setInterval(() => {}, 1000);
    console.log('ready');
  `;
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => stdout.includes('ready') && (clearInterval(timer), resolve()), 20);
    child.once('exit', (code) => (clearInterval(timer), reject(new Error(`exited ${code} before it was ready: ${stdout}`))));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  for (const signal of signals) {
    child.kill(signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { code: await exited, stdout };
}

describe('stopping on a signal (API, relay, projector)', function () {
  this.timeout(30_000);

  it('exits 0 once its stop is done, and a second signal meanwhile does not stop it twice', async function () {
    const { code, stdout } = await stopped('resolves', ['SIGTERM', 'SIGINT']);
    assert.equal(code, 0, stdout);
    assert.equal(stdout.match(/stopping/g)?.length, 1, stdout);
  });

  it('says why, and exits 1, when its stop fails', async function () {
    const { code, stdout } = await stopped('rejects', ['SIGTERM']);
    assert.equal(code, 1, stdout);
    const line = stdout.split('\n').find((text) => text.includes('could not stop cleanly'));
    assert.ok(line, stdout);
    const logged = JSON.parse(line);
    assert.equal(logged.msg, 'could not stop cleanly on SIGTERM: the connection would not close');
    assert.equal(logged.signal, 'SIGTERM');
    assert.equal(logged.service, 'probe');
  });
});
