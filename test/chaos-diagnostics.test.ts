// What a failed chaos run prints about itself (scripts/chaos/diagnostics.ts), against real PostgreSQL and NATS with
// a WAL relay running: the event path's state, the relay's connections, lock and slot as the server sees them, and
// the processes' warnings grouped; a part that cannot be read says so without hiding the others.
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { diagnose, summarizeLog } from '../scripts/chaos/diagnostics';
import { logLines } from '../scripts/chaos/processes';
import type { DatabaseUrls } from '../src/config';
import { connectNats } from '../src/events/nats-connection';
import { ensureStreams } from '../src/events/streams';
import { slotNameOf, WalRelay } from '../src/events/wal-relay';
import { freePort } from '../src/local-stack/free-port';
import { startNatsServer, type RunningNatsServer } from '../src/local-stack/nats';
import { createServiceDatabases } from './support/postgres';
import { sql } from './support/sql';
import { waitUntil } from './support/wait-until';

const PREFIX = 'chaosdiag';

const LOG = [
  '[relay] {"level":"info","time":"2026-12-04T10:00:00.000Z","component":"main","msg":"publishing the outboxes"}',
  '[relay] {"level":"warn","time":"2026-12-04T10:00:01.000Z","component":"relay","outbox":"payments","err":{"message":"connect ECONNREFUSED"},"msg":"relaying failed; retrying in 1000 ms"}',
  '[projector] {"level":"warn","time":"2026-12-04T10:00:02.000Z","component":"consumer","consumer":"query-orders","err":{"message":"timeout"},"msg":"consuming failed; retrying in 1000 ms"}',
  '[relay] {"level":"warn","time":"2026-12-04T10:00:03.000Z","component":"relay","outbox":"payments","err":{"message":"slot in use"},"msg":"relaying failed; retrying in 1000 ms"}',
  '[worker] {"level":"warn","time":"2026-12-04T10:00:04.000Z","component":"temporal","error":{"type":"InjectedFault","message":"injected fault"},"msg":"Activity failed"}',
  '[worker!] TypeError: something broke',
  'not a line of a process',
].join('\n');

