// The API's word for a database that went away under a query: PostgreSQL ending the connection (a shutdown, an
// operator) is a 503 database_unavailable with Retry-After, never a 500. The errors are real ones, from the query
// database's Prisma client on real PostgreSQL: Prisma's client hands some of them over as the driver adapter threw
// them (a DriverAdapterError whose cause carries the SQLSTATE), not wrapped in its own error class, and a chaos run
// saw `POST /orders` answer 500 that way while PostgreSQL was shutting down.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Client } from 'pg';
import { errorHandler, isDatabaseUnavailable } from '../../src/api/errors';
import { silentLogger } from '../../src/observability/logging';
import { connectQueryDb, type QueryDb } from '../../src/query/db';
import { createQueryDatabase } from '../support/postgres';

describe('database errors the API answers 503', function () {
  let url: string;
  let db: QueryDb;

  before(async function () {
    url = await createQueryDatabase('dberrors');
    db = connectQueryDb(url);
    // Connected, and Prisma's query compiler loaded, before any test holds a lock.
    await db.customerView.findMany({ take: 1 });
  });

  after(async function () {
    await db?.$disconnect();
  });

  /**
   * The error of a query whose connection PostgreSQL terminates while it runs (SQLSTATE 57P01): a model query (as
   * the API's reads are), held up behind a lock another connection takes on its table, then terminated.
   */
  async function terminatedQueryError(query: () => Promise<unknown>): Promise<unknown> {
    const admin = new Client({ connectionString: url });
    admin.on('error', () => {});
    await admin.connect();
    try {
      await admin.query('BEGIN');
      await admin.query('LOCK TABLE customer_view IN ACCESS EXCLUSIVE MODE');
      const running = query().then(
        () => assert.fail('the query was not interrupted'),
        (error: unknown) => error,
      );
      for (let terminated = 0; terminated === 0; ) {
        const { rowCount } = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
        );
        terminated = rowCount ?? 0;
        if (terminated === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return await running;
    } finally {
      await admin.query('ROLLBACK').catch(() => {});
      await admin.end();
    }
  }

  it('a model query whose connection the server terminates', async function () {
    const error = await terminatedQueryError(() => db.customerView.findUnique({ where: { id: 'cust-alice' } }));
    assert.equal((error as Error).name, 'DriverAdapterError', 'as the adapter threw it');
    assert.equal((error as { cause?: { originalCode?: string } }).cause?.originalCode, '57P01', JSON.stringify(error));
    assert.equal(isDatabaseUnavailable(error), true, `${(error as Error).name}: ${JSON.stringify(error)}`);

    const app = express();
    app.get('/read', () => {
      throw error;
    });
    app.use(errorHandler(silentLogger));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/read`);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('retry-after'), '1');
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'database_unavailable');
    } finally {
      server.close();
    }
    // The pool replaced the connection: the next query is answered.
    assert.deepEqual(await db.$queryRaw`SELECT 1 AS one`, [{ one: 1 }]);
  });

  it('a query the database refuses is not taken for an outage', async function () {
    const error = await db.$queryRaw`SELECT * FROM no_such_table`.then(
      () => assert.fail('the query succeeded'),
      (failure: unknown) => failure,
    );
    assert.equal(isDatabaseUnavailable(error), false);
    const customer = { id: 'dberrors', name: 'x', creditLimitCents: 1, creditUsedCents: 0, version: 1, updatedAt: new Date() };
    await db.customerView.create({ data: customer });
    const refusedModel = await db.customerView
      .create({ data: customer })
      .then(
        () => assert.fail('the insert succeeded'),
        (failure: unknown) => failure,
      );
    assert.equal(isDatabaseUnavailable(refusedModel), false);
  });
});
