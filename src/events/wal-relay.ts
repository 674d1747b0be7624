// The WAL relay: the outbox relay mode that tails the database's write-ahead log through logical replication
// (plugin pgoutput, publication `outbox_relay`, which streams outbox INSERTs only) instead of polling the table.
// Each committed transaction's events are published in log order, each awaited before the next, then marked
// published, and only then is the transaction's end acknowledged to PostgreSQL. A crash anywhere before that
// acknowledgement streams the transaction again; rows already marked are skipped, rows not marked are published
// again and the broker drops the duplicates by their Nats-Msg-Id. Nothing is acknowledged that was not relayed.
// The rows are looked up only once their transaction is visible (waitUntilVisible): the log can hand a commit over
// before other sessions see it.
//
// The slot is durable (never temporary): it keeps the log from the last acknowledged position while the relay is
// down, up to max_slot_wal_keep_size; beyond that PostgreSQL invalidates it. Whatever a slot cannot give, the
// events written before it existed, while the polling mode ran, or while it was lost, are rows still unpublished:
// on becoming the active relay, it creates the slot if needed, then publishes every unpublished row (the polling
// batch), and only then streams from the slot. published_at is therefore kept in both modes.
//
// One active relay per database, whatever its mode: the same advisory lock as the polling relay. A slot in use by
// another connection (a previous relay's connection the server has not noticed gone yet) is waited for.
import type { Client } from 'pg';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { PgoutputPlugin } from 'pg-logical-replication';
import type { ServiceName } from '../config';
import type { TraceCarrier } from '../observability/tracing';
import { eventLogFields, silentLogger, type Logger } from '../observability/logging';
import { ReplicationStream } from './replication-stream';
import {
  connectRelayClient,
  markPublished,
  PollingRelay,
  publishEnvelope,
  publishOutboxBatch,
  RetentionPurge,
  sleep,
  toEnvelope,
  tryRelayLock,
  type EventEnvelope,
  type OutboxRow,
  type Relay,
  type RelayOptions,
  type RelayRunOptions,
} from './relay';

/** The publication every service database declares on its outbox (migration …_outbox_publication). */
export const OUTBOX_PUBLICATION = 'outbox_relay';
/** How often the streaming relay checks whether the purge is due (RetentionPurge runs it once a minute). */
const PURGE_CHECK_MS = 10_000;

export type RelayMode = 'wal' | 'polling';

export interface CreateRelayOptions extends RelayOptions {
  mode: RelayMode;
}

/** The relay of one database, in the given mode; both have run(), stop() and close(). */
export function createRelay({ mode, ...options }: CreateRelayOptions): Relay {
  return mode === 'wal' ? new WalRelay(options) : new PollingRelay(options);
}

/**
 * The replication slot of a database's relay. Slots are named per cluster, and several service databases may
 * share one, so the name carries the database's: `outbox_relay_<database>`, in the characters a slot name allows.
 */
