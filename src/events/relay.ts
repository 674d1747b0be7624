// The outbox relay: publishes a service's outbox to its JetStream stream, in the order the events were written,
// and marks each row published only after JetStream acknowledged it. A crash anywhere between the publish and the
// mark republishes the row; the broker drops the duplicate (the event id is its Nats-Msg-Id) and consumers
// deduplicate too, so delivery is at least once and nothing is lost.
//
// Two modes share this file's publishing, marking, locking and purging:
// - polling (here, PollingRelay): reads the unpublished rows by write position, batch after batch;
// - wal (src/events/wal-relay.ts): tails the database's write-ahead log through logical replication, and uses
//   the polling batch to catch up on whatever the log cannot give it (events older than its slot).
//
// One relay per database is active at a time, whatever its mode: it holds a PostgreSQL advisory lock on its own
// connection, and a second relay waits for it (a standby that takes over when the first one's connection goes).
// The active relay also deletes the rows published longer ago than the retention period.
import { Client } from 'pg';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { ServiceName } from '../config';
import { eventLogFields, silentLogger, type Logger } from '../observability/logging';
import { contextFromCarrier, inSpan, injectInto, SpanKind, type TraceCarrier } from '../observability/tracing';
import type { StoredEvent } from './outbox';
import { subjectOf } from './streams';

/** The advisory lock key of the relay of a database (any constant; one relay per database holds it). */
const RELAY_LOCK_KEY = 7_310_001;

/** How long published rows are kept by default: enough to look into a recent incident. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60_000;
/** The purge runs at most this often: published rows pile up slowly, and each run scans an index. */
const PURGE_INTERVAL_MS = 60_000;
/** Rows deleted per statement, so that a large purge never holds many locks or one long transaction. */
const PURGE_CHUNK = 1_000;

/** An event on the wire: the outbox row, with the service that published it. */
export interface EventEnvelope extends StoredEvent {
  service: ServiceName;
}

/** An outbox row, as a SELECT returns it and as the write-ahead log decodes it (same columns, same parsers). */
export interface OutboxRow {
  id: string;
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  type: string;
  payload: Record<string, unknown>;
  correlation_id: string;
  occurred_at: Date;
  /** The trace context of the span that wrote the event (src/events/outbox.ts); null when it was not traced. */
  trace_context?: TraceCarrier | null;
}

/** The options of both relay modes. */
export interface RelayOptions {
  service: ServiceName;
  databaseUrl: string;
  nats: NatsConnection;
  /** Rows published per transaction (polling; the WAL relay's catch-up). */
  batchSize?: number;
  /** Published rows older than this are deleted (default 7 days). */
  retentionMs?: number;
}
export type PollingRelayOptions = RelayOptions;

export interface RelayRunOptions {
  /** Polling mode: the pause when the outbox is empty. */
  idleMs?: number;
  /** The pause before trying again after a failure, or to lead while another relay does. */
  retryMs?: number;
  /** Where the relay says what it published (debug), purged and what failed; silent if absent. */
  logger?: Logger;
}

/** What runs a database's relay, whatever its mode. */
export interface Relay {
  run(options?: RelayRunOptions): Promise<void>;
  stop(): void;
  close(): Promise<void>;
}

export function toEnvelope(service: ServiceName, row: OutboxRow): EventEnvelope {
  return {
    service,
    id: row.id,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    sequence: row.sequence,
    type: row.type,
    payload: row.payload,
    correlationId: row.correlation_id,
    occurredAt: row.occurred_at.toISOString(),
  };
}

/**
 * Publishes one event to its service's stream and resolves once JetStream has stored it. While tracing is on, in a
 * `publish <subject>` span, the child of `traceContext` (the trace of the activity that wrote the event), whose own
 * context goes in the message's `traceparent` header for the consumers to continue.
 */
export async function publishEnvelope(js: JetStreamClient, envelope: EventEnvelope, traceContext?: TraceCarrier | null): Promise<void> {
  const subject = subjectOf(envelope.service, envelope.type);
  const attributes = {
    'messaging.system': 'nats',
    'messaging.operation.type': 'publish',
    'messaging.destination.name': subject,
    'messaging.message.id': envelope.id,
    'order_saga.event_type': envelope.type,
    'order_saga.correlation_id': envelope.correlationId,
  };
  await inSpan(`publish ${subject}`, { kind: SpanKind.PRODUCER, parent: contextFromCarrier(traceContext), attributes }, async (span) => {
    const meta = headers();
    meta.set('Correlation-Id', envelope.correlationId);
    meta.set('Event-Type', envelope.type);
    meta.set('Aggregate', `${envelope.aggregateType}:${envelope.aggregateId}:${envelope.sequence}`);
    if (span.isRecording()) injectInto(meta);
    await js.publish(subject, JSON.stringify(envelope), { msgID: envelope.id, headers: meta });
  });
}

/** Marks rows published, in one statement. */
export async function markPublished(client: Client, ids: string[]): Promise<void> {
  if (ids.length > 0) await client.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])', [ids]);
}

/**
 * Publishes the oldest unpublished rows, up to one batch, in position order, each awaited before the next (so
 * per-aggregate order holds on the stream), then marks them published in the same transaction that locked them.
 * Answers how many were published.
 */
