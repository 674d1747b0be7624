// The event path of a round, measured after it from the databases, all on the one PostgreSQL cluster's clock (the
// service databases and the query database are databases of the same cluster):
//
//   commit of the event       the COMMIT of the transaction that wrote the outbox row (commit-log.ts)
//   outbox.published_at       now() of the relay's UPDATE once JetStream stored the event; in WAL mode after the
//                             transaction's events were published; in the catch-up batch (and polling mode) the
//                             START of the batch's transaction, before it publishes
//   commit in the views       the COMMIT of the projector's transaction that recorded the event in the query
//                             database's inbox (consumer `query-<service>`) and changed the views with it
//
// The columns the system records for the two ends, outbox.occurred_at and inbox.applied_at, are now(): the START of
// their transactions. The figures say how far each is from its commit (writer / projector transaction), and the
// event path falls back on them if the benchmark's slots cannot be created (commit-log.ts).
import { Client } from 'pg';
import type { NatsConnection } from '@nats-io/nats-core';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../../src/config';
import { consumerLag } from '../../src/events/consumer';
import { connectNats } from '../../src/events/nats-connection';
import { PROJECTOR_CONSUMERS, projectorConsumerName } from '../../src/query/projector';
import { percentile, sleep } from './closed-loop';
import { CommitLog, INBOX_ROWS, OUTBOX_ROWS } from './commit-log';

type Quantiles = { p50: number; p99: number };

export interface EventPathResult {
  /** `commit`: from the commit logs; `transaction start`: occurred_at and applied_at (no commit log). */
  timestamps: 'commit' | 'transaction start';
  /** Events written in the round's window, in all four outboxes. */
  events: number;
  /** Of those, applied to the query views (an inbox row, not dead-lettered) when measured. */
  applied: number;
  /** Events per order completed in the round. */
  perOrder: number;
  /** Events the relays published (published_at) within the round's window, per second of it. */
  relayedPerSecond: number;
  /** The event's commit → the projector's commit of it in the views. */
  commitToViewMs: Quantiles & { p95: number; max: number };
  /** The event's commit → published_at: the relay's share. */
  commitToPublishedMs: Quantiles;
  /** occurred_at → the event's commit: how far the recorded time is from the commit (commit logs only). */
  writerTransactionMs?: Quantiles;
  /** applied_at → the projector's commit (commit logs only). */
  projectorTransactionMs?: Quantiles;
  /**
   * Per service. A service whose transactions wait on a row lock (payments: every bench order is for the same
   * customer; inventory: three products) shows it in its writer transactions.
   */
  byService: Record<ServiceName, { events: number; commitToViewMs: Quantiles; commitToPublishedMs: Quantiles; writerTransactionMs?: Quantiles }>;
  /** Whether every outbox was published and the projector had applied everything before this was read. */
  settled: boolean;
}

/** An event written in the round, with its times (epoch ms). */
interface WrittenEvent {
  service: ServiceName;
  id: string;
  occurred: number;
  published: number | null;
}

/** Connections to the service databases, the query database and NATS, to read the event path and the backlogs. */
export class EventProbe {
  private commitLogs?: { services: Record<ServiceName, CommitLog>; query: CommitLog };

  private constructor(
    private readonly services: Record<ServiceName, Client>,
    private readonly query: Client,
    private readonly nats: NatsConnection,
    private readonly warn: (line: string) => void,
  ) {}

  static async connect(databaseUrls: DatabaseUrls, queryDatabaseUrl: string, natsServers: string[], warn: (line: string) => void): Promise<EventProbe> {
    const connect = async (url: string) => {
      const client = new Client({ connectionString: url, application_name: 'bench-event-probe' });
      client.on('error', () => {}); // a connection ended by the server fails the next query, which is reported
      await client.connect();
      return client;
    };
    const services = Object.fromEntries(await Promise.all(SERVICES.map(async (service) => [service, await connect(databaseUrls[service])]))) as Record<ServiceName, Client>;
    return new EventProbe(services, await connect(queryDatabaseUrl), await connectNats(natsServers, 'bench-event-probe'), warn);
  }

  /** The cluster's clock (every timestamp compared here is on it). */
  async now(): Promise<Date> {
    const { rows } = await this.query.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    return rows[0].now;
  }

