// The events status report against real PostgreSQL and a real NATS JetStream server: every number it shows is
// checked against the databases and the broker themselves, as events are written, relayed, consumed and
// dead-lettered; and `npm run events:status` prints it, or says which server it cannot reach.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../../src/config';
import { ensureDurableConsumer } from '../../src/events/consumer';
import { connectNats } from '../../src/events/nats-connection';
import { PollingRelay } from '../../src/events/relay';
import { eventsStatus, formatEventsStatus, type EventsStatusReport } from '../../src/events/status-report';
import { DEAD_LETTER_STREAM, deadLetterSubject, ensureStreams, streamOf } from '../../src/events/streams';
import { slotNameOf } from '../../src/events/wal-relay';
import { freePort } from '../../src/local-stack/free-port';
import { startNatsServer, type RunningNatsServer } from '../../src/local-stack/nats';
import { createServiceDatabases } from '../support/postgres';
import { sql } from '../support/sql';

const ROOT = path.resolve(__dirname, '..', '..');
const PREFIX = 'events_status';

describe('events status report (outboxes, streams, consumers, dead letters)', function () {
  let storeDir: string;
  let server: RunningNatsServer;
  let nc: NatsConnection;
  let urls: DatabaseUrls;
  let db: InventoryDb;
  let relay: PollingRelay | undefined;

  before(async function () {
    storeDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-events-status-'));
    server = await startNatsServer({ port: await freePort(), storeDir });
    nc = await connectNats([server.url], 'events-status-test');
    await ensureStreams(nc, { replicas: 1 });
    urls = await createServiceDatabases(PREFIX);
    db = connectInventoryDb(urls.inventory);
    // A slot nobody streams from, as a stopped WAL relay leaves it: the report must show it and the log it holds.
    await sql(urls.inventory, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slotNameOf(`${PREFIX}_inventory`)]);
  });

  after(async function () {
    await relay?.close();
    await db?.$disconnect();
    if (urls) await sql(urls.inventory, 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slotNameOf(`${PREFIX}_inventory`)]);
    await nc?.close();
    await server?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  const report = () => eventsStatus({ databaseUrls: urls, nats: nc });
  const outbox = (r: EventsStatusReport, service: ServiceName) => r.outboxes.find((o) => o.service === service)!;
  const stream = (r: EventsStatusReport, name: string) => r.streams.find((s) => s.name === name)!;

  it('shows each outbox as its database holds it, and the slot of the one that has one', async function () {
    await createInventoryActivities(db).reserveStock({ orderId: 'ord_status_1', lines: [{ sku: 'CB-005', quantity: 2 }] });
    const r = await report();
    assert.deepEqual(r.outboxes.map((o) => o.service), [...SERVICES]);
    for (const service of SERVICES) {
      const [counted] = await sql<Record<string, number>>(urls[service], 'SELECT count(*) FILTER (WHERE published_at IS NULL)::int AS backlog, count(*) FILTER (WHERE published_at IS NOT NULL)::int AS published FROM outbox');
      assert.equal(outbox(r, service).backlog, counted.backlog, `${service} backlog`);
      assert.equal(outbox(r, service).published, counted.published, `${service} published`);
    }
    const [reserved] = await sql<Record<string, number>>(urls.inventory, `SELECT count(*)::int AS n FROM outbox WHERE correlation_id = 'ord_status_1' AND published_at IS NULL`);
    assert.ok(reserved.n > 0, 'the reservation wrote events');
    assert.ok(outbox(r, 'inventory').backlog >= reserved.n);
    assert.notEqual(outbox(r, 'inventory').oldestUnpublishedAgeMs, null);

    const slot = outbox(r, 'inventory').slot;
    assert.equal(slot?.name, slotNameOf(`${PREFIX}_inventory`));
    assert.equal(slot?.active, false);
    assert.ok((slot?.lagBytes ?? -1) > 0, 'the reservation was written after the slot: it holds that log back');
    assert.equal(outbox(r, 'orders').slot, null);
  });

  it('after a relay run: no backlog, and the stream grew by what was published', async function () {
    const before = await report();
    const backlog = outbox(before, 'inventory').backlog;
    const messagesBefore = stream(before, streamOf('inventory')).state!.messages;

    relay = new PollingRelay({ service: 'inventory', databaseUrl: urls.inventory, nats: nc, batchSize: 1_000 });
    assert.equal(await relay.tryLead(), true);
    const published = await relay.publishBatch();
    assert.equal(published, backlog, 'one batch takes the whole backlog');

    const after = await report();
    assert.equal(outbox(after, 'inventory').backlog, 0);
    assert.equal(outbox(after, 'inventory').oldestUnpublishedAgeMs, null);
    assert.equal(outbox(after, 'inventory').published, outbox(before, 'inventory').published + published);
    const state = stream(after, streamOf('inventory')).state!;
    assert.equal(state.messages, messagesBefore + published);
    assert.equal(state.lastSequence, messagesBefore + published);
    const { state: broker } = await (await jetstreamManager(nc)).streams.info(streamOf('inventory'));
    assert.equal(state.bytes, broker.bytes);
    assert.ok(state.bytes > 0);
    assert.equal(stream(after, streamOf('orders')).state!.messages, 0, 'the orders outbox was not relayed');
  });

  it('lists the durable consumers the server has, with what they have not handled yet', async function () {
    await ensureDurableConsumer(nc, streamOf('inventory'), 'status-test');
    await ensureDurableConsumer(nc, streamOf('payments'), 'status-test-payments');
    const r = await report();
    const inventory = stream(r, streamOf('inventory'));
    assert.deepEqual(inventory.consumers.map((c) => c.name), ['status-test']);
    const [consumer] = inventory.consumers;
    assert.equal(consumer.pending, inventory.state!.messages);
    assert.equal(consumer.waitingForAck, 0);
    assert.equal(consumer.redelivered, 0);
    assert.equal(consumer.lastDeliveredSequence, 0);
    assert.deepEqual(stream(r, streamOf('payments')).consumers.map((c) => c.name), ['status-test-payments']);
    assert.deepEqual(stream(r, streamOf('orders')).consumers, []);

    // One message delivered, not acknowledged yet.
    const message = await (await jetstream(nc).consumers.get(streamOf('inventory'), 'status-test')).next();
    assert.ok(message);
    const delivered = stream(await report(), streamOf('inventory')).consumers[0];
    assert.equal(delivered.waitingForAck, 1);
    assert.equal(delivered.pending, inventory.state!.messages - 1);
    assert.equal(delivered.lastDeliveredSequence, message.info.streamSequence);
  });

  it('counts the dead letters, by consumer', async function () {
    const js = jetstream(nc);
    for (const [consumer, id] of [['some-consumer', 'a'], ['some-consumer', 'b'], ['other-consumer', 'c']]) {
      await js.publish(deadLetterSubject(consumer), JSON.stringify({ reason: 'test' }), { msgID: id });
    }
    const r = await report();
    assert.equal(r.deadLetters.total, 3);
    assert.deepEqual(r.deadLetters.bySubject, { 'deadletter.some-consumer': 2, 'deadletter.other-consumer': 1 });
    assert.equal(stream(r, DEAD_LETTER_STREAM).state!.messages, 3);
  });

  it('formats the report as aligned tables', async function () {
    const r = await report();
    const text = formatEventsStatus(r);
    for (const service of SERVICES) assert.match(text, new RegExp(`^${service} `, 'm'));
    for (const name of [...SERVICES.map(streamOf), DEAD_LETTER_STREAM]) assert.match(text, new RegExp(`^${name} `, 'm'));
    assert.match(text, new RegExp(`^${streamOf('inventory')} +status-test +${stream(r, streamOf('inventory')).consumers[0].pending} `, 'm'));
    assert.match(text, new RegExp(`^inventory .* ${slotNameOf(`${PREFIX}_inventory`)} +no +reserved +\\d+(\\.\\d)? (B|KiB|MiB)$`, 'm'));
    assert.match(text, /^orders .* none +- +- +-$/m);
    assert.match(text, /^Dead letters: 3$/m);
    assert.match(text, /^deadletter\.some-consumer +2$/m);
    // Aligned: the streams table ends in a column of numbers, right-aligned, so each of its lines is as long.
    const lines = text.split('\n');
    const streamsTable = lines.slice(lines.indexOf('Streams') + 1, lines.indexOf('Consumers') - 1);
    assert.equal(streamsTable.length, 1 + 5);
    assert.equal(new Set(streamsTable.map((line) => line.length)).size, 1, streamsTable.join('\n'));
  });

  describe('npm run events:status', function () {
    const configured = () => ({
      ORDERS_DATABASE_URL: urls.orders,
      INVENTORY_DATABASE_URL: urls.inventory,
      PAYMENTS_DATABASE_URL: urls.payments,
      SHIPPING_DATABASE_URL: urls.shipping,
      NATS_URL: server.url,
    });

    it('prints the report, and the same as JSON with --json', async function () {
      const text = await run([], configured());
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^Outboxes$/m);
      assert.match(text.stdout, /^INVENTORY_EVENTS +status-test /m);
      const json = await run(['--json'], configured());
      assert.equal(json.code, 0, json.stderr);
      const printed = JSON.parse(json.stdout) as EventsStatusReport;
      const r = await report();
      assert.deepEqual(printed.streams, r.streams);
      assert.deepEqual(printed.deadLetters, r.deadLetters);
      assert.deepEqual(printed.outboxes.map((o) => o.backlog), r.outboxes.map((o) => o.backlog));
    });

    it('says NATS cannot be reached, and exits 2', async function () {
      const nowhere = `nats://127.0.0.1:${await freePort()}`;
      const result = await run([], { ...configured(), NATS_URL: nowhere });
      assert.equal(result.code, 2);
      assert.match(result.stderr, new RegExp(`cannot reach NATS at ${nowhere}`));
    });

    it('says which database cannot be reached, and exits 2', async function () {
      const port = await freePort();
      const result = await run([], { ...configured(), PAYMENTS_DATABASE_URL: `postgresql://postgres:secret@127.0.0.1:${port}/payments` });
      assert.equal(result.code, 2);
      assert.match(result.stderr, new RegExp(`the payments database \\(127\\.0\\.0\\.1:${port}/payments\\)`));
      assert.doesNotMatch(result.stderr, /the (orders|inventory|shipping) database/);
      assert.doesNotMatch(result.stderr, /secret/);
    });
  });
});

/** Runs the script with only `env` (plus PATH), as an operator's shell would. */
function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'scripts/events-status.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
