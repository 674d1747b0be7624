// The event consumers' database access: a plain pg pool with the few raw-SQL calls they make, under the names
// Prisma's client gives them ($transaction, $executeRaw, $executeRawUnsafe, $queryRaw), so that the inbox
// (consumer.ts), the projections (src/query) and the order stream (src/activities/orders) run on either.
//
// Why not Prisma's client here: a consumer applies every event of every order in a transaction of two to five
// statements, and Prisma's interactive transaction costs about 1.2 ms of the process's CPU more than the same
// statements on pg (measured: 1.4 against 0.3 ms per event), most of it outside the database: its request
// pipeline, tracing hooks and query compiler, run for each statement. With ten events per order applied by the
// projector and six more by the orders service, some 18 ms per order: a tenth of what an order costs the Node
// process that runs everything under `npm start` (docs/performance.md).
// The services' activities keep Prisma: there the model API carries the schema's types and relations.
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { poolConfig } from '../activities/pool';
import type { Logger } from '../observability/logging';

/** Turns a tagged template into a parameterised statement: every value becomes `$n`, never text in the SQL. */
function statement(strings: TemplateStringsArray, values: unknown[]): { text: string; values: unknown[] } {
  return { text: strings.reduce((sql, part, i) => `${sql}$${i}${part}`), values };
}

/** One transaction's connection. */
export class SqlTransaction {
  constructor(private readonly client: PoolClient) {}

  /** Runs a statement; answers the rows it changed. */
  async $executeRaw(strings: TemplateStringsArray, ...values: unknown[]): Promise<number> {
    return (await this.client.query(statement(strings, values))).rowCount ?? 0;
  }

  /** The same, for SQL assembled by the caller from trusted parts, with `$n` placeholders for the values. */
  async $executeRawUnsafe(text: string, ...values: unknown[]): Promise<number> {
    return (await this.client.query(text, values)).rowCount ?? 0;
  }

  /** Runs a query; answers its rows. */
  async $queryRaw<T = unknown>(strings: TemplateStringsArray, ...values: unknown[]): Promise<T> {
    return (await this.client.query(statement(strings, values))).rows as T;
  }
}

export class SqlPool {
  private readonly pool: Pool;

  constructor(config: PoolConfig, onIdleError: (error: Error) => void = () => {}) {
    this.pool = new Pool(config);
    // A connection that breaks while idle in the pool (PostgreSQL restarted, the backend terminated) is dropped
    // by the pool and reported here; unheard, the error would end the process. The next checkout opens a new one.
    this.pool.on('error', onIdleError);
  }

  /**
   * Runs `work` in one transaction: committed if it resolves, rolled back if it throws (the error is rethrown).
   * A connection whose rollback fails too is broken, and is discarded instead of going back to the pool.
   */
  async $transaction<R>(work: (tx: SqlTransaction) => Promise<R>): Promise<R> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // The connection may also end between two statements, or right after the one that failed (a terminated
    // backend): pg then emits an error on the client, which the pool listens to only while it is idle.
    const onBroken = (error: Error) => {
      broken ??= error;
    };
    client.on('error', onBroken);
    try {
      await client.query('BEGIN');
      const result = await work(new SqlTransaction(client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (!broken) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
      }
      throw error;
    } finally {
      client.off('error', onBroken);
      client.release(broken);
    }
  }

  /** Closes every connection. */
  async end(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * A consumer side's pool: one connection per durable consumer, each applying one event at a time; a connection that
 * broke while idle is logged as a warning. `database` names it in that line.
 */
export function connectConsumerPool(url: string, consumers: number, database: string, logger?: Logger): SqlPool {
  return new SqlPool(poolConfig(url, consumers), (error) =>
    logger?.warn({ err: error }, `a connection to the ${database} database broke while idle; the next event opens a new one`),
  );
}