  /** Opens the commit logs (all or none), then answers the round's start on the cluster's clock. */
  async beginRound(): Promise<Date> {
    const opened = await Promise.all([...SERVICES.map((service) => CommitLog.open(this.services[service], OUTBOX_ROWS, this.warn)), CommitLog.open(this.query, INBOX_ROWS, this.warn)]);
    const logs = opened.filter((log): log is CommitLog => log !== undefined);
    if (logs.length === opened.length) {
      this.commitLogs = { services: Object.fromEntries(SERVICES.map((service, i) => [service, logs[i]])) as Record<ServiceName, CommitLog>, query: logs[SERVICES.length] };
    } else await Promise.all(logs.map((log) => log.close()));
    return this.now();
  }

  /** Drops the commit logs of the round, if any. */
  async endRound(): Promise<void> {
    const logs = this.commitLogs;
    this.commitLogs = undefined;
    if (logs) await Promise.all([...Object.values(logs.services), logs.query].map((log) => log.close()));
  }

  /** Unpublished outbox rows per service. */
  async backlog(): Promise<Record<ServiceName, number>> {
    return this.perService('SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL', []);
  }

  /** Events on the streams the projector has not applied yet. */
  async viewsPending(): Promise<number> {
    const lags = await Promise.all(PROJECTOR_CONSUMERS.map(({ stream, name }) => consumerLag(this.nats, stream, name)));
    return lags.reduce((sum, lag) => sum + lag, 0);
  }

  /** Waits (a while, not forever) until every outbox is published and the views have applied it all; false if not. */
  async settle(timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (total(await this.backlog()) === 0 && (await this.viewsPending()) === 0) return true;
      await sleep(100);
    }
    return false;
  }

  /**
   * The event path of the events written in [from, to) on the cluster's clock (transactions started then), once they
   * are applied (settle first), and the round's commit logs dropped. `orders`: those completed, for events per order.
   */
  async measure(from: Date, to: Date, orders: number, settled: boolean): Promise<EventPathResult> {
    try {
      const written = (await Promise.all(SERVICES.map((service) => this.written(service, from, to)))).flat();
      const appliedAt = await this.appliedSince(from);
      const logs = this.commitLogs;
      const committed = logs ? await readAll([...Object.values(logs.services)]) : undefined;
      const viewCommitted = logs ? await logs.query.read() : undefined;
      const relayed = total(await this.perService('SELECT count(*)::int AS n FROM outbox WHERE published_at >= $1 AND published_at < $2', [from, to]));
      return {
        timestamps: logs ? 'commit' : 'transaction start',
        events: written.length,
        perOrder: orders > 0 ? Number((written.length / orders).toFixed(1)) : 0,
        relayedPerSecond: Number((relayed / ((to.getTime() - from.getTime()) / 1000)).toFixed(1)),
        settled,
        ...paths(written, appliedAt, committed, viewCommitted),
      };
    } finally {
      await this.endRound();
    }
  }

  /** The earliest published_at at or after `from`, over every outbox (epoch ms); null if none. */
  async firstPublishedSince(from: Date): Promise<number | null> {
    const firsts = await this.perService('SELECT coalesce((extract(epoch FROM min(published_at)) * 1000)::float8, -1) AS n FROM outbox WHERE published_at >= $1', [from]);
    const found = Object.values(firsts).filter((at) => at >= 0);
    return found.length > 0 ? Math.min(...found) : null;
  }

  /** The earliest applied_at of the projector at or after `from` (epoch ms); null if none. */
  async firstAppliedSince(from: Date): Promise<number | null> {
    const { rows } = await this.query.query<{ at: number | null }>(
      'SELECT (extract(epoch FROM min(applied_at)) * 1000)::float8 AS at FROM inbox WHERE consumer = ANY($1) AND applied_at >= $2',
      [PROJECTOR_CONSUMERS.map(({ name }) => name), from],
    );
    return rows[0].at;
  }

  async close(): Promise<void> {
    await this.endRound().catch(() => {});
    await Promise.all([...Object.values(this.services), this.query].map((client) => client.end().catch(() => {})));
    await this.nats.close().catch(() => {});
  }

  /** One number per service database (the query's column `n`). */
  private async perService(sql: string, params: unknown[]): Promise<Record<ServiceName, number>> {
    const counts = await Promise.all(SERVICES.map(async (service) => [service, (await this.services[service].query<{ n: number }>(sql, params)).rows[0].n] as const));
    return Object.fromEntries(counts) as Record<ServiceName, number>;
  }

  private async written(service: ServiceName, from: Date, to: Date): Promise<WrittenEvent[]> {
    const { rows } = await this.services[service].query<{ id: string; occurred: number; published: number | null }>(
      `SELECT id::text AS id, (extract(epoch FROM occurred_at) * 1000)::float8 AS occurred,
              (extract(epoch FROM published_at) * 1000)::float8 AS published
         FROM outbox WHERE occurred_at >= $1 AND occurred_at < $2`,
      [from, to],
    );
    return rows.map((row) => ({ service, ...row }));
  }

  /** When the projector's transaction that applied each event since `from` started, by `<consumer>:<event id>`. */
  private async appliedSince(from: Date): Promise<Map<string, number>> {
    const { rows } = await this.query.query<{ key: string; applied: number }>(
      `SELECT consumer || ':' || event_id::text AS key, (extract(epoch FROM applied_at) * 1000)::float8 AS applied
         FROM inbox WHERE consumer = ANY($1) AND dead_letter IS NULL AND applied_at >= $2`,
      [PROJECTOR_CONSUMERS.map(({ name }) => name), from],
    );
    return new Map(rows.map((row) => [row.key, row.applied]));
  }
}

