// The relays' drain rate: how fast they publish a backlog, rather than the rate orders happen to offer them.
//
// The stack does not hand out its relays, so they are paused from outside, the way the system itself fails over:
// one relay per database is active, the one holding the relay's advisory lock (src/events/relay.ts), and a relay
// that loses its connection retries every second and stands by while another holds the lock. The benchmark ends
// the relays' connections (pg_terminate_backend, by their application names) and takes the lock itself; orders
// then run with their events piling up in the outboxes; releasing the lock lets each relay lead again, catch up on
// the unpublished rows (publishOutboxBatch, 100 rows a transaction) and then stream from its slot.
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../../src/config';
import { tryRelayLock } from '../../src/events/relay';
import type { RoundResult } from './closed-loop';
import { sleep } from './closed-loop';
import { total, type EventProbe } from './event-path';

export interface DrainResult {
  /** The orders placed while the relays were paused. */
  orders: RoundResult;
  /** Unpublished events when the relays were let go, per service. */
  backlog: Record<ServiceName, number>;
  /** From the release of the lock to the first event published (the relays' one-second retry, then their catch-up). */
  resumeMs: number;
  /** From the first event published to the last one (outboxes empty), and the backlog per second of it. */
  relaySeconds: number;
  relayedPerSecond: number;
  /** From the first event the projector applied to the views having applied them all, and per second. */
  viewsSeconds: number;
  appliedPerSecond: number;
  /** Whether the outboxes and the views were empty again before the timeout. */
  drained: boolean;
}

/** The application names the relays' connections carry (src/events/wal-relay.ts; the polling relay has the first). */
const relayApplicationNames = (service: ServiceName) => [`outbox-relay-${service}`, `outbox-relay-${service}-wal`];

interface PausedRelays {
  /** Releases the relays (they lead again within their retry interval); answers the cluster's clock at that moment. */
  resume(): Promise<Date>;
}

/** Pauses every service's relay: ends its connections and holds its lock until resume(). */
export async function pauseRelays(databaseUrls: DatabaseUrls): Promise<PausedRelays> {
  const holders: Client[] = [];
  const release = () => Promise.all(holders.map((client) => client.end().catch(() => {})));
  try {
    for (const service of SERVICES) holders.push(await holdRelayLock(service, databaseUrls[service]));
    // A relay that lost its connection mid-stream notices on its next query; after its retry interval (1 s) it
    // must be standing by: no replication slot may be streaming any more.
    await sleep(1_500);
    for (const [i, service] of SERVICES.entries()) {
      const { rows } = await holders[i].query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE database = current_database()');
      if (rows.some((row) => row.active)) throw new Error(`the ${service} relay still streams from its slot after it was paused`);
    }
  } catch (error) {
    await release();
    throw error;
  }
  return {
    async resume() {
      const { rows } = await holders[0].query<{ now: Date }>('SELECT clock_timestamp() AS now');
      await release(); // the session-level locks go with the connections
      return rows[0].now;
    },
  };
}

/** Ends the relay's connections to one database and takes its lock before the relay is back (it retries after 1 s). */
async function holdRelayLock(service: ServiceName, databaseUrl: string): Promise<Client> {
  const client = new Client({ connectionString: databaseUrl, application_name: 'bench-relay-pause' });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = ANY($1) AND pid <> pg_backend_pid()`,
      [relayApplicationNames(service)],
    );
    // The ended backend gives up the lock as it exits: a few milliseconds.
    const deadline = Date.now() + 5_000;
    while (!(await tryRelayLock(client))) {
      if (Date.now() > deadline) throw new Error(`could not take the ${service} relay's lock`);
      await sleep(5);
    }
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
}

/**
 * Pauses the relays, runs `placeOrders` (the outboxes fill up), lets the relays go and times how fast they publish
 * the backlog and the projector applies it. Start and end are both observed: the first publish/apply from the
 * databases' timestamps, the end by polling every 50 ms.
 */
export async function measureDrain(
  probe: EventProbe,
  databaseUrls: DatabaseUrls,
  placeOrders: () => Promise<RoundResult>,
  progress: (line: string) => void,
  timeoutMs = 120_000,
): Promise<DrainResult> {
  await probe.settle();
  const paused = await pauseRelays(databaseUrls);
  let orders: RoundResult;
  try {
    orders = await placeOrders();
  } catch (error) {
    await paused.resume();
    throw error;
  }
  const backlog = await probe.backlog();
  progress(`relay drain: ${total(backlog)} events waiting; letting the relays go`);
  const releasedAt = await paused.resume();
  const deadline = Date.now() + timeoutMs;
  let relayedAt: number | undefined;
  let appliedAt: number | undefined;
  while (Date.now() < deadline && appliedAt === undefined) {
    await sleep(50);
    if (relayedAt === undefined && total(await probe.backlog()) === 0) relayedAt = Date.now();
    if (relayedAt !== undefined && (await probe.viewsPending()) === 0) appliedAt = Date.now();
  }
  const firstPublished = await probe.firstPublishedSince(releasedAt);
  const firstApplied = await probe.firstAppliedSince(releasedAt);
  const events = total(backlog);
  const span = (from: number | null, to: number | undefined) => (from === null || to === undefined ? 0 : Math.max(0.001, (to - from) / 1000));
  const relaySeconds = span(firstPublished, relayedAt);
  const viewsSeconds = span(firstApplied, appliedAt);
  return {
    orders,
    backlog,
    resumeMs: firstPublished === null ? 0 : Math.round(firstPublished - releasedAt.getTime()),
    relaySeconds: Number(relaySeconds.toFixed(2)),
    relayedPerSecond: relaySeconds > 0 ? Math.round(events / relaySeconds) : 0,
    viewsSeconds: Number(viewsSeconds.toFixed(2)),
    appliedPerSecond: viewsSeconds > 0 ? Math.round(events / viewsSeconds) : 0,
    drained: appliedAt !== undefined,
  };
}
