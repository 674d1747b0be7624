// How each service opens its database: one pg pool per service client, sized together with the worker that
// uses it. A worker runs at most as many activities at once as its pool has connections (src/worker/workers.ts),
// so a burst queues in Temporal, where it costs nothing, instead of inside the pool, where a waiting activity
// would run into its start-to-close timeout and come back as a retry storm.
import type { PoolConfig } from 'pg';

/** Connections per service database, and so activities at once per service worker (DB_POOL_SIZE). */
export const DEFAULT_POOL_SIZE = 10;

/** Waiting longer than this for a free connection fails the attempt (a transient fault, retried with backoff). */
const CONNECTION_TIMEOUT_MS = 5_000;

export function poolConfig(connectionString: string, poolSize = DEFAULT_POOL_SIZE): PoolConfig {
  return { connectionString, max: poolSize, connectionTimeoutMillis: CONNECTION_TIMEOUT_MS };
}
