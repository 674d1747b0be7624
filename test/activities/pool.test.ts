// The services' pg pools and Prisma's adapter on them (src/activities/pool.ts), against real PostgreSQL whose
// backends are terminated under them, as a PostgreSQL restart does: no error event left unheard (it ends the
// process), no connection left checked out (the pool runs dry).
import assert from 'node:assert/strict';
import { Pool } from 'pg';
import { connectOrdersDb } from '../../src/activities/orders/db';
import { poolConfig } from '../../src/activities/pool';
import { startHoldingProxy, type HoldingProxy } from '../support/holding-proxy';
import { createServiceDatabases } from '../support/postgres';
import { sql } from '../support/sql';
import { waitUntil } from '../support/wait-until';

describe('service database pools', function () {
  let url: string;
  let proxy: HoldingProxy;

  before(async function () {
    url = (await createServiceDatabases('pools')).orders;
    const target = new URL(url);
    proxy = await startHoldingProxy({ host: target.hostname, port: Number(target.port) });
  });

  after(async function () {
    await proxy?.close();
  });

  // Through a proxy that makes the end of a query and the server's FATAL "terminating connection" arrive in one read:
  // the race a PostgreSQL restart produced in the chaos run, made to happen every time.
  it('survive PostgreSQL ending a connection in the same read as the end of a query, with a checkout waiting for it', async function () {
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    // One connection, so a second user must wait for the first to give it back.
    const pool = new Pool(poolConfig(viaProxy.toString(), 1));
    try {
      const { rows: [{ pid }] } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      proxy.holdNextReady();
      // The way Prisma's adapter runs a statement outside a transaction: the pool releases the client in the
      // query's callback, while pg parses the server's answer.
      const query = pool.query<{ one: number }>('SELECT 1 AS one');
      await proxy.holding;
      // The way a transaction starts (Prisma's, the consumers' SqlPool): a checkout, in line behind the query.
      const checkout = pool.connect();
      assert.equal(pool.waitingCount, 1);
      await sql(url, 'SELECT pg_terminate_backend($1)', [pid]);

      assert.deepEqual((await query).rows, [{ one: 1 }]);
      // The waiting holder got the connection the server had just ended: its first statement fails, and the pool
      // discards the client it gives back.
      const client = await checkout;
      const failure = await client.query('BEGIN').then(() => undefined, (error: Error) => error);
      assert.match(String(failure), /not queryable|terminat/);
      client.release(failure);
      assert.deepEqual((await pool.query<{ two: number }>('SELECT 2 AS two')).rows, [{ two: 2 }]);
      assert.equal(pool.totalCount, 1);
    } finally {
      await pool.end();
    }
  });

  for (const end of ['commit', 'rollback'] as const) {
    it(`give back the connection of a Prisma transaction whose ${end.toUpperCase()} fails because PostgreSQL ended it`, async function () {
      // Kept checked out, the pool's one connection would leave the query after the transaction waiting, and the
      // disconnect after it (which waits for every connection to come back) hanging.
      this.timeout(30_000);
      const db = connectOrdersDb(url, 1);
      try {
        const transaction = db.$transaction(async (tx) => {
          const [{ pid }] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
          await sql(url, 'SELECT pg_terminate_backend($1)', [pid]);
          await waitUntil(async () => (await sql(url, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0, 'the backend to exit');
          if (end === 'rollback') throw new Error('the work failed');
        });
        await assert.rejects(transaction, end === 'rollback' ? /the work failed/ : /not queryable|terminat|closed/i);
        assert.deepEqual(await db.$queryRaw`SELECT 1 AS one`, [{ one: 1 }]);
      } finally {
        await db.$disconnect();
      }
    });
  }
});
