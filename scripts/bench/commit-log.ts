// When each transaction of a round committed, read from PostgreSQL's own log rather than from the columns the system
// records: outbox.occurred_at and inbox.applied_at are now(), the START of their transactions, and the commit can come
// much later (a transaction waiting on a row lock, a busy process between its statements).
//
// Before a round the benchmark creates a logical replication slot of its own in a database, with the test_decoding
// plugin (shipped with PostgreSQL; the cluster already runs with wal_level=logical for the relays). Nothing is read
// from it during the round, so it costs nothing then but the log it keeps. After the round, pg_logical_slot_get_changes
// decodes the round's transactions, each COMMIT with its timestamp ('include-timestamp'), and the slot is dropped.
import type { Client } from 'pg';

/** The rows whose commit time is wanted: a table, and the key of a row from test_decoding's text of its INSERT. */
export interface CommitLogTarget {
  table: 'outbox' | 'inbox';
  /** The key of an inserted row (the outbox's event id; the inbox's `<consumer>:<event id>`), undefined to skip it. */
  keyOf(insert: string): string | undefined;
}

export const OUTBOX_ROWS: CommitLogTarget = {
  table: 'outbox',
  keyOf: (insert) => /\bid\[uuid\]:'([^']+)'/.exec(insert)?.[1],
};

export const INBOX_ROWS: CommitLogTarget = {
  table: 'inbox',
  keyOf: (insert) => {
    const consumer = /\bconsumer\[text\]:'([^']+)'/.exec(insert)?.[1];
    const eventId = /\bevent_id\[uuid\]:'([^']+)'/.exec(insert)?.[1];
    return consumer && eventId ? `${consumer}:${eventId}` : undefined;
  },
};

export class CommitLog {
  private constructor(
    private readonly client: Client,
    private readonly slot: string,
    private readonly target: CommitLogTarget,
  ) {}

  /** Opens a slot in the client's database; undefined (and why, to `warn`) if the cluster cannot. */
  static async open(client: Client, target: CommitLogTarget, warn: (line: string) => void): Promise<CommitLog | undefined> {
    const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name');
    const slot = `bench_commits_${rows[0].name}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
    try {
      // A slot left by an interrupted round would hold the log from then on.
      await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      await client.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
      return new CommitLog(client, slot, target);
    } catch (error) {
      warn(`no commit times from ${rows[0].name} (${error instanceof Error ? error.message : String(error)}): the event path falls back on transaction starts`);
      return undefined;
    }
  }

  /** The commit time (epoch ms) of every row inserted into the target table since the slot was opened, by key. */
  async read(): Promise<Map<string, number>> {
    await this.client.query(`SET TimeZone TO 'UTC'`);
    const { rows } = await this.client.query<{ data: string }>(
      `SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-timestamp', 'on', 'skip-empty-xacts', 'on')`,
      [this.slot],
    );
    const committed = new Map<string, number>();
    const prefix = `table public.${this.target.table}: INSERT: `;
    let pending: string[] = [];
    for (const { data } of rows) {
      if (data.startsWith('BEGIN')) pending = [];
      else if (data.startsWith(prefix)) {
        const key = this.target.keyOf(data.slice(prefix.length));
        if (key) pending.push(key);
      } else if (data.startsWith('COMMIT')) {
        const at = commitTime(data);
        if (at !== undefined) for (const key of pending) committed.set(key, at);
        pending = [];
      }
    }
    return committed;
  }

  async close(): Promise<void> {
    await this.client.query('SELECT pg_drop_replication_slot($1)', [this.slot]).catch(() => {});
  }
}

/** `COMMIT 1234 (at 2026-12-03 16:10:00.123456+00)` → epoch ms (to the millisecond, as the other timestamps). */
export function commitTime(line: string): number | undefined {
  const match = /\(at (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2})(?::?(\d{2}))?\)/.exec(line);
  if (!match) return undefined;
  const [, date, time, fraction = '', hours, minutes = '00'] = match;
  const millis = (fraction.slice(1) + '000').slice(0, 3);
  const at = Date.parse(`${date}T${time}.${millis}${hours}:${minutes}`);
  return Number.isNaN(at) ? undefined : at;
}