describe('chaos run diagnostics', function () {
  let storeDir: string;
  let server: RunningNatsServer;
  let nc: NatsConnection;
  let urls: DatabaseUrls;

  before(async function () {
    storeDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-chaos-diagnostics-'));
    server = await startNatsServer({ port: await freePort(), storeDir: path.join(storeDir, 'nats') });
    nc = await connectNats([server.url], 'chaos-diagnostics-test');
    await ensureStreams(nc, { replicas: 1 });
    urls = await createServiceDatabases(PREFIX);
    writeFileSync(path.join(storeDir, 'processes.log'), LOG);
  });

  after(async function () {
    await nc?.close();
    await server?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  it('groups the warnings by process, component and message, the latest group last, and keeps stderr', function () {
    const lines = summarizeLog(LOG).split('\n');
    assert.deepEqual(lines, [
      '  10:00:02.000–10:00:02.000 ×1 projector warn consumer/query-orders: consuming failed; retrying in 1000 ms (timeout)',
      '  10:00:01.000–10:00:03.000 ×2 relay warn relay/payments: relaying failed; retrying in 1000 ms (slot in use)',
      '  10:00:04.000–10:00:04.000 ×1 worker warn temporal: Activity failed (injected fault)',
      '  stderr, the last lines:',
      '    [worker] TypeError: something broke',
    ]);
  });

  it("tags every line of a process's output, however the output is cut into chunks, so a crash's whole stack is shown", async function () {
    const file = path.join(storeDir, 'lines.log');
    const log = createWriteStream(file);
    const stderr = new PassThrough();
    const seen: string[] = [];
    logLines(stderr, '[worker!]', log, (line) => seen.push(line));
    // How Node writes an unhandled 'error' event: one chunk of many lines, the last cut off and finished later.
    stderr.write("node:events:502\n      throw er; // Unhandled 'error' event\n\nError: Connection terminated unexpectedly\n    at Connection.<anon");
    stderr.end('ymous> (client.js:1:1)\n');
    await once(stderr, 'end');
    await new Promise<void>((resolve) => setImmediate(resolve));
    log.end();
    await once(log, 'finish');
    assert.deepEqual(readFileSync(file, 'utf8').split('\n'), [
      '[worker!] node:events:502',
      "[worker!]       throw er; // Unhandled 'error' event",
      '[worker!] ',
      '[worker!] Error: Connection terminated unexpectedly',
      '[worker!]     at Connection.<anonymous> (client.js:1:1)',
      '',
    ]);
    assert.equal(seen.length, 5);
    assert.deepEqual(summarizeLog(readFileSync(file, 'utf8')).split('\n').slice(-3), [
      "    [worker]       throw er; // Unhandled 'error' event",
      '    [worker] Error: Connection terminated unexpectedly',
      '    [worker]     at Connection.<anonymous> (client.js:1:1)',
    ]);
  });

  it("shows the event path, the relay's connection, lock and slot as PostgreSQL sees them, and the log", async function () {
    const relay = new WalRelay({ service: 'inventory', databaseUrl: urls.inventory, nats: nc });
    const loop = relay.run({ retryMs: 100 });
    const slot = slotNameOf(`${PREFIX}_inventory`);
    try {
      // Streaming (its catch-up done): the slot held by the relay's walsender, not by the backend still creating it.
      const streaming = `SELECT 1 FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
                          WHERE s.slot_name = $1 AND a.application_name = 'outbox-relay-inventory-wal'`;
      await waitUntil(async () => (await sql(urls.inventory, streaming, [slot])).length > 0, 'the relay to stream from its slot');
      const text = await diagnose({ databaseUrls: urls, clusterUrl: urls.orders, nats: nc, logFile: path.join(storeDir, 'processes.log') });
      assert.match(text, /^event path:\nOutboxes\n/m);
      assert.match(text, /^inventory +0 +- +\d+ +outbox_relay_chaosdiag_inventory +yes /m, text);
      assert.match(text, /^INVENTORY_EVENTS /m, text);
      assert.match(text, new RegExp(`"database":"${PREFIX}_inventory","application":"outbox-relay-inventory","backend_type":"client backend"`), text);
      assert.match(text, new RegExp(`"database":"${PREFIX}_inventory","application":"outbox-relay-inventory-wal","backend_type":"walsender"`), text);
      assert.match(text, new RegExp(`advisory locks held:\\n(.*\\n)*? +\\{"pid":\\d+,"database":"${PREFIX}_inventory","key":7310001,"application":"outbox-relay-inventory"\\}`), text);
      assert.match(text, new RegExp(`\\{"slot_name":"${slot}","active":true,"active_pid":\\d+,`), text);
      assert.match(text, /relay warn relay\/payments: relaying failed/);
    } finally {
      relay.stop();
      await loop;
      await relay.close();
      await waitUntil(async () => (await sql(urls.inventory, 'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot])).length === 0, 'the slot to be let go');
      await sql(urls.inventory, 'SELECT pg_drop_replication_slot($1)', [slot]);
    }
  });

  it('says which part it could not read, and still shows the others', async function () {
    const closed = await connectNats([server.url], 'chaos-diagnostics-closed');
    await closed.close();
    const text = await diagnose({ databaseUrls: urls, clusterUrl: urls.orders, nats: closed, logFile: path.join(storeDir, 'missing.log') });
    assert.match(text, /^event path: could not be read \(.+\)$/m);
    assert.match(text, /^warnings and errors the processes logged .*: could not be read \(.*no such file.*\)$/m);
    assert.match(text, /^PostgreSQL: relay connections, relay locks, slots:\n {2}connections:( none)?$/m);
  });
});

