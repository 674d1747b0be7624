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

export async function outboxStatus(databaseUrl: string): Promise<OutboxStatus> {
  const client = new Client({ connectionString: databaseUrl, application_name: 'outbox-status' });
  // A connection the server ends emits 'error' outside any query; unhandled, it would crash the process. The query
  // in flight fails as well, and that is what the caller sees.
  client.on('error', () => {});
  await client.connect();
  try {
    const outbox = await client.query<{ backlog: string; published: string; oldest_ms: number | null }>(
      `SELECT count(*) FILTER (WHERE published_at IS NULL) AS backlog,
              count(*) FILTER (WHERE published_at IS NOT NULL) AS published,
              (EXTRACT(EPOCH FROM now() - min(occurred_at) FILTER (WHERE published_at IS NULL)) * 1000)::float8 AS oldest_ms
         FROM outbox`,
    );
    const slot = await client.query<{ name: string; active: boolean; wal_status: string | null; lag: string | null }>(
      `SELECT slot_name AS name, active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
         FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`,
      [slotNameOf((await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0].name)],
    );
    const { backlog, published, oldest_ms } = outbox.rows[0];
    const found = slot.rows[0];
    return {
      backlog: Number(backlog),
      oldestUnpublishedAgeMs: oldest_ms === null ? null : Math.max(0, Math.round(oldest_ms)),
      published: Number(published),
      slot: found ? { name: found.name, active: found.active, walStatus: found.wal_status, lagBytes: found.lag === null ? null : Number(found.lag) } : null,
    };
  } finally {
    await client.end().catch(() => {});
  }
}
