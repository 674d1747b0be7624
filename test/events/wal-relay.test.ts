// The WAL relay against real PostgreSQL (logical replication, a durable pgoutput slot) and a real NATS JetStream
// server: what services write reaches the stream in write order, exactly as the polling relay sends it; nothing
// written while the relay is down, before its slot existed, or while its slot was lost goes missing; a crash
// before PostgreSQL got the acknowledgement relays again without a duplicate on the stream; a rolled-back
// transaction sends nothing; one relay per database is active; the purge and the status do what they say.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { Client, type QueryResultRow } from 'pg';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { connectNats } from '../../src/events/nats-connection';
import { appendEvents, orderEvent } from '../../src/events/outbox';
import { purgePublishedEvents, toEnvelope, type EventEnvelope, type OutboxRow, type Relay } from '../../src/events/relay';
import { outboxStatus } from '../../src/events/relay-status';
import { ReplicationStream } from '../../src/events/replication-stream';
import { createRelay, OUTBOX_PUBLICATION, parseLsn, slotNameOf, waitUntilVisible, WalRelay, type RelayMode } from '../../src/events/wal-relay';
import { ensureStreams, streamOf } from '../../src/events/streams';
import { freePort } from '../../src/local-stack/free-port';
import { startNatsServer, type RunningNatsServer } from '../../src/local-stack/nats';
import { createLogger } from '../../src/observability/logging';
import { startHoldingProxy } from '../support/holding-proxy';
import { TestCluster } from '../support/postgres';
import { sql as sqlOn } from '../support/sql';

const DATABASE = 'walrelay_inventory';
const SLOT = slotNameOf(DATABASE);
const DAY_MS = 24 * 60 * 60_000;