export function slotNameOf(databaseName: string): string {
  return `outbox_relay_${databaseName}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
}

export class WalRelay implements Relay {
  private client?: Client;
  private slot?: string;
  private leader = false;
  private running = false;
  private session?: ReplicationSession;
  private readonly purge: RetentionPurge;
  private logger: Logger = silentLogger;

  constructor(private readonly options: RelayOptions) {
    this.purge = new RetentionPurge(options.retentionMs);
  }

  /** The slot this relay reads, once connected. */
  get slotName(): string | undefined {
    return this.slot;
  }

  /** Connects and tries to become the database's active relay; false while another relay holds the lock. */
  async tryLead(): Promise<boolean> {
    if (!this.client) {
      this.client = await connectRelayClient(this.options.databaseUrl, `outbox-relay-${this.options.service}`, () => {
        this.leader = false;
      });
      const { rows } = await this.client.query<{ name: string }>('SELECT current_database() AS name');
      this.slot = slotNameOf(rows[0].name);
    }
    if (!this.leader) this.leader = await tryRelayLock(this.client);
    return this.leader;
  }

  /**
   * Publishes every unpublished row, oldest first, batch after batch (as the polling relay does), and answers
   * how many. Only the active relay may call it.
   */
  async catchUp(): Promise<number> {
    const client = this.activeClient();
    const batchSize = this.options.batchSize ?? 100;
    let total = 0;
    for (;;) {
      const published = await publishOutboxBatch(client, this.options.nats, this.options.service, batchSize, this.logger);
      total += published;
      // A short batch means none was left when it was read; later rows are in the slot anyway.
      if (published < batchSize) return total;
    }
  }

  /**
   * Runs until stop(): waits to lead, makes sure the slot exists, catches up on unpublished rows, then streams.
   * A failure (PostgreSQL or NATS away, the slot lost) closes the connections, waits `retryMs` and starts over
   * from the slot's last acknowledged position.
   */
  async run({ retryMs = 1_000, logger = silentLogger }: RelayRunOptions = {}): Promise<void> {
    const log = (this.logger = logger.child({ component: 'relay', outbox: this.options.service, mode: 'wal' }));
    this.running = true;
    while (this.running) {
      try {
        if (!(await this.tryLead())) {
          await sleep(retryMs);
          continue;
        }
        // The slot first: what the catch-up below does not see yet, the slot has from now on.
        const start = await ensureSlot(this.activeClient(), this.slot!, (line) => log.warn({ slot: this.slot }, line));
        await this.purgeIfDue();
        const caughtUp = await this.catchUp();
        if (caughtUp > 0) log.info({ published: caughtUp }, `published ${caughtUp} events written while the log was not being read`);
        if (this.running) await this.stream(start);
      } catch (error) {
        if (!this.running) break; // stopped: the connection ended because of it, nothing to report or retry
        if (isSlotInUse(error)) {
          // Keep the lock: this relay is the active one, the slot's other reader is a leftover about to go.
          log.warn({ slot: this.slot, err: error }, `slot ${this.slot} is in use by another connection; waiting ${retryMs} ms`);
          await sleep(retryMs);
          continue;
        }
        if (isSlotInvalidated(error)) log.warn({ slot: this.slot, err: error }, `slot ${this.slot} was invalidated; it will be recreated`);
        else log.warn({ err: error }, `relaying failed; retrying in ${retryMs} ms`);
        await this.close();
        await sleep(retryMs);
      }
    }
  }

  stop(): void {
    this.running = false;
    void this.session?.close();
  }

  /** Ends the replication stream and closes the connection, which also gives up the lock. */
  async close(): Promise<void> {
    this.leader = false;
    await this.session?.close();
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }

  /** Streams from the slot until stop() or a failure. */
  private async stream(start: bigint): Promise<void> {
    const session = new ReplicationSession({
      service: this.options.service,
      databaseUrl: this.options.databaseUrl,
      slot: this.slot!,
      client: this.activeClient(),
      js: jetstream(this.options.nats),
      acknowledged: start,
      logger: this.logger,
    });
    this.session = session;
    const purging = setInterval(() => void this.purgeIfDue(), PURGE_CHECK_MS);
    try {
      await session.run();
    } finally {
      clearInterval(purging);
      this.session = undefined;
    }
  }

  /** The purge, when due; a failed purge is only logged (the next one will do). */
  private async purgeIfDue(): Promise<void> {
    if (!this.client) return;
    try {
      const purged = await this.purge.runIfDue(this.client);
      if (purged > 0) this.logger.info({ purged }, `purged ${purged} published events`);
    } catch (error) {
      this.logger.warn({ err: error }, 'the purge failed');
    }
  }

  private activeClient(): Client {
    if (!this.leader || !this.client) throw new Error(`the ${this.options.service} relay is not the active one`);
    return this.client;
  }
}

// --- one replication connection -------------------------------------------------------------------------------

interface SessionContext {
  service: ServiceName;
  databaseUrl: string;
  slot: string;
  /** The relay's own connection: reads and marks rows. */
  client: Client;
  js: JetStreamClient;
  /** Where the slot stands (its confirmed_flush_lsn) when the session starts. */
  acknowledged: bigint;
  logger: Logger;
}

/**
 * Streams the slot on one replication connection (replication-stream.ts): relays each committed transaction, then
 * acknowledges its end. It ends on close() or on the first failure (the stream's, or one relaying a message), after
 * which it neither relays nor acknowledges anything more.
 */
class ReplicationSession {
  private readonly stream: ReplicationStream;
  private readonly decoder = new PgoutputPlugin({ protoVersion: 1, publicationNames: [OUTBOX_PUBLICATION] });
  /** Messages handled so far, in arrival order (compared with stream.received). */
  private handled = 0;
  /** The events of the transaction being received, from its begin to its commit, and its transaction id. */
  private transaction?: EventEnvelope[];
  private transactionId = 0;
  /** The trace context each of the transaction's rows stored, by event id (src/events/outbox.ts). */
  private readonly traceContexts = new Map<string, TraceCarrier | null>();
  /** The latest keepalive not acknowledged yet, and how many messages had arrived before it. */
  private keepalive?: { after: number; lsn: bigint };
  private acknowledged: bigint;

  constructor(private readonly context: SessionContext) {
    this.acknowledged = context.acknowledged;
    this.stream = new ReplicationStream(
      { connectionString: context.databaseUrl, application_name: `outbox-relay-${context.service}-wal` },
      {
        data: (payload) => this.handle(payload),
        // A keepalive may be acknowledged only once everything that arrived before it is relayed.
        keepalive: (lsn, replyRequested) => this.onKeepalive(lsn, replyRequested),
      },
    );
  }

  /** Streams until close(), or rejects with the failure that ended it; settles once the connection is closed. */
  run(): Promise<void> {
    return this.stream.run(this.context.slot, { proto_version: '1', publication_names: OUTBOX_PUBLICATION }).finally(() => this.stream.close());
  }

  /** Ends the session; resolves once its connection is closed and the message being handled is done. */
  close(): Promise<void> {
    return this.stream.close();
  }

  /** One message; a failure (one that cannot be decoded, a relay that fails) fails the stream: nothing after it is acknowledged. */
  private async handle(payload: Buffer): Promise<void> {
    try {
      if (!this.stream.open) return;
      const message = this.decoder.parse(payload);
      switch (message.tag) {
        case 'begin':
          this.transaction = [];
          this.traceContexts.clear();
          this.transactionId = message.xid;
          break;
        case 'insert':
          if (!this.transaction) throw new Error('an insert arrived outside a transaction');
          if (message.relation.name === 'outbox') {
            const row = message.new as OutboxRow;
            this.transaction.push(toEnvelope(this.context.service, row));
            this.traceContexts.set(row.id, row.trace_context ?? null);
          }
          break;
        case 'commit': {
          const events = this.transaction ?? [];
          this.transaction = undefined;
          await this.relay(events, this.transactionId);
          this.acknowledge(parseLsn(message.commitEndLsn!));
          break;
        }
      }
    } finally {
      this.handled += 1;
    }
    this.acknowledgeKeepaliveIfCaughtUp();
  }

  /** Publishes a transaction's events that are still unpublished, in order, then marks them. */
  private async relay(events: EventEnvelope[], transactionId: number): Promise<void> {
    if (events.length === 0) return;
    // The rows must be visible before they are looked up: invisible, they would pass for published ones.
    await waitUntilVisible(this.context.client, transactionId, () => !this.stream.open);
    // Rows the catch-up already published, or a session that ended before acknowledging, are skipped; so is a row
    // since purged (only published rows are).
    const { rows } = await this.context.client.query<{ id: string }>('SELECT id FROM outbox WHERE id = ANY($1::uuid[]) AND published_at IS NULL', [
      events.map((event) => event.id),
    ]);
    const unpublished = new Set(rows.map((row) => row.id));
    const pending = events.filter((event) => unpublished.has(event.id));
    for (const envelope of pending) {
      await publishEnvelope(this.context.js, envelope, this.traceContexts.get(envelope.id));
      this.context.logger.debug(eventLogFields(envelope), 'published');
    }
    await markPublished(this.context.client, pending.map((event) => event.id));
  }

  /**
   * A keepalive tells how far the server has read the log. Once every message that arrived before it is relayed,
   * its position may be acknowledged: that lets the slot move past the log written by other databases and by
   * other tables, which would otherwise be kept for nothing.
   */
  private onKeepalive(lsn: bigint, shouldRespond: boolean): void {
    this.keepalive = { after: this.stream.received, lsn };
    // The server ends a connection that stays silent for wal_sender_timeout: answer with where we stand.
    if (!this.acknowledgeKeepaliveIfCaughtUp() && shouldRespond) this.sendStatus(this.acknowledged);
  }

  private acknowledgeKeepaliveIfCaughtUp(): boolean {
    const keepalive = this.keepalive;
    if (!keepalive || this.transaction || this.handled < keepalive.after) return false;
    this.keepalive = undefined;
    return this.acknowledge(keepalive.lsn);
  }

  /** Confirms to PostgreSQL that everything before `lsn` is relayed: the slot will not send it again. */
  private acknowledge(lsn: bigint): boolean {
    if (!this.stream.open || lsn <= this.acknowledged) return false;
    this.acknowledged = lsn;
    this.sendStatus(lsn);
    return true;
  }

  private sendStatus(lsn: bigint): void {
    // Exactly the commit's end LSN, where the next record may start: confirming one byte past it could make
    // PostgreSQL skip a transaction whose commit record starts right there.
    if (lsn > 0n) this.stream.sendStatus(lsn);
  }
}

// --- visibility of a decoded transaction ----------------------------------------------------------------------

/** How long a decoded transaction may take to become visible before the session gives up and starts over. */
const VISIBILITY_TIMEOUT_MS = 30_000;

/**
 * Waits until the transaction `xid` (as pgoutput's BEGIN gives it, 32 bits) is visible to new snapshots.
 * PostgreSQL commits in two steps: it flushes the commit record to the log, then takes the transaction out of the
 * running set. The WAL sender may decode and send the commit in between, and a query then would not see the rows
 * yet: the relay would take them for rows already published (or purged) and acknowledge them, and they would
 * stay unpublished until the next catch-up. Checked against a fresh snapshot; the full xid8 is rebuilt from the
 * epoch of the snapshot's next xid (the transaction is older than it, so at most one epoch behind).
 */
export async function waitUntilVisible(client: Client, xid: number, abandoned: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + VISIBILITY_TIMEOUT_MS;
  for (;;) {
    const { rows } = await client.query<{ visible: boolean }>(
      `WITH snapshot AS (SELECT pg_current_snapshot() AS current),
            next AS (SELECT current, pg_snapshot_xmax(current)::text::numeric AS xid FROM snapshot),
            epoch AS (SELECT current, floor(xid / 4294967296) - CASE WHEN $1::numeric > xid % 4294967296 THEN 1 ELSE 0 END AS n FROM next)
       SELECT pg_visible_in_snapshot((n * 4294967296 + $1::numeric)::text::xid8, current) AS visible FROM epoch`,
      [xid],
    );
    if (rows[0].visible) return;
    if (abandoned()) throw new Error(`the session ended while transaction ${xid} was becoming visible`);
    if (Date.now() > deadline) throw new Error(`transaction ${xid} was decoded from the log but is still not visible after ${VISIBILITY_TIMEOUT_MS} ms`);
    await sleep(2);
  }
}

// --- the slot -------------------------------------------------------------------------------------------------

interface SlotRow {
  database: string;
  confirmed_flush_lsn: string | null;
  invalidated: boolean;
}

async function readSlot(client: Client, name: string): Promise<SlotRow | undefined> {
  // invalidation_reason exists from PostgreSQL 17 on (to_jsonb reads it if there); wal_status 'lost' before.
  const { rows } = await client.query<SlotRow>(
    `SELECT database, confirmed_flush_lsn::text AS confirmed_flush_lsn,
            (wal_status = 'lost' OR to_jsonb(s) ->> 'invalidation_reason' IS NOT NULL) AS invalidated
       FROM pg_replication_slots s WHERE slot_name = $1`,
    [name],
  );
  return rows[0];
}

/**
 * Makes sure the slot exists and is usable, recreating an invalidated one, and answers its confirmed position.
 * A slot is created at the log's current position: the catch-up that follows covers whatever came before.
 */
export async function ensureSlot(client: Client, name: string, log: (line: string) => void = () => {}): Promise<bigint> {
  let slot = await readSlot(client, name);
  const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name');
  if (slot && slot.database !== rows[0].name) throw new Error(`replication slot ${name} belongs to database ${slot.database}, not ${rows[0].name}`);
  if (slot?.invalidated) {
    log(`slot ${name} was invalidated (it fell more than max_slot_wal_keep_size behind, or sat idle too long); recreating it`);
    await dropSlot(client, name);
    slot = undefined;
  }
  if (!slot) {
    try {
      await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    } catch (error) {
      // Another relay created it at the same moment: theirs will do.
      if ((error as { code?: string }).code !== '42710') throw error;
    }
    slot = await readSlot(client, name);
  }
  if (!slot?.confirmed_flush_lsn) throw new Error(`replication slot ${name} has no confirmed position`);
  return parseLsn(slot.confirmed_flush_lsn);
}

/** Drops the slot if it exists (it must not be in use). */
export async function dropSlot(client: Client, name: string): Promise<void> {
  await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [name]);
}

/** "replication slot … is active for PID …": another connection streams from it. */
function isSlotInUse(error: unknown): boolean {
  return (error as { code?: string }).code === '55006' && /replication slot .* is active/i.test(errorMessage(error));
}

/** The slot can no longer be read: the log it needs is gone, or it sat idle too long. */
function isSlotInvalidated(error: unknown): boolean {
  return /invalidated|can no longer (access|get changes from) replication slot|has already been removed/i.test(
    `${errorMessage(error)} ${(error as { detail?: string }).detail ?? ''}`,
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// --- log sequence numbers ---------------------------------------------------------------------------------------

/** An LSN, `0/2C5DF48` or `00000000/02C5DF48`, as a number. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  if (low === undefined) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
