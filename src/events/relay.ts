// The polling relay: publishes a service's outbox to its JetStream stream, in the order the events were
// written, and marks each row published only after JetStream acknowledged it. A crash anywhere between the
// publish and the mark republishes the row; the broker drops the duplicate (the event id is its Nats-Msg-Id)
// and consumers deduplicate too, so delivery is at least once and nothing is lost.
//
// One relay per database is active at a time: it holds a PostgreSQL advisory lock on its own connection, and a
// second relay waits for it (a standby that takes over when the first one's connection goes).
import { Client } from 'pg';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import type { ServiceName } from '../config';
import type { StoredEvent } from './outbox';
import { subjectOf } from './streams';

/** The advisory lock key of the relay of a database (any constant; one relay per database holds it). */
const RELAY_LOCK_KEY = 7_310_001;

/** An event on the wire: the outbox row, with the service that published it. */
export interface EventEnvelope extends StoredEvent {
  service: ServiceName;
}

interface OutboxRow {
  id: string;
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  type: string;
  payload: Record<string, unknown>;
  correlation_id: string;
  occurred_at: Date;
}

export interface PollingRelayOptions {
  service: ServiceName;
  databaseUrl: string;
  nats: NatsConnection;
  /** Rows published per transaction. */
  batchSize?: number;
}

export class PollingRelay {
  private client?: Client;
  private leader = false;
  private running = false;

  constructor(private readonly options: PollingRelayOptions) {}

  /** Connects and tries to become the database's active relay; false while another relay holds the lock. */
  async tryLead(): Promise<boolean> {
    if (!this.client) {
      const client = new Client({ connectionString: this.options.databaseUrl, application_name: `outbox-relay-${this.options.service}` });
      // A connection the server ends (a restart, an outage) emits 'error' outside any query; unhandled, it would
      // crash the process. The next query fails too, and run() reconnects.
      client.on('error', () => {
        this.leader = false;
      });
      this.client = client;
      await client.connect();
    }
    if (!this.leader) {
      const { rows } = await this.client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RELAY_LOCK_KEY]);
      this.leader = rows[0].locked;
    }
    return this.leader;
  }

  /**
   * Publishes the oldest unpublished rows, up to one batch, in position order, each awaited before the next (so
   * per-aggregate order holds on the stream), then marks them published in the same transaction that locked
   * them. Answers how many were published. Only the active relay may call it.
   */
  async publishBatch(): Promise<number> {
    if (!this.leader || !this.client) throw new Error(`the ${this.options.service} relay is not the active one`);
    const client = this.client;
    const js = jetstream(this.options.nats);
    await client.query('BEGIN');
    try {
      const { rows } = await client.query<OutboxRow>(
        `SELECT id, aggregate_type, aggregate_id, sequence, type, payload, correlation_id, occurred_at
           FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.options.batchSize ?? 100],
      );
      for (const row of rows) {
        const envelope = toEnvelope(this.options.service, row);
        const meta = headers();
        meta.set('Correlation-Id', envelope.correlationId);
        meta.set('Event-Type', envelope.type);
        meta.set('Aggregate', `${envelope.aggregateType}:${envelope.aggregateId}:${envelope.sequence}`);
        await js.publish(subjectOf(this.options.service, envelope.type), JSON.stringify(envelope), { msgID: envelope.id, headers: meta });
      }
      if (rows.length > 0) await client.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])', [rows.map((row) => row.id)]);
      await client.query('COMMIT');
      return rows.length;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  /**
   * Runs until stop(): waits to lead, publishes batch after batch, and polls every `idleMs` when the outbox is
   * empty. A failure (NATS or PostgreSQL away) drops the connection, waits and starts over: the rows not marked
   * are published again.
   */
  async run({ idleMs = 200, retryMs = 1_000, log = (_line: string) => {} } = {}): Promise<void> {
    this.running = true;
    while (this.running) {
      try {
        if (!(await this.tryLead())) {
          await sleep(retryMs);
          continue;
        }
        if ((await this.publishBatch()) === 0) await sleep(idleMs);
      } catch (error) {
        log(`relay ${this.options.service}: ${String(error)}; retrying in ${retryMs} ms`);
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

function toEnvelope(service: ServiceName, row: OutboxRow): EventEnvelope {
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
