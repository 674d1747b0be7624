// The whole system in one process: PostgreSQL (embedded unless *_DATABASE_URL are set), the Temporal dev
// server (unless TEMPORAL_ADDRESS is set), the workers and the API. `npm start` and the end-to-end tests
// both run it.
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { NativeConnection, type WorkflowBundle } from '@temporalio/worker';
import { WORKER_ROLES, type Config, type DatabaseUrls } from '../config';
import { providerFromConfig } from '../activities/payments/provider';
import { startApiServer } from '../api/server';
import { ensureSearchAttributes } from '../worker/search-attributes';
import { faultsFromConfig } from '../worker/fault-injection';
import { createWorkers, type WorkerSet } from '../worker/workers';
import { startEmbeddedPostgres } from './postgres';
import { provisionDatabases } from './provision';
import { startTemporalDevServer } from './temporal-dev-server';
import { PROJECT_ROOT } from './tools';

export interface StackOptions {
  config: Config;
  /** Where the embedded PostgreSQL cluster and the dev server's SQLite file live. */
  dataDir?: string;
  postgresPort?: number;
  temporalPort?: number;
  /** Web UI port of the dev server; 0 runs it headless. */
  temporalUiPort?: number;
  /** Run the workers in this process (default true). */
  runWorkers?: boolean;
  workflowBundle?: WorkflowBundle;
  log?: (line: string) => void;
}

export interface RunningStack {
  apiUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  databaseUrls: DatabaseUrls;
  workers?: WorkerSet;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<RunningStack> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dataDir = options.dataDir ?? path.join(PROJECT_ROOT, '.data');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch((error) => log(`shutdown: ${String(error)}`));
    stops.length = 0;
  };

  try {
    let databaseUrls = options.config.databaseUrls;
    if (!databaseUrls) {
      const port = options.postgresPort ?? 54329;
      log(`postgres: starting embedded PostgreSQL on 127.0.0.1:${port} (data in ${path.join(dataDir, 'postgres')})`);
      const postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), port });
      stops.push(() => postgres.stop());
      databaseUrls = postgres.urls;
    }
    log('postgres: applying migrations and seed data');
    await provisionDatabases(databaseUrls);

    let temporalAddress = options.config.temporal.address;
    let temporalUiUrl = options.config.temporal.uiUrl;
    if (!temporalAddress) {
      const port = options.temporalPort ?? 7233;
      const uiPort = options.temporalUiPort ?? 8233;
      log(`temporal: starting the dev server on 127.0.0.1:${port}${uiPort ? `, Web UI on ${uiPort}` : ''}`);
      const devServer = await startTemporalDevServer({
        port,
        uiPort: uiPort || undefined,
        dbFile: path.join(dataDir, 'temporal', 'dev.sqlite'),
        namespace: options.config.temporal.namespace,
      });
      stops.push(() => devServer.stop());
      temporalAddress = devServer.address;
      temporalUiUrl ??= devServer.uiUrl;
    }
    const config: Config = { ...options.config, temporal: { ...options.config.temporal, address: temporalAddress, uiUrl: temporalUiUrl } };

    const admin = await Connection.connect({ address: temporalAddress });
    await ensureSearchAttributes(admin, config.temporal.namespace).finally(() => admin.close());

    let workers: WorkerSet | undefined;
    if (options.runWorkers ?? true) {
      const connection = await NativeConnection.connect({ address: temporalAddress });
      stops.push(() => connection.close());
      workers = await createWorkers({
        connection,
        namespace: config.temporal.namespace,
        roles: WORKER_ROLES,
        databaseUrls,
        paymentProvider: providerFromConfig(config.payments),
        faults: faultsFromConfig(config),
        workflowBundle: options.workflowBundle,
      });
      const running = workers.run();
      running.catch((error) => log(`worker stopped: ${String(error)}`));
      stops.push(() => workers!.shutdown());
    }

    const api = await startApiServer({ config, databaseUrls, temporalAddress });
    stops.push(() => api.close());
    return { apiUrl: api.url, temporalAddress, temporalUiUrl, databaseUrls, workers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
