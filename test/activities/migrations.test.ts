// The checked-in migrations are the source of truth, and schema.prisma must describe what they build: a
// database migrated step by step is compared, catalog against catalog, with one built straight from the
// schema (`prisma migrate diff --from-empty --to-schema-datamodel`). A schema edited without its migration,
// or a migration without its schema change, fails here. Hand-written CHECK constraints are left out.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls } from '../../src/config';
import { isUpToDate, migrateService } from '../../src/local-stack/migrate';
import { PROJECT_ROOT } from '../../src/local-stack/tools';
import { createEmptyDatabase, createServiceDatabases } from '../support/postgres';

const run = promisify(execFile);

const CATALOG_QUERIES = {
  columns: `SELECT table_name, column_name, udt_name, is_nullable, column_default FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1, 2`,
  indexes: `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY 1`,
  constraints: `SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
                WHERE connamespace = 'public'::regnamespace AND contype IN ('p', 'u', 'f') AND conname NOT LIKE '_prisma_migrations%' ORDER BY 1`,
  enums: `SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY 1, e.enumsortorder`,
};

async function catalog(url: string) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result: Record<string, unknown[]> = {};
    for (const [name, sql] of Object.entries(CATALOG_QUERIES)) result[name] = (await client.query(sql)).rows;
    return result;
  } finally {
    await client.end();
  }
}

describe('prisma migrations', function () {
  let migrated: DatabaseUrls;
  before(async function () {
    migrated = await createServiceDatabases('migrations');
  });

  for (const service of SERVICES) {
    it(`build exactly what prisma/${service}/schema.prisma describes`, async function () {
      const config = path.join(PROJECT_ROOT, 'prisma', service, 'prisma.config.ts');
      const schema = path.join(PROJECT_ROOT, 'prisma', service, 'schema.prisma');
      const fromSchema = await createEmptyDatabase(`from_schema_${service}`);
      const { stdout: script } = await run(
        process.execPath,
        [path.join(PROJECT_ROOT, 'node_modules/prisma/build/index.js'), 'migrate', 'diff', '--config', config, '--from-empty', '--to-schema-datamodel', schema, '--script'],
        { cwd: PROJECT_ROOT, env: { ...process.env, [`${service.toUpperCase()}_DATABASE_URL`]: fromSchema } },
      );
      const client = new Client({ connectionString: fromSchema });
      await client.connect();
      await client.query(script).finally(() => client.end());

      const [built, expected] = await Promise.all([catalog(migrated[service]), catalog(fromSchema)]);
      assert.ok(expected.columns.length > 0);
      assert.deepEqual(built, expected);
    });
  }
});

// migrateService leaves a database alone, without starting Prisma's CLI, only when the CLI would find nothing to do.
describe('isUpToDate (whether migrate deploy has anything to do)', function () {
  let urls: DatabaseUrls;
  beforeEach(async function () {
    urls = await createServiceDatabases('up_to_date');
  });

  async function onOrders(sql: string): Promise<void> {
    const client = new Client({ connectionString: urls.orders });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  it('is true for a database with every migration applied, and false for an empty one until it is migrated', async function () {
    assert.equal(await isUpToDate('orders', urls.orders), true);
    const empty = await createEmptyDatabase('up_to_date_empty');
    assert.equal(await isUpToDate('orders', empty), false);
    await migrateService('orders', empty);
    assert.equal(await isUpToDate('orders', empty), true);
  });

  it('is false when a migration is missing, was edited since it was applied, or failed', async function () {
    await onOrders(`DELETE FROM _prisma_migrations WHERE migration_name = (SELECT max(migration_name) FROM _prisma_migrations)`);
    assert.equal(await isUpToDate('orders', urls.orders), false, 'a migration not applied yet');

    urls = await createServiceDatabases('up_to_date');
    await onOrders(`UPDATE _prisma_migrations SET checksum = md5(checksum) WHERE migration_name = (SELECT min(migration_name) FROM _prisma_migrations)`);
    assert.equal(await isUpToDate('orders', urls.orders), false, 'a migration edited after it was applied');

    urls = await createServiceDatabases('up_to_date');
    await onOrders(`UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = (SELECT max(migration_name) FROM _prisma_migrations)`);
    assert.equal(await isUpToDate('orders', urls.orders), false, 'a migration that failed');
  });

  it('is false for a database that cannot be reached (the CLI then says why)', async function () {
    assert.equal(await isUpToDate('orders', urls.orders.replace(/\/[^/]+$/, '/no_such_database')), false);
  });
});