describe('outbox relay, WAL mode (logical replication → NATS JetStream)', function () {
  /**
   * Its own PostgreSQL cluster: this suite restarts it, ends its connections and changes its settings, which the
   * suites running beside this one must not see.
   */
  let cluster: TestCluster;
  let storeDir: string;
  let server: RunningNatsServer;
  let nc: NatsConnection;
  let url: string;
  let db: InventoryDb;
  /** Relays started by the current test, stopped after it. */
  let started: { relay: Relay; loop: Promise<void> }[] = [];
  /** Databases whose replication slots the current test leaves behind. */
  const slotDatabases = new Set<string>();
  let logs: string[] = [];

  before(async function () {
    cluster = await TestCluster.start();
    storeDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-wal-relay-'));
    server = await startNatsServer({ port: await freePort(), storeDir });
    nc = await connectNats([server.url], 'wal-relay-test');
    await ensureStreams(nc, { replicas: 1 });
    url = (await cluster.createServiceDatabases('walrelay')).inventory;
    db = connectInventoryDb(url);
  });

  afterEach(async function () {
    for (const { relay, loop } of started) await halt(relay, loop);
    started = [];
    logs = [];
    // A database with a slot cannot be dropped, and a slot left behind holds the log back.
    for (const database of [DATABASE, ...slotDatabases]) await dropSlots('database', database);
    slotDatabases.clear();
  });

  after(async function () {
    await db?.$disconnect();
    await nc?.close();
    await server?.stop();
    await cluster?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  // --- helpers ------------------------------------------------------------------------------------------------

  /** Runs one statement on its own connection (the cluster may have restarted since the last one). */
  const sql = <T extends QueryResultRow = QueryResultRow>(text: string, params: unknown[] = [], database = DATABASE): Promise<T[]> =>
    sqlOn<T>(url.replace(/\/[^/]+$/, `/${database}`), text, params);

  /**
   * Drops the replication slots of a database (or one slot by name) once no walsender holds them: a halted relay has
   * ended its replication connection, but the server's walsender lets go of the slot a moment later ("replication slot
   * … is active for PID …" until then). One still held after 10 s is a relay that did not let go: the drop says so.
   */
  async function dropSlots(by: 'database' | 'slot_name', value: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await sql(`SELECT 1 FROM pg_replication_slots WHERE ${by} = $1 AND active`, [value], 'postgres')).length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await sql(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE ${by} = $1`, [value], 'postgres');
  }

  function start(mode: RelayMode = 'wal', options: { databaseUrl?: string; retentionMs?: number } = {}) {
    const relay = createRelay({ mode, service: 'inventory', databaseUrl: options.databaseUrl ?? url, nats: nc, batchSize: 3, retentionMs: options.retentionMs });
    const loop = relay.run({ idleMs: 50, retryMs: 200, logger: createLogger({ service: 'test', destination: { write: (line: string) => void logs.push(line.trimEnd()) } }) });
    started.push({ relay, loop });
    return { relay, loop };
  }

  async function halt(relay: Relay, loop: Promise<void>): Promise<void> {
    relay.stop();
    await loop;
    await relay.close();
    started = started.filter((entry) => entry.relay !== relay);
  }

  async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let failure: unknown;
    // A check that throws (NATS or PostgreSQL coming back) is a check not passed yet.
    while (!(await Promise.resolve(check()).catch((error: unknown) => ((failure = error), false)))) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} (last error: ${String(failure)}); relay log:\n${logs.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function lastSeq(): Promise<number> {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(streamOf('inventory'))).state.last_seq;
  }

  /** The messages on the inventory stream after `since`, in stream order. */
  async function streamedSince(since: number): Promise<{ subject: string; msgId: string | undefined; event: EventEnvelope }[]> {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(streamOf('inventory'));
    const messages = [];
    for (let seq = Math.max(since + 1, state.first_seq); seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(streamOf('inventory'), { seq });
      if (message) messages.push({ subject: message.subject, msgId: message.header.get('Nats-Msg-Id'), event: message.json<EventEnvelope>() });
    }
    return messages;
  }

  /** `aggregateId:sequence:type` of the events after `since` whose aggregate id starts with `prefix`. */
  async function streamedKeys(since: number, prefix: string): Promise<string[]> {
    return (await streamedSince(since))
      .map(({ event }) => event)
      .filter((event) => event.aggregateId.startsWith(prefix))
      .map((event) => `${event.aggregateId}:${event.sequence}:${event.type}`);
  }

  async function unpublished(prefix = ''): Promise<number> {
    const [row] = await sql<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE published_at IS NULL AND aggregate_id LIKE $1 || '%'`, [prefix]);
    return Number(row.n);
  }

  async function slotRow(name = SLOT) {
    const rows = await sql<{ active: boolean; wal_status: string; confirmed_flush_lsn: string }>(
      'SELECT active, wal_status, confirmed_flush_lsn::text AS confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1',
      [name],
      'postgres',
    );
    return rows[0];
  }

  /** Waits until a relay streams from the slot (it then has caught up with the unpublished rows). */
  async function streaming(): Promise<void> {
    await waitFor(async () => {
      const rows = await sql(
        `SELECT 1 FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
          WHERE s.slot_name = $1 AND a.application_name = 'outbox-relay-inventory-wal'`,
        [SLOT],
        'postgres',
      );
      return rows.length === 1;
    }, 'the relay to stream from its slot');
  }

  async function currentLsn(): Promise<bigint> {
    const [row] = await sql<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return parseLsn(row.lsn);
  }

  const inventory = () => createInventoryActivities(db);
  const reserve = (orderId: string) => inventory().reserveStock({ orderId, lines: [{ sku: 'CB-005', quantity: 1 }] });
  const release = (orderId: string) => inventory().releaseStock({ orderId });

  // --- tests ----------------------------------------------------------------------------------------------------

  it('publishes what real activities write, in write order, with the same envelopes and headers as the polling relay', async function () {
    start();
    await streaming();
    await waitFor(async () => (await unpublished()) === 0, 'the seeded rows to be published');
    const since = await lastSeq();
    const before = await currentLsn();

    await reserve('ord_wal_a1');
    await reserve('ord_wal_a2');
    await release('ord_wal_a1');
    await inventory().consumeReservation({ orderId: 'ord_wal_a2' });
    await release('ord_wal_a3'); // a tombstone
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_a')).length === 5, 'five events on the stream');

    const messages = (await streamedSince(since)).filter(({ event }) => event.aggregateId.startsWith('ord_wal_a'));
    const rows = await sql<OutboxRow & { published_at: Date | null }>(`SELECT * FROM outbox WHERE aggregate_id LIKE 'ord_wal_a%' ORDER BY position`);
    assert.deepEqual(
      messages.map(({ event }) => `${event.aggregateId}:${event.sequence}:${event.type}`),
      ['ord_wal_a1:1:StockReserved', 'ord_wal_a2:1:StockReserved', 'ord_wal_a1:2:StockReleased', 'ord_wal_a2:2:ReservationConsumed', 'ord_wal_a3:1:StockReleased'],
    );
    // What the log decoded is exactly what the polling relay builds from the row.
    assert.deepEqual(
      messages.map(({ event }) => event),
      rows.map((row) => toEnvelope('inventory', row)),
    );
    assert.deepEqual(messages[0].event.payload, { orderId: 'ord_wal_a1', lines: [{ sku: 'CB-005', quantity: 1 }] });
    assert.equal(messages[0].subject, 'inventory.events.StockReserved');
    assert.deepEqual(
      messages.map(({ msgId }) => msgId),
      rows.map((row) => row.id),
      'the event id is the message id',
    );
    const jsm = await jetstreamManager(nc);
    const first = await jsm.streams.getMessage(streamOf('inventory'), { last_by_subj: 'inventory.events.ReservationConsumed' });
    assert.equal(first?.header.get('Correlation-Id'), 'ord_wal_a2');
    assert.equal(first?.header.get('Event-Type'), 'ReservationConsumed');
    assert.equal(first?.header.get('Aggregate'), 'Reservation:ord_wal_a2:2');
    assert.ok(
      rows.every((row) => row.published_at !== null),
      'each row is marked published',
    );
    await waitFor(async () => parseLsn((await slotRow()).confirmed_flush_lsn) > before, 'the slot to be acknowledged past the events');
  });

  it('delivers what was written while it was down, before its slot existed and after, once each and in order', async function () {
    assert.equal(await slotRow(), undefined, 'no slot yet');
    const since = await lastSeq();
    await reserve('ord_wal_b1'); // before the slot exists
    const first = start();
    await streaming();
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_b')).length === 1, 'the event written before the slot');
    await halt(first.relay, first.loop);

    await release('ord_wal_b1'); // the slot exists, nobody reads it
    await reserve('ord_wal_b2');
    assert.equal(await unpublished('ord_wal_b'), 2);
    start();
    await streaming();
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_b')).length >= 3, 'the events written while it was down');
    await reserve('ord_wal_b3'); // and after, from the log
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_b')).length >= 4, 'the event written after it came back');
    assert.deepEqual(await streamedKeys(since, 'ord_wal_b'), [
      'ord_wal_b1:1:StockReserved',
      'ord_wal_b1:2:StockReleased',
      'ord_wal_b2:1:StockReserved',
      'ord_wal_b3:1:StockReserved',
    ]);
    assert.equal(await unpublished('ord_wal_b'), 0);
  });

  it('relays again what it had not acknowledged when it crashed, and the stream still holds each event once', async function () {
    const REWIND = 'walrelay_rewind';
    const first = start();
    await streaming();
    await halt(first.relay, first.loop);
    // A copy of the slot as it stands now: putting it back later is a relay that crashed before PostgreSQL
    // received its acknowledgement of what follows.
    await sql('SELECT pg_copy_logical_replication_slot($1, $2)', [SLOT, REWIND]);
    const rewind = async () => {
      await dropSlots('slot_name', SLOT);
      await sql('SELECT pg_copy_logical_replication_slot($1, $2)', [REWIND, SLOT]);
    };
    const published = new Map<string, number>();
    const subscription = nc.subscribe('inventory.events.>', {
      callback: (_error, message) => {
        const id = message.headers?.get('Nats-Msg-Id') ?? '';
        published.set(id, (published.get(id) ?? 0) + 1);
      },
    });
    try {
      const since = await lastSeq();
      const second = start();
      await streaming();
      await reserve('ord_wal_c1');
      await reserve('ord_wal_c2');
      await waitFor(async () => (await unpublished('ord_wal_c')) === 0, 'the events to be relayed');
      const acknowledged = parseLsn((await slotRow()).confirmed_flush_lsn);
      await halt(second.relay, second.loop);
      const ids = (await sql<{ id: string }>(`SELECT id FROM outbox WHERE aggregate_id LIKE 'ord_wal_c%' ORDER BY position`)).map((row) => row.id);
      await nc.flush();
      assert.deepEqual(
        ids.map((id) => published.get(id)),
        [1, 1],
        'published once',
      );

      // Crashed after marking the rows, before acknowledging: the log is read again, the marked rows skipped.
      await rewind();
      assert.ok(parseLsn((await slotRow()).confirmed_flush_lsn) < acknowledged, 'the slot is back before the events');
      const third = start();
      await streaming();
      await waitFor(async () => parseLsn((await slotRow()).confirmed_flush_lsn) >= acknowledged, 'the slot to be acknowledged again');
      await halt(third.relay, third.loop);
      await nc.flush();
      assert.deepEqual(
        ids.map((id) => published.get(id)),
        [1, 1],
        'rows already marked are not published again',
      );

      // Crashed after JetStream acknowledged, before marking: published again, and the broker drops the copies.
      await rewind();
      await sql(`UPDATE outbox SET published_at = NULL WHERE aggregate_id LIKE 'ord_wal_c%'`);
      start();
      await streaming();
      await waitFor(async () => (await unpublished('ord_wal_c')) === 0, 'the rows to be marked again');
      await waitFor(async () => parseLsn((await slotRow()).confirmed_flush_lsn) >= acknowledged, 'the slot to be acknowledged again');
      await nc.flush();
      assert.deepEqual(
        ids.map((id) => published.get(id)),
        [2, 2],
        'published again',
      );
      const streamed = (await streamedSince(since)).filter(({ event }) => event.aggregateId.startsWith('ord_wal_c'));
      assert.deepEqual(
        streamed.map(({ msgId }) => msgId),
        ids,
        'each event once on the stream, in order',
      );
    } finally {
      subscription.unsubscribe();
    }
  });

  it('publishes every transaction of a burst of concurrent writers, none taken for published while still invisible', async function () {
    // PostgreSQL can send a commit before the transaction is visible to other sessions; a relay that looked the
    // rows up at once would find none, take them for published, acknowledge them, and leave them behind.
    start();
    await streaming();
    const since = await lastSeq();
    const ids = Array.from({ length: 300 }, (_, i) => `ord_wal_burst_${String(i).padStart(3, '0')}`);
    for (let i = 0; i < ids.length; i += 30) {
      await Promise.all(
        ids.slice(i, i + 30).map((id) => db.$transaction((tx) => appendEvents(tx, [orderEvent('Reservation', id, 'StockReserved', { lines: [] })]))),
      );
    }
    await waitFor(async () => (await unpublished('ord_wal_burst_')) === 0, 'every row of the burst to be published and marked');
    const keys = await streamedKeys(since, 'ord_wal_burst_');
    assert.deepEqual([...keys].sort(), ids.map((id) => `${id}:1:StockReserved`), 'each event once');
  });

  it('waits for a decoded transaction to become visible before it looks up its rows', async function () {
    const writer = new Client({ connectionString: url });
    const reader = new Client({ connectionString: url });
    await Promise.all([writer.connect(), reader.connect()]);
    try {
      await writer.query('BEGIN');
      const [{ xid }] = (await writer.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid')).rows;
      const xid32 = Number(BigInt(xid) & 0xffffffffn);
      let visible = false;
      const waiting = waitUntilVisible(reader, xid32).then(() => (visible = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(visible, false, 'still running: not visible');
      await writer.query('COMMIT');
      await waiting;
      assert.equal(visible, true);
      await waitUntilVisible(reader, xid32); // long committed: at once
    } finally {
      await Promise.all([writer.end(), reader.end()]);
    }
  });

  it('publishes nothing for a transaction that rolled back', async function () {
    start();
    await streaming();
    const since = await lastSeq();
    await assert.rejects(
      db.$transaction(async (tx) => {
        await appendEvents(tx, [orderEvent('Reservation', 'ord_wal_d_rolled_back', 'StockReserved', { lines: [] })]);
        throw new Error('fails after writing its event');
      }),
      /fails after writing its event/,
    );
    await reserve('ord_wal_d_committed');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_d')).length > 0, 'the committed event');
    assert.deepEqual(await streamedKeys(since, 'ord_wal_d'), ['ord_wal_d_committed:1:StockReserved'], 'the rolled-back event, written before it, is not there');
    assert.equal((await sql(`SELECT 1 FROM outbox WHERE aggregate_id = 'ord_wal_d_rolled_back'`)).length, 0);
  });

  it('lets one relay per database be active: a second one waits and takes over, and a slot in use is waited for', async function () {
    const since = await lastSeq();
    const active = start();
    await streaming();
    start(); // the standby
    await reserve('ord_wal_e1');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_e')).length === 1, 'the first event');
    const walSenders = await sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'outbox-relay-inventory-wal'`, [], 'postgres');
    assert.equal(walSenders.length, 1, 'one relay streams');
    const locks = await sql(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 7310001 AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    assert.equal(locks.length, 1, 'one relay holds the lock');

    await halt(active.relay, active.loop);
    await reserve('ord_wal_e2');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_e')).length === 2, 'the standby to take over');
    await streaming();
    for (const { relay, loop } of [...started]) await halt(relay, loop);

    // Another connection streams from the slot (a previous relay's, say, not yet seen gone by the server).
    const other = new ReplicationStream({ connectionString: url, application_name: 'someone-else' }, { data: async () => {}, keepalive: () => {} });
    void other.run(SLOT, { proto_version: '1', publication_names: OUTBOX_PUBLICATION }).catch(() => {});
    try {
      await waitFor(async () => (await slotRow())?.active === true, 'the other connection to hold the slot');
      start();
      await reserve('ord_wal_e3');
      await waitFor(() => logs.some((line) => /in use by another connection/.test(line)), 'the relay to find the slot in use');
      await waitFor(async () => (await streamedKeys(since, 'ord_wal_e')).length === 3, 'the event written meanwhile (its catch-up goes on)');
    } finally {
      await other.close();
    }
    await streaming();
    await reserve('ord_wal_e4');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_e')).length === 4, 'the event written once it streams');
    assert.deepEqual(await streamedKeys(since, 'ord_wal_e'), [
      'ord_wal_e1:1:StockReserved',
      'ord_wal_e2:1:StockReserved',
      'ord_wal_e3:1:StockReserved',
      'ord_wal_e4:1:StockReserved',
    ]);
  });

  it('delivers the same events as the polling relay, in the same order', async function () {
    const relayed = async (mode: RelayMode) => {
      const urls = await cluster.createServiceDatabases(`walsame_${mode}`);
      slotDatabases.add(`walsame_${mode}_inventory`);
      const service = connectInventoryDb(urls.inventory);
      const since = await lastSeq();
      try {
        const activities = createInventoryActivities(service);
        const reserveFor = (orderId: string) => activities.reserveStock({ orderId, lines: [{ sku: 'CB-005', quantity: 2 }, { sku: 'MS-002', quantity: 1 }] });
        // Some before the relay starts, some while it runs.
        await reserveFor('ord_same_1');
        await reserveFor('ord_same_2');
        const { relay, loop } = start(mode, { databaseUrl: urls.inventory });
        await activities.releaseStock({ orderId: 'ord_same_1' });
        await activities.consumeReservation({ orderId: 'ord_same_2' });
        await activities.releaseStock({ orderId: 'ord_same_3' });
        await reserveFor('ord_same_4');
        await activities.releaseStock({ orderId: 'ord_same_4' });
        await reserveFor('ord_same_4'); // a retry after the release: records nothing
        await waitFor(async () => {
          const [row] = await sql<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL', [], `walsame_${mode}_inventory`);
          return Number(row.n) === 0;
        }, `the ${mode} relay to publish everything`);
        await halt(relay, loop);
        return (await streamedSince(since)).map(({ event }) => [event.aggregateType, event.aggregateId, event.sequence, event.type, event.payload]);
      } finally {
        await service.$disconnect();
      }
    };
    const polling = await relayed('polling');
    const wal = await relayed('wal');
    assert.ok(polling.filter(([type]) => type === 'Reservation').length >= 6, 'the workload produced its events');
    assert.deepEqual(wal, polling);
  });

  it('purges published rows older than the retention period, and only those', async function () {
    const insert = async (label: string, aggregateId: string, sequence: number, publishedAgoMs: number | null, occurredAgoMs = 0) => {
      await sql(
        `INSERT INTO outbox (id, aggregate_type, aggregate_id, sequence, type, payload, correlation_id, occurred_at, published_at)
         VALUES ($1, 'PurgeProbe', $2, $5, $6, '{}', $2, now() - make_interval(secs => $3::float8 / 1000),
                 CASE WHEN $4::float8 IS NULL THEN NULL ELSE now() - make_interval(secs => $4::float8 / 1000) END)`,
        [randomUUID(), aggregateId, occurredAgoMs, publishedAgoMs, sequence, label],
      );
    };
    const probes = async () => (await sql<{ type: string }>(`SELECT type FROM outbox WHERE aggregate_type = 'PurgeProbe' ORDER BY 1`)).map((row) => row.type);
    const others = async () => Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE aggregate_type <> 'PurgeProbe'`))[0].n);

    let sequence = 0;
    for (const label of ['old_1', 'old_2', 'old_3']) await insert(label, 'probe-a', ++sequence, 8 * DAY_MS, 9 * DAY_MS);
    await insert('recent', 'probe-a', ++sequence, DAY_MS, 2 * DAY_MS);
    await insert('unpublished', 'probe-a', ++sequence, null, 30 * DAY_MS);
    // Old and published, but the last event of its aggregate: the next one's sequence counts on from it.
    await insert('old_but_last', 'probe-b', 1, 8 * DAY_MS, 9 * DAY_MS);
    const before = await others();
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      assert.equal(await purgePublishedEvents(client, 7 * DAY_MS, 2), 3, 'in chunks of two');
    } finally {
      await client.end();
    }
    assert.deepEqual(await probes(), ['old_but_last', 'recent', 'unpublished']);
    assert.equal(await others(), before, 'recently published rows stay');

    // The active relay purges by itself, in either mode.
    for (const mode of ['wal', 'polling'] as const) {
      await insert(`relay_${mode}_old`, `probe-${mode}`, 1, 10 * 60_000, 10 * 60_000);
      await insert(`relay_${mode}_new`, `probe-${mode}`, 2, 60_000, 60_000);
      const { relay, loop } = start(mode, { retentionMs: 5 * 60_000 });
      await waitFor(async () => !(await probes()).includes(`relay_${mode}_old`), `the ${mode} relay to purge`);
      await halt(relay, loop);
      assert.ok((await probes()).includes(`relay_${mode}_new`), 'a row within the retention stays');
    }
    assert.ok((await probes()).includes('unpublished'), 'an unpublished row is never purged');
    await sql(`DELETE FROM outbox WHERE aggregate_type = 'PurgeProbe'`);
  });

  it('reports the backlog, the published rows and the slot lag as they change', async function () {
    const lastPosition = async () => Number((await sql<{ p: string }>('SELECT coalesce(max(position), 0) AS p FROM outbox'))[0].p);
    const rowsAfter = async (position: number) => Number((await sql<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE position > $1', [position]))[0].n);
    const initial = await outboxStatus(url);
    assert.equal(initial.slot, null, 'no slot before the WAL relay ran');
    const start0 = await lastPosition();
    await reserve('ord_wal_h1');
    await release('ord_wal_h1');
    const added = await rowsAfter(start0); // the reservation's events, and the product's stock events if any
    assert.ok(added >= 2);
    const written = await outboxStatus(url);
    assert.equal(written.backlog, initial.backlog + added);
    assert.equal(written.published, initial.published);
    assert.ok(written.oldestUnpublishedAgeMs !== null && written.oldestUnpublishedAgeMs >= 0);

    const first = start();
    await streaming();
    await waitFor(async () => (await outboxStatus(url)).backlog === 0, 'the backlog to drain');
    const running = await outboxStatus(url);
    assert.equal(running.published, initial.published + initial.backlog + added);
    assert.equal(running.oldestUnpublishedAgeMs, null);
    assert.equal(running.slot?.name, SLOT);
    assert.equal(running.slot?.active, true);
    assert.equal(running.slot?.walStatus, 'reserved');
    await halt(first.relay, first.loop);

    const stopped = await outboxStatus(url);
    assert.equal(stopped.slot?.active, false);
    const start1 = await lastPosition();
    for (const orderId of ['ord_wal_h2', 'ord_wal_h3', 'ord_wal_h4']) await reserve(orderId);
    const behind = await outboxStatus(url);
    assert.equal(behind.backlog, await rowsAfter(start1));
    assert.ok(behind.backlog >= 3);
    assert.ok(behind.slot!.lagBytes! > stopped.slot!.lagBytes!, `the lag grows (${stopped.slot!.lagBytes} → ${behind.slot!.lagBytes})`);

    start();
    await streaming();
    await waitFor(async () => {
      const status = await outboxStatus(url);
      return status.backlog === 0 && status.slot!.lagBytes! < behind.slot!.lagBytes!;
    }, 'the backlog to drain and the lag to shrink');
  });

  it('recreates a slot that was invalidated or dropped, and catches up on what was written meanwhile', async function () {
    const since = await lastSeq();
    const first = start();
    await streaming();
    await halt(first.relay, first.loop);
    await reserve('ord_wal_i1');

    // Invalidate the idle slot (PostgreSQL 18: idle_replication_slot_timeout, checked at each checkpoint).
    await sql(`ALTER SYSTEM SET idle_replication_slot_timeout = '1s'`, [], 'postgres');
    await sql('SELECT pg_reload_conf()', [], 'postgres');
    try {
      await waitFor(async () => {
        await sql('CHECKPOINT', [], 'postgres');
        return (await slotRow())?.wal_status === 'lost';
      }, 'the slot to be invalidated');
    } finally {
      await sql('ALTER SYSTEM RESET idle_replication_slot_timeout', [], 'postgres');
      await sql('SELECT pg_reload_conf()', [], 'postgres');
    }
    assert.equal((await outboxStatus(url)).slot?.walStatus, 'lost');

    const second = start();
    await streaming();
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_i')).length === 1, 'the event written before the slot was lost');
    assert.ok(
      logs.some((line) => /invalidated/.test(line)),
      `the relay says so:\n${logs.join('\n')}`,
    );
    assert.equal((await slotRow())?.wal_status, 'reserved');
    await reserve('ord_wal_i2');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_i')).length === 2, 'an event from the new slot');
    await halt(second.relay, second.loop);

    // Dropped by hand.
    await dropSlots('slot_name', SLOT);
    await release('ord_wal_i1');
    start();
    await streaming();
    await reserve('ord_wal_i3');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_i')).length === 4, 'the events around the dropped slot');
    assert.deepEqual(await streamedKeys(since, 'ord_wal_i'), [
      'ord_wal_i1:1:StockReserved',
      'ord_wal_i2:1:StockReserved',
      'ord_wal_i1:2:StockReleased',
      'ord_wal_i3:1:StockReserved',
    ]);
  });

  it('resumes from its slot when PostgreSQL ends its connections or restarts', async function () {
    const since = await lastSeq();
    start();
    await streaming();
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'outbox-relay-inventory%'`, [], 'postgres');
    await reserve('ord_wal_j1');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_j')).length === 1, 'the event written after the disconnection');

    await cluster.withDown(() => new Promise((resolve) => setTimeout(resolve, 500)));
    // The activity's own pool may still hold a connection from before the restart: its retry records nothing twice.
    await reserve('ord_wal_j2').catch(() => reserve('ord_wal_j2'));
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_j')).length === 2, 'the event written after the restart', 40_000);
    await streaming();
    await reserve('ord_wal_j3');
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_j')).length === 3, 'the event written once it streams again');
    assert.deepEqual(await streamedKeys(since, 'ord_wal_j'), ['ord_wal_j1:1:StockReserved', 'ord_wal_j2:1:StockReserved', 'ord_wal_j3:1:StockReserved']);
  });

  it('starts over when the server ends its replication connection in the same read as its ready answer', async function () {
    // PostgreSQL shutting down just as the relay reconnects: the connection's "ready" and its end arrive together.
    // The error must reach the relay, which starts over; pg-logical-replication's service attached its listener too
    // late for that, and the 'error' with none crashed the relay process (CI's chaos run lost three services' events).
    const proxy = await startHoldingProxy({ host: new URL(url).hostname, port: Number(new URL(url).port) });
    try {
      const since = await lastSeq();
      const viaProxy = new URL(url);
      viaProxy.port = String(proxy.port);
      start('wal', { databaseUrl: viaProxy.toString() });
      await proxy.holding;
      await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'outbox-relay-inventory-wal'`, [], 'postgres');
      await waitFor(() => logs.some((line) => /relaying failed/.test(line) && /terminating connection due to administrator command/.test(line)), 'the relay to report the ended connection');
      await streaming();
      await reserve('ord_wal_p1');
      await waitFor(async () => (await streamedKeys(since, 'ord_wal_p')).length === 1, 'the event written once it streams again');
    } finally {
      for (const { relay, loop } of [...started]) await halt(relay, loop);
      await proxy.close();
    }
  });

  it('acknowledges nothing while NATS is down, and delivers it all once NATS is back', async function () {
    const since = await lastSeq();
    start();
    await streaming();
    await waitFor(async () => (await unpublished()) === 0, 'a drained outbox');
    await server.stop();
    let afterFirst: bigint;
    try {
      await reserve('ord_wal_k1');
      afterFirst = await currentLsn();
      await release('ord_wal_k1');
      await waitFor(() => logs.some((line) => /retrying/.test(line)), 'the relay to fail to publish');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(await unpublished('ord_wal_k'), 2, 'the rows wait');
      // Before the first event's commit ends: what it acknowledged, if anything, precedes that transaction.
      assert.ok(parseLsn((await slotRow()).confirmed_flush_lsn) < afterFirst, 'the slot is not acknowledged past them');
    } finally {
      server = await startNatsServer({ port: server.port, storeDir });
    }
    await waitFor(async () => (await streamedKeys(since, 'ord_wal_k')).length === 2, 'the events once NATS is back', 40_000);
    assert.deepEqual(await streamedKeys(since, 'ord_wal_k'), ['ord_wal_k1:1:StockReserved', 'ord_wal_k1:2:StockReleased']);
    await waitFor(async () => parseLsn((await slotRow()).confirmed_flush_lsn) >= afterFirst, 'the slot to be acknowledged past them');
  });

  it('names slots after their database, in the characters a slot name allows', function () {
    assert.equal(slotNameOf('walrelay_inventory'), 'outbox_relay_walrelay_inventory');
    assert.equal(slotNameOf('Shop-Orders.eu'), 'outbox_relay_shop_orders_eu');
    assert.equal(slotNameOf('x'.repeat(80)).length, 63);
    assert.ok(new WalRelay({ service: 'inventory', databaseUrl: url, nats: nc }).slotName === undefined, 'known once connected');
  });
});
