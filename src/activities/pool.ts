// How each service opens its database: one pg pool per service client, sized together with the worker that
// uses it. A worker runs at most as many activities at once as its pool has connections (src/worker/workers.ts),
// so a burst queues in Temporal, where it costs nothing, instead of inside the pool, where a waiting activity
// would run into its start-to-close timeout and come back as a retry storm. The pools (the services' Prisma clients,
// the query side's, the consumers' SqlPool) keep their connections whole through a PostgreSQL restart with two
// repairs below: PooledClient and PoolAdapter (docs/reliability.md tells how the chaos run found them).
import { PrismaPg } from '@prisma/adapter-pg';
import { Client, type ClientConfig, type PoolConfig } from 'pg';

/** Connections per service database, and so activities at once per service worker (DB_POOL_SIZE). */
export const DEFAULT_POOL_SIZE = 10;

/** Waiting longer than this for a free connection fails the attempt (a transient fault, retried with backoff). */
const CONNECTION_TIMEOUT_MS = 5_000;

export function poolConfig(connectionString: string, poolSize = DEFAULT_POOL_SIZE): PoolConfig {
  return { connectionString, max: poolSize, connectionTimeoutMillis: CONNECTION_TIMEOUT_MS, Client: PooledClient };
}

/**
 * The pools' connection: a pg client that always has a listener for its 'error' event.
 *
 * pg-pool listens to a client's errors only while it is idle; whoever checks it out must listen while holding it.
 * Yet a query run by `pool.query` (Prisma's adapter runs every statement outside a transaction that way) releases
 * its client in the query's callback, while pg is still parsing that client's socket data: the pool hands the
 * client to the next checkout waiting in line at once, and that holder can add its listener only once its promise
 * resolves, after the data is parsed. If the same read also brought PostgreSQL's FATAL "terminating connection"
 * (a shutdown, pg_terminate_backend), the client emits it in between, with nobody listening, and Node ends the
 * process. The chaos run's PostgreSQL restart crashed the worker so.
 *
 * Ignoring the error here loses nothing: pg marks the client unqueryable, so the holder's next statement fails
 * (a transient fault, retried) and the pool discards the client when it comes back.
 */
class PooledClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => {});
  }
}

type PgAdapter = Awaited<ReturnType<PrismaPg['connect']>>;
type PgTransaction = Awaited<ReturnType<PgAdapter['startTransaction']>>;

/** The statements with which Prisma ends an interactive transaction on pg. */
const ENDING_STATEMENTS = new Set(['COMMIT', 'ROLLBACK']);

/**
 * Prisma's pg adapter on a pool of poolConfig's, with one repair.
 *
 * Prisma 6.19 ends an interactive transaction by sending COMMIT or ROLLBACK as a statement, and only after it calls
 * the adapter's commit() or rollback(), which give the connection back to the pool. When that statement fails
 * (PostgreSQL restarted, the backend terminated, the connection cut), Prisma never calls them: the connection stays
 * checked out for good. Each such failure takes one connection from the pool, until every transaction and query of
 * the service waits out the connection timeout, and stays so until the process restarts. Here a failed COMMIT or
 * ROLLBACK gives the connection back at once (the pool discards it, as pg marks it unqueryable), and the
 * commit() or rollback() that may follow does nothing.
 */
export class PoolAdapter extends PrismaPg {
  constructor(url: string, poolSize?: number) {
    super(poolConfig(url, poolSize));
  }

  override async connect(): Promise<PgAdapter> {
    const adapter = await super.connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => releasedOnFailedEnd(await startTransaction(isolationLevel));
    return adapter;
  }
}

function releasedOnFailedEnd(tx: PgTransaction): PgTransaction {
  let released = false;
  // The adapter's commit() and rollback() send nothing: each only gives the connection back (Prisma sent the SQL).
  const once = (release: () => Promise<void>) => async () => {
    if (released) return;
    released = true;
    await release();
  };
  tx.commit = once(tx.commit.bind(tx));
  tx.rollback = once(tx.rollback.bind(tx));
  const executeRaw = tx.executeRaw.bind(tx);
  tx.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (ENDING_STATEMENTS.has(query.sql)) await tx.rollback();
      throw error;
    }
  };
  return tx;
}
