// One embedded PostgreSQL cluster for the whole test run, in a fresh temporary folder, on a free port, shared by
// the suites that mocha runs side by side. Each suite gets its own four service databases (migrated and seeded),
// copied from template databases, so suites never see each other's rows.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../../src/config';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/local-stack/postgres';
import { provisionDatabases } from '../../src/local-stack/provision';
import { freePort } from '../../src/local-stack/free-port';

const templateOf = (service: ServiceName | 'query') => `template_${service}`;

/** Where a mocha worker process (parallel mode) finds the run's shared cluster, started by the main process. */
const SHARED_CLUSTER_URL = 'ORDER_SAGA_TEST_PG_URL';

/**
 * A PostgreSQL cluster for tests: the one shared by the whole run (sharedCluster), or one of its own for a suite
 * that takes it down (TestCluster.start), so that no other suite running at the same time sees the outage.
 */
export class TestCluster {
  private constructor(
    /** The `postgres` database's URL; the others differ only in their name. */
    private readonly adminUrl: string,
    /** Set in the process that started the cluster (and may stop or restart it). */
    private running?: { postgres: RunningPostgres; dataDir: string },
  ) {}

  /** A new cluster in a fresh temporary folder, on a free port, with the template databases in it. */
  static async start(): Promise<TestCluster> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-test-pg-'));
    const postgres = await startEmbeddedPostgres({ dataDir, port: await freePort(), databasePrefix: 'unused_' });
    const cluster = new TestCluster(postgres.urls.orders.replace(/\/[^/]+$/, '/postgres'), { postgres, dataDir });
    await cluster.createTemplates();
    return cluster;
  }

  urlOf(database: string): string {
    return this.adminUrl.replace(/\/[^/]+$/, `/${database}`);
  }

  /** A fresh set of migrated and seeded service databases named `<prefix>_<service>`. */
  async createServiceDatabases(prefix: string): Promise<DatabaseUrls> {
    const urls = await Promise.all(SERVICES.map((service) => this.copyTemplate(service, `${prefix}_${service}`)));
    return Object.fromEntries(SERVICES.map((service, index) => [service, urls[index]])) as DatabaseUrls;
  }

  /** A fresh, migrated query database `<prefix>_query` (src/query). */
  createQueryDatabase(prefix: string): Promise<string> {
    return this.copyTemplate('query', `${prefix}_query`);
  }

  /** An empty database `<name>` (dropped first if it exists). */
  async createEmptyDatabase(name: string): Promise<string> {
    await this.withAdmin(async (admin) => {
      await dropDatabase(admin, name);
      await admin.query(`CREATE DATABASE "${name}"`);
    });
    return this.urlOf(name);
  }

  /** Takes the whole cluster down while `during` runs (a database outage), then brings it back on the same port. */
  async withDown<T>(during: () => Promise<T>): Promise<T> {
    if (!this.running) throw new Error('only the process that started a test cluster can take it down');
    const { postgres, dataDir } = this.running;
    await postgres.stop();
    try {
      return await during();
    } finally {
      this.running = { postgres: await startEmbeddedPostgres({ dataDir, port: postgres.port, databasePrefix: 'unused_' }), dataDir };
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    const { postgres, dataDir } = this.running;
    this.running = undefined;
    await postgres.stop();
    // As root with a temporary folder PostgreSQL's user cannot reach, dataDir is a link to where the cluster lives.
    if (postgres.dataDir !== dataDir) rmSync(path.dirname(postgres.dataDir), { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }

  /**
   * The migrated and seeded databases every suite's databases are copied from (migrating runs Prisma's CLI, a
   * second or two of CPU per database: once per cluster rather than once per suite). Nobody connects to them later.
   */
  private async createTemplates(): Promise<void> {
    await this.withAdmin(async (admin) => {
      for (const service of [...SERVICES, 'query'] as const) {
        await dropDatabase(admin, templateOf(service));
        await admin.query(`CREATE DATABASE "${templateOf(service)}"`);
      }
    });
    const urls = Object.fromEntries(SERVICES.map((service) => [service, this.urlOf(templateOf(service))])) as DatabaseUrls;
    await provisionDatabases(urls, this.urlOf(templateOf('query')));
  }

  private async copyTemplate(service: ServiceName | 'query', name: string): Promise<string> {
    await this.withAdmin(async (admin) => {
      await dropDatabase(admin, name);
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${templateOf(service)}"`);
    });
    return this.urlOf(name);
  }

  private async withAdmin<T>(use: (admin: Client) => Promise<T>): Promise<T> {
    const admin = new Client({ connectionString: this.adminUrl });
    await admin.connect();
    try {
      return await use(admin);
    } finally {
      await admin.end();
    }
  }

  /** The run's shared cluster as seen from a mocha worker process: it can make databases, not stop the cluster. */
  static shared(): TestCluster {
    const url = process.env[SHARED_CLUSTER_URL];
    if (!url) throw new Error('the test PostgreSQL cluster is not running (test/support/global-fixtures.ts)');
    return new TestCluster(url);
  }

  /** Tells the processes started from now on (mocha's workers) where the shared cluster is. */
  shareWithChildProcesses(): void {
    process.env[SHARED_CLUSTER_URL] = this.adminUrl;
  }
}

let shared: TestCluster | undefined;

/** The cluster the whole run shares; never taken down (a suite that needs an outage starts its own TestCluster). */
export function sharedCluster(): TestCluster {
  shared ??= TestCluster.shared();
  return shared;
}

/** Starts the shared cluster (mocha's global setup, in the main process). */
export async function startTestCluster(): Promise<void> {
  shared = await TestCluster.start();
  shared.shareWithChildProcesses();
}

export async function stopTestCluster(): Promise<void> {
  await shared?.stop();
  shared = undefined;
}

/** A fresh set of migrated and seeded service databases named `<prefix>_<service>` on the shared cluster. */
export const createServiceDatabases = (prefix: string): Promise<DatabaseUrls> => sharedCluster().createServiceDatabases(prefix);
/** An empty database `<name>` on the shared cluster. */
export const createEmptyDatabase = (name: string): Promise<string> => sharedCluster().createEmptyDatabase(name);
/** A fresh, migrated query database `<prefix>_query` on the shared cluster. */
export const createQueryDatabase = (prefix: string): Promise<string> => sharedCluster().createQueryDatabase(prefix);

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
