// What the chaos run prints when it fails, so that a failure seen once (in CI, say) can be understood from its
// output alone: the event path's state (each outbox's backlog and slot, each stream, each consumer), PostgreSQL's
// side of the relays (their connections, what they wait for, who holds the relay locks and the slots), and the
// warnings and errors each process logged, grouped. It comes last in the failure message: the end of a long output
// is the part that is always shown.
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import type { NatsConnection } from '@nats-io/nats-core';
import type { DatabaseUrls } from '../../src/config';
import { eventsStatus, formatEventsStatus } from '../../src/events/status-report';

export interface DiagnosticsSources {
  databaseUrls: DatabaseUrls;
  /** Any database of the cluster: the server-wide views (connections, locks, slots) are read through it. */
  clusterUrl: string;
  nats: NatsConnection;
  /** The processes' log (ManagedProcess.logFile): `[name] <JSON line>` for stdout, `[name!] <text>` for stderr. */
  logFile: string;
}

export async function diagnose(sources: DiagnosticsSources): Promise<string> {
  const sections = await Promise.all([
    section('event path', async () => formatEventsStatus(await eventsStatus({ databaseUrls: sources.databaseUrls, nats: sources.nats }))),
    section('PostgreSQL: relay connections, relay locks, slots', () => relayConnections(sources.clusterUrl)),
    section('warnings and errors the processes logged (grouped; the latest last)', async () => summarizeLog(readFileSync(sources.logFile, 'utf8'))),
  ]);
  return ['--- diagnostics ---', ...sections].join('\n');
}

async function section(title: string, read: () => Promise<string>): Promise<string> {
  try {
    return `${title}:\n${await read()}`;
  } catch (error) {
    return `${title}: could not be read (${error instanceof Error ? error.message : String(error)})`;
  }
}

async function relayConnections(clusterUrl: string): Promise<string> {
  const client = new Client({ connectionString: clusterUrl, application_name: 'chaos-diagnostics' });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows: connections } = await client.query(
      `SELECT pid, datname AS database, application_name AS application, backend_type, state, wait_event_type, wait_event,
              round(extract(epoch FROM now() - backend_start)) AS age_s, round(extract(epoch FROM now() - xact_start)) AS xact_s, left(query, 60) AS query
         FROM pg_stat_activity
        WHERE application_name LIKE 'outbox-relay%' OR backend_type = 'walsender'
        ORDER BY application_name, pid`,
    );
    const { rows: locks } = await client.query(
      `SELECT l.pid, d.datname AS database, l.objid AS key, a.application_name AS application
         FROM pg_locks l JOIN pg_database d ON d.oid = l.database LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted ORDER BY d.datname`,
    );
    const { rows: slots } = await client.query(
      `SELECT slot_name, active, active_pid, wal_status, confirmed_flush_lsn::text, pg_current_wal_lsn()::text AS current_lsn FROM pg_replication_slots ORDER BY slot_name`,
    );
    return [...lines('connections', connections), ...lines('advisory locks held', locks), ...lines('slots', slots)].join('\n');
  } finally {
    await client.end().catch(() => {});
  }
}

/** Enough of stderr for a crash's message and stack (Node prints about twenty lines for an unhandled error). */
const STDERR_LINES = 30;

function lines(title: string, rows: Record<string, unknown>[]): string[] {
  return [`  ${title}: ${rows.length === 0 ? 'none' : ''}`.trimEnd(), ...rows.map((row) => `    ${JSON.stringify(row)}`)];
}

/**
 * The log's warnings and errors, one line per process, component and message (with how many, when first and last,
 * and the last error's message), the latest `limit` of them; and the last lines the processes wrote to stderr.
 */
export function summarizeLog(log: string, limit = 30): string {
  const groups = new Map<string, { count: number; first: string; last: string; error: string }>();
  const stderr: string[] = [];
  for (const line of log.split('\n')) {
    const match = /^\[([\w-]+)(!?)\] (.*)$/.exec(line);
    if (!match) continue;
    const [, process, isStderr, text] = match;
    if (isStderr) {
      if (text.trim()) stderr.push(`[${process}] ${text.slice(0, 200)}`);
      continue;
    }
    let entry: Record<string, any>;
    try {
      entry = JSON.parse(text);
    } catch {
      continue;
    }
    if (entry.level !== 'warn' && entry.level !== 'error' && entry.level !== 'fatal') continue;
    const where = [entry.component, entry.outbox, entry.consumer].filter(Boolean).join('/');
    const key = `${process} ${entry.level} ${where}: ${String(entry.msg).slice(0, 100)}`;
    const time = String(entry.time ?? '').slice(11, 23);
    // pino's serialized error is `err`; the Temporal SDK's log lines carry theirs as `error`.
    const error = String(entry.err?.message ?? entry.error?.message ?? entry.error ?? '').slice(0, 160);
    const group = groups.get(key);
    if (group) Object.assign(group, { count: group.count + 1, last: time, error: error || group.error });
    else groups.set(key, { count: 1, first: time, last: time, error });
  }
  const grouped = [...groups.entries()]
    .sort(([, a], [, b]) => a.last.localeCompare(b.last))
    .slice(-limit)
    .map(([key, { count, first, last, error }]) => `  ${first}–${last} ×${count} ${key}${error ? ` (${error})` : ''}`);
  return [...(grouped.length > 0 ? grouped : ['  none']), ...(stderr.length > 0 ? ['  stderr, the last lines:', ...stderr.slice(-STDERR_LINES).map((line) => `    ${line}`)] : [])].join('\n');
}
