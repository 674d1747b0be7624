// What an operator (GET /health, the CLI) wants to know about a service's outbox: how many events wait to be
// published and for how long, how many published rows are kept until the purge, and, in WAL mode, the state of
// the database's replication slot and how much log it holds back.
import { Client } from 'pg';
import { slotNameOf } from './wal-relay';

export interface OutboxStatus {
  /** Rows not published yet. */
  backlog: number;
  /** The age of the oldest of them; null when there is none. */
  oldestUnpublishedAgeMs: number | null;
  /** Published rows still kept (the purge deletes them after the retention period). */
  published: number;
  /** The WAL relay's slot of this database; null if there is none (polling mode, or not started yet). */
  slot: null | {
    name: string;
    /** A relay streams from it right now. */
    active: boolean;
    /** reserved, extended, unreserved (about to be lost) or lost (invalidated: the relay will recreate it). */
    walStatus: string | null;
    /** The log written since the position the relay last confirmed, in bytes. */
    lagBytes: number | null;
  };
}

/** Runs one SQL statement with positional parameters and answers its rows (a pg Client, or a Prisma client). */
export type RunQuery = <T>(sql: string, params: unknown[]) => Promise<T[]>;

/** The status of the outbox of the database at `databaseUrl`, on a connection of its own. */
export async function outboxStatus(databaseUrl: string): Promise<OutboxStatus> {
  const client = new Client({ connectionString: databaseUrl, application_name: 'outbox-status' });
  // A connection the server ends emits 'error' outside any query; unhandled, it would crash the process. The query
  // in flight fails as well, and that is what the caller sees.
  client.on('error', () => {});
  await client.connect();
  try {
    return await outboxStatusOf(async (sql, params) => (await client.query(sql, params)).rows);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The status of the outbox of the database `query` runs on (a service's read API runs it on its own pool). */
export async function outboxStatusOf(query: RunQuery): Promise<OutboxStatus> {
  // Every column as a type both pg and Prisma read (Prisma's driver adapter cannot read `name`).
  const [outbox] = await query<{ backlog: string; published: string; oldest_ms: number | null }>(
    `SELECT count(*) FILTER (WHERE published_at IS NULL)::text AS backlog,
            count(*) FILTER (WHERE published_at IS NOT NULL)::text AS published,
            (EXTRACT(EPOCH FROM now() - min(occurred_at) FILTER (WHERE published_at IS NULL)) * 1000)::float8 AS oldest_ms
       FROM outbox`,
    [],
  );
  const [{ name: database }] = await query<{ name: string }>('SELECT current_database()::text AS name', []);
  const [found] = await query<{ name: string; active: boolean; wal_status: string | null; lag: string | null }>(
    `SELECT slot_name::text AS name, active, wal_status::text AS wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
       FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`,
    [slotNameOf(database)],
  );
  return {
    backlog: Number(outbox.backlog),
    oldestUnpublishedAgeMs: outbox.oldest_ms === null ? null : Math.max(0, Math.round(outbox.oldest_ms)),
    published: Number(outbox.published),
    slot: found ? { name: found.name, active: found.active, walStatus: found.wal_status, lagBytes: found.lag === null ? null : Number(found.lag) } : null,
  };
}