async function readAll(logs: CommitLog[]): Promise<Map<string, number>> {
  const maps = await Promise.all(logs.map((log) => log.read()));
  return new Map(maps.flatMap((map) => [...map]));
}

/**
 * The latencies of the written events: with the commit logs, from each event's commit to its commit in the views;
 * without, from occurred_at to applied_at.
 */
function paths(
  written: WrittenEvent[],
  appliedAt: Map<string, number>,
  committed: Map<string, number> | undefined,
  viewCommitted: Map<string, number> | undefined,
): Pick<EventPathResult, 'applied' | 'commitToViewMs' | 'commitToPublishedMs' | 'writerTransactionMs' | 'projectorTransactionMs' | 'byService'> {
  const all = new Samples();
  const perService = Object.fromEntries(SERVICES.map((service) => [service, new Samples()])) as Record<ServiceName, Samples>;
  for (const event of written) {
    const key = `${projectorConsumerName(event.service)}:${event.id}`;
    const commit = committed ? committed.get(event.id) : event.occurred;
    const applied = appliedAt.get(key);
    const inView = viewCommitted ? viewCommitted.get(key) : applied;
    for (const samples of [all, perService[event.service]]) {
      samples.events++;
      if (commit === undefined) continue; // not in the commit log: counted, not timed
      if (event.published !== null) samples.toPublished.push(event.published - commit);
      if (inView !== undefined) samples.toView.push(inView - commit);
      if (committed) samples.writer.push(commit - event.occurred);
      if (viewCommitted && inView !== undefined && applied !== undefined) samples.projector.push(inView - applied);
    }
  }
  const withLogs = committed !== undefined;
  return {
    applied: all.toView.length,
    commitToViewMs: { ...quantiles(all.toView), p95: percentile(all.toView, 0.95), max: percentile(all.toView, 1) },
    commitToPublishedMs: quantiles(all.toPublished),
    writerTransactionMs: withLogs ? quantiles(all.writer) : undefined,
    projectorTransactionMs: withLogs ? quantiles(all.projector) : undefined,
    byService: Object.fromEntries(
      SERVICES.map((service) => {
        const s = perService[service];
        return [service, { events: s.events, commitToViewMs: quantiles(s.toView), commitToPublishedMs: quantiles(s.toPublished), writerTransactionMs: withLogs ? quantiles(s.writer) : undefined }];
      }),
    ) as EventPathResult['byService'],
  };
}

class Samples {
  events = 0;
  toView: number[] = [];
  toPublished: number[] = [];
  writer: number[] = [];
  projector: number[] = [];
}

const quantiles = (values: number[]): Quantiles => ({ p50: percentile(values, 0.5), p99: percentile(values, 0.99) });

export function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** The event path of a saga round: its window on the cluster's clock around `run`, then measured once settled. */
export async function withEventPath<T extends { completed: number; eventPath?: EventPathResult }>(probe: EventProbe | undefined, run: () => Promise<T>): Promise<T> {
  if (!probe) return run();
  const from = await probe.beginRound();
  let result: T;
  try {
    result = await run();
  } catch (error) {
    await probe.endRound();
    throw error;
  }
  const to = await probe.now();
  const settled = await probe.settle();
  result.eventPath = await probe.measure(from, to, result.completed, settled);
  return result;
}