export async function publishOutboxBatch(client: Client, nats: NatsConnection, service: ServiceName, batchSize: number, logger = silentLogger): Promise<number> {
  const js = jetstream(nats);
  await client.query('BEGIN');
  try {
    const { rows } = await client.query<OutboxRow>(
      `SELECT id, aggregate_type, aggregate_id, sequence, type, payload, correlation_id, occurred_at, trace_context
         FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [batchSize],
    );
    for (const row of rows) {
      const envelope = toEnvelope(service, row);
      await publishEnvelope(js, envelope, row.trace_context);
      logger.debug(eventLogFields(envelope), 'published');
    }
    await markPublished(client, rows.map((row) => row.id));
    await client.query('COMMIT');
    return rows.length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * Deletes the rows published more than `retentionMs` ago, `chunk` rows per statement; answers how many. Unpublished
 * rows are never deleted, however old, and neither is the last event of each aggregate: the next event's sequence
 * is counted on from it (src/events/outbox.ts), so a long-lived aggregate (a product, a customer) never restarts at 1.
 */
export async function purgePublishedEvents(client: Client, retentionMs: number, chunk = PURGE_CHUNK): Promise<number> {
  let deleted = 0;
  for (;;) {
    const { rowCount } = await client.query(
      `DELETE FROM outbox WHERE id IN (
         SELECT o.id FROM outbox o
         WHERE o.published_at < now() - make_interval(secs => $1::double precision / 1000)
           AND EXISTS (SELECT 1 FROM outbox later WHERE later.aggregate_type = o.aggregate_type
                         AND later.aggregate_id = o.aggregate_id AND later.sequence > o.sequence)
         ORDER BY o.published_at LIMIT $2)`,
      [retentionMs, chunk],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < chunk) return deleted;
  }
}

/** The purge of the active relay: at most once a minute, the first time as soon as it leads. */
export class RetentionPurge {
  private lastRunAt = -Infinity;

  constructor(private readonly retentionMs = DEFAULT_RETENTION_MS) {}

  async runIfDue(client: Client): Promise<number> {
    if (Date.now() - this.lastRunAt < PURGE_INTERVAL_MS) return 0;
    this.lastRunAt = Date.now();
    return purgePublishedEvents(client, this.retentionMs);
  }
}

/** A connection of a service's relay. */
export async function connectRelayClient(databaseUrl: string, applicationName: string, onError: (error: Error) => void): Promise<Client> {
  const client = new Client({ connectionString: databaseUrl, application_name: applicationName });
  // A connection the server ends (a restart, an outage) emits 'error' outside any query; unhandled, it would
  // crash the process. The next query fails too, and the relay reconnects.
  client.on('error', onError);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return client;
}

/** Tries to take the relay lock of the client's database, held until the connection ends; false if another has it. */
export async function tryRelayLock(client: Client): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RELAY_LOCK_KEY]);
  return rows[0].locked;
}

export class PollingRelay implements Relay {
  private client?: Client;
  private leader = false;
  private running = false;
  private readonly purge: RetentionPurge;
  private logger: Logger = silentLogger;

  constructor(private readonly options: PollingRelayOptions) {
    this.purge = new RetentionPurge(options.retentionMs);
  }

  /** Connects and tries to become the database's active relay; false while another relay holds the lock. */
  async tryLead(): Promise<boolean> {
    this.client ??= await connectRelayClient(this.options.databaseUrl, `outbox-relay-${this.options.service}`, () => {
      this.leader = false;
    });
    if (!this.leader) this.leader = await tryRelayLock(this.client);
    return this.leader;
  }

  /**
   * Publishes the oldest unpublished rows, up to one batch (see publishOutboxBatch), and answers how many. Only
   * the active relay may call it.
   */
  async publishBatch(): Promise<number> {
    if (!this.leader || !this.client) throw new Error(`the ${this.options.service} relay is not the active one`);
    return publishOutboxBatch(this.client, this.options.nats, this.options.service, this.options.batchSize ?? 100, this.logger);
  }

  /**
   * Runs until stop(): waits to lead, publishes batch after batch, and polls every `idleMs` when the outbox is
   * empty. A failure (NATS or PostgreSQL away) drops the connection, waits and starts over: the rows not marked
   * are published again.
   */
  async run({ idleMs = 200, retryMs = 1_000, logger = silentLogger }: RelayRunOptions = {}): Promise<void> {
    this.logger = logger.child({ component: 'relay', outbox: this.options.service, mode: 'polling' });
    this.running = true;
    while (this.running) {
      try {
        if (!(await this.tryLead())) {
          await sleep(retryMs);
          continue;
        }
        const purged = await this.purge.runIfDue(this.client!);
        if (purged > 0) this.logger.info({ purged }, `purged ${purged} published events`);
        if ((await this.publishBatch()) === 0) await sleep(idleMs);
      } catch (error) {
        this.logger.warn({ err: error }, `relaying failed; retrying in ${retryMs} ms`);
        await this.close();
        await sleep(retryMs);
      }
    }
  }

  stop(): void {
    this.running = false;
  }

  /** Closes the connection, which also gives up the lock. */
  async close(): Promise<void> {
    this.leader = false;
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
