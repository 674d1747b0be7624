// One embedded PostgreSQL cluster for the whole test run, in a fresh temporary folder, on a free port.
// Each suite gets its own four service databases (migrated and seeded), so suites never see each other's rows.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls } from '../../src/config';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/local-stack/postgres';
import { migrateService } from '../../src/local-stack/migrate';
import { provisionDatabases } from '../../src/local-stack/provision';
import { freePort } from '../../src/local-stack/free-port';

let cluster: RunningPostgres | undefined;
let dataDir: string | undefined;

export async function startTestCluster(): Promise<void> {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-test-pg-'));
  cluster = await startEmbeddedPostgres({ dataDir, port: await freePort(), databasePrefix: 'unused_' });
}

/** Takes the whole cluster down while `during` runs (a database outage), then brings it back. */
export async function withClusterDown<T>(during: () => Promise<T>): Promise<T> {
  if (!cluster || !dataDir) throw new Error('the test PostgreSQL cluster is not running');
  const port = cluster.port;
  await cluster.stop();
  try {
    return await during();
  } finally {
    cluster = await startEmbeddedPostgres({ dataDir, port, databasePrefix: 'unused_' });
  }
}

export async function stopTestCluster(): Promise<void> {
  await cluster?.stop();
  // As root with a temporary folder PostgreSQL's user cannot reach, dataDir is a link to where the cluster lives.
  if (cluster && cluster.dataDir !== dataDir) rmSync(path.dirname(cluster.dataDir), { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  cluster = undefined;
}

/** Creates, migrates and seeds a fresh set of service databases named `<prefix>_<service>`. */
export async function createServiceDatabases(prefix: string): Promise<DatabaseUrls> {
  if (!cluster) throw new Error('the test PostgreSQL cluster is not running (test/support/global-fixtures.ts)');
  const admin = new Client({ connectionString: cluster.urls.orders.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  try {
    for (const service of SERVICES) {
      await dropDatabase(admin, `${prefix}_${service}`);
      await admin.query(`CREATE DATABASE "${prefix}_${service}"`);
    }
  } finally {
    await admin.end();
  }
  const urls = Object.fromEntries(SERVICES.map((service) => [service, cluster!.urls[service].replace(/\/[^/]+$/, `/${prefix}_${service}`)])) as DatabaseUrls;
  await provisionDatabases(urls);
  return urls;
}

/** An empty database `<name>` on the test cluster (dropped first if it exists). */
export async function createEmptyDatabase(name: string): Promise<string> {
  if (!cluster) throw new Error('the test PostgreSQL cluster is not running (test/support/global-fixtures.ts)');
  const admin = new Client({ connectionString: cluster.urls.orders.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  try {
    await dropDatabase(admin, name);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return cluster.urls.orders.replace(/\/[^/]+$/, `/${name}`);
}

/** A fresh, migrated query database `<prefix>_query` (src/query). */
export async function createQueryDatabase(prefix: string): Promise<string> {
  const url = await createEmptyDatabase(`${prefix}_query`);
  await migrateService('query', url);
  return url;
}

/**
 * Drops a database if it exists. Its replication slots go first (PostgreSQL refuses to drop a database that has
 * one, even with FORCE), after ending the connection that streams from a slot in use (a WAL relay left running).
 */
async function dropDatabase(admin: Client, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { rows } = await admin.query<{ slot_name: string; active_pid: number | null }>(
      'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1',
      [name],
    );
    try {
      for (const slot of rows) {
        // Waits up to 5 s for the backend to be gone, so that the slot is free to drop.
        if (slot.active_pid !== null) await admin.query('SELECT pg_terminate_backend($1, 5000)', [slot.active_pid]);
        await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot.slot_name]);
      }
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      return;
    } catch (error) {
      // A relay still running reconnects and takes its slot again (or recreates it): end it once more.
      if (attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
