// One embedded PostgreSQL cluster for the whole test run, in a fresh temporary folder, on a free port.
// Each suite gets its own four service databases (migrated and seeded), so suites never see each other's rows.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls } from '../../src/config';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/local-stack/postgres';
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
      await admin.query(`DROP DATABASE IF EXISTS "${prefix}_${service}" WITH (FORCE)`);
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
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return cluster.urls.orders.replace(/\/[^/]+$/, `/${name}`);
}
