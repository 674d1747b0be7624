// The consumers' pg pool (src/events/sql-pool.ts) against real PostgreSQL: a transaction commits or rolls back
// whole, values never become SQL text, and a connection that breaks (idle or inside a transaction) costs one
// failed attempt, not the process.
import assert from 'node:assert/strict';
import { SqlPool } from '../../src/events/sql-pool';
import { createEmptyDatabase } from '../support/postgres';
import { sql } from '../support/sql';

describe('SqlPool: the event consumers\' transactions on pg', function () {
  let url: string;
  let pool: SqlPool;
  const idleErrors: Error[] = [];

  before(async function () {
    url = await createEmptyDatabase('sql_pool');
    await sql(url, 'CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
    pool = new SqlPool({ connectionString: url, max: 2 }, (error) => idleErrors.push(error));
  });

  after(async function () {
    await pool?.end();
  });

  const bodies = async () => (await sql<{ body: string }>(url, 'SELECT body FROM notes ORDER BY id')).map((row) => row.body);

  it('commits every statement of a transaction, and answers what the work answered', async function () {
    const answer = await pool.$transaction(async (tx) => {
      const inserted = await tx.$executeRaw`INSERT INTO notes (id, body) VALUES (${1}, ${'one'}), (${2}, ${'two'})`;
      const updated = await tx.$executeRawUnsafe('UPDATE notes SET body = body || $1 WHERE id = $2', '!', 2);
      const rows = await tx.$queryRaw<{ body: string }[]>`SELECT body FROM notes WHERE id = ${2}`;
      return { inserted, updated, body: rows[0].body };
    });
    assert.deepEqual(answer, { inserted: 2, updated: 1, body: 'two!' });
    assert.deepEqual(await bodies(), ['one', 'two!']);
  });

  it('rolls back everything when the work throws, and throws its error', async function () {
    await assert.rejects(
      pool.$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO notes (id, body) VALUES (${3}, ${'three'})`;
        throw new Error('changed its mind');
      }),
      /changed its mind/,
    );
    await assert.rejects(
      pool.$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO notes (id, body) VALUES (${4}, ${'four'})`;
        await tx.$executeRaw`INSERT INTO notes (id, body) VALUES (${1}, ${'a duplicate'})`;
      }),
      /duplicate key/,
    );
    assert.deepEqual(await bodies(), ['one', 'two!']);
  });

  it('passes values as parameters, never as SQL', async function () {
    const body = "'); DROP TABLE notes; --";
    await pool.$transaction((tx) => tx.$executeRaw`INSERT INTO notes (id, body) VALUES (${5}, ${body})`);
    assert.deepEqual(await bodies(), ['one', 'two!', body]);
  });

  it('discards a connection that broke inside a transaction; the next transaction gets a working one', async function () {
    await assert.rejects(
      pool.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT pg_terminate_backend(pg_backend_pid())`;
      }),
      /terminat/i,
    );
    const rows = await pool.$transaction((tx) => tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM notes`);
    assert.equal(rows[0].n, 3);
  });

  it('survives a connection that breaks while idle in the pool, and reports it', async function () {
    const pid = await pool.$transaction(async (tx) => (await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0].pid);
    idleErrors.length = 0;
    await sql(url, 'SELECT pg_terminate_backend($1)', [pid]);
    // Without the pool's error handler, this error would end the test process.
    for (let waited = 0; idleErrors.length === 0 && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(idleErrors.length, 1);
    const rows = await pool.$transaction((tx) => tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM notes`);
    assert.equal(rows[0].n, 3);
  });
});
