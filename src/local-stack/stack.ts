// The whole system in one process: PostgreSQL (embedded unless *_DATABASE_URL are set), the Temporal dev
// server (unless TEMPORAL_ADDRESS is set), NATS with JetStream (unless NATS_URL is set), the sandbox payment
// provider (unless PAYMENT_PROVIDER_URL is set), one outbox relay per service database, the query side's
// projector, the workers and the API. `npm start` and the end-to-end tests both run it.
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { Connection } from '@temporalio/client';
import { NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import { requireServiceUrls, SERVICES, WORKER_ROLES, type Config, type DatabaseUrls, type ServiceName } from '../config';
import { httpPaymentProvider } from '../activities/payments/provider';
import { startPaymentProvider } from '../payment-provider/start';
import { startApiServer } from '../api/server';
import { temporalConnectionOptions } from '../temporal-connection';
import { ensureSearchAttributes } from '../worker/search-attributes';
import { faultsFromConfig } from '../worker/fault-injection';
import { createWorkers, type WorkerSet } from '../worker/workers';
import { bundleInChildProcess } from '../worker/workflow-bundle';
import { connectNats } from '../events/nats-connection';
import { silentLogger, type Logger } from '../observability/logging';
import type { Tracing } from '../observability/tracing';
import { outboxStatus } from '../events/relay-status';
import { createRelay } from '../events/wal-relay';
import { ensureStreams } from '../events/streams';
import { connectQueryDb, type QueryDb } from '../query/db';
import { connectProjectorDb, startProjector } from '../query/projector';
import { viewsLag } from '../query/read';
import { startNatsServer } from './nats';
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
  /** Port of the sandbox payment provider (0: any free port). */
  providerPort?: number;
  /** Port of the embedded NATS server. */
  natsPort?: number;
  /** Run the workers in this process (default true). */
  runWorkers?: boolean;
  /**
   * Port of the services' read APIs: served here by the workers, or (runWorkers false) by a worker process
   * started on it (SERVICE_API_PORT); the API reaches every service there unless the *_SERVICE_URL variables
   * name others. Default: SERVICE_API_PORT.
   */
  serviceApiPort?: number;
  /**
   * The workflows, bundled with TRACING_WORKFLOW_MODULES (tests build one and share it). Unset: bundled from the
   * sources at every start, in a child process, into dataDir (src/worker/workflow-bundle.ts).
   */
  workflowBundle?: WorkflowBundleOption;
  /** The Temporal runtime's Prometheus exporter, appended to the workers' GET /metrics (see installRuntimeWithMetrics). */
  runtimeMetricsUrl?: string;
  /**
   * The process's tracing (src/observability/tracing.ts), for the workers and the API; the relays and the projector
   * record into the same global provider. With a prebuilt workflowBundle, bundle TRACING_WORKFLOW_MODULES into it.
   */
  tracing?: Tracing;
  /**
   * The process's logger (src/observability/logging.ts), for what the stack says while it starts and stops and for
   * every part it runs (relays, projector, provider, workers, API); silent if absent.
   */
  logger?: Logger;
}

export interface RunningStack {
  apiUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  /** The payment provider's API (the sandbox's, unless PAYMENT_PROVIDER_URL names another). */
  providerUrl: string;
  /** The NATS servers the streams live on (the embedded one, unless NATS_URL names others). */
  natsServers: string[];
  databaseUrls: DatabaseUrls;
  queryDatabaseUrl: string;
  /** Where the API reaches each service's read API. */
  serviceUrls: Record<ServiceName, string>;
  workers?: WorkerSet;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<RunningStack> {
  const logger = options.logger ?? silentLogger;
  const stackLogger = logger.child({ component: 'stack' });
  const log = (line: string) => stackLogger.info(line);
  const dataDir = options.dataDir ?? path.join(PROJECT_ROOT, '.data');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch((error) => stackLogger.error({ err: error }, 'shutdown step failed'));
    stops.length = 0;
  };

  try {
    let databaseUrls = options.config.databaseUrls;
    let queryDatabaseUrl = options.config.queryDatabaseUrl;
    if (!databaseUrls && Object.keys(options.config.serviceDatabaseUrls).length > 0) {
      // Some but not all: half embedded, half real databases would be mixed without anyone noticing.
      requireServiceUrls(options.config.serviceDatabaseUrls, SERVICES, 'DATABASE_URL', 'set all of the service database URLs or none:');
    }
    if (databaseUrls && !queryDatabaseUrl) throw new Error('with the *_DATABASE_URL variables set, set QUERY_DATABASE_URL too');
    if (!databaseUrls) {
      const port = options.postgresPort ?? 54329;
      log(`postgres: starting embedded PostgreSQL on 127.0.0.1:${port} (data in ${path.join(dataDir, 'postgres')})`);
      const postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), port });
      stops.push(() => postgres.stop());
      databaseUrls = postgres.urls;
      queryDatabaseUrl = postgres.queryUrl;
    }
    log('postgres: applying migrations and seed data');
    await provisionDatabases(databaseUrls, queryDatabaseUrl);

    let temporalAddress = options.config.temporal.address;
    let temporalUiUrl = options.config.temporal.uiUrl;
    if (!temporalAddress) {
      const port = options.temporalPort ?? 7233;
      const uiPort = options.temporalUiPort ?? 8233;
      log(`temporal: starting the dev server on 127.0.0.1:${port}${uiPort ? `, Web UI on ${uiPort}` : ''} (SQLite durability ${options.config.localStack.temporalDurability})`);
      const devServer = await startTemporalDevServer({
        port,
        uiPort: uiPort || undefined,
        dbFile: path.join(dataDir, 'temporal', 'dev.sqlite'),
        durability: options.config.localStack.temporalDurability,
        namespace: options.config.temporal.namespace,
      });
      stops.push(() => devServer.stop());
      temporalAddress = devServer.address;
      temporalUiUrl ??= devServer.uiUrl;
    }
    let natsServers = options.config.events.natsServers;
    if (!natsServers) {
      const port = options.natsPort ?? options.config.localStack.natsPort;
      const storeDir = path.join(dataDir, 'nats');
      log(`nats: starting nats-server with JetStream on 127.0.0.1:${port} (streams in ${storeDir})`);
      const nats = await startNatsServer({ port, storeDir });
      stops.push(() => nats.stop());
      natsServers = [nats.url];
    }
    const nc = await connectNats(natsServers, 'order-saga-start');
    try {
      await ensureStreams(nc, { replicas: options.config.events.streamReplicas });
    } finally {
      await nc.close();
    }

    // One outbox relay per service database, publishing its events to the service's stream (RELAY_MODE).
    const relayConnection = await connectNats(natsServers, 'order-saga-relay');
    const { relayMode, outboxRetentionMs } = options.config.events;
    const relays = SERVICES.map((service) =>
      createRelay({ mode: relayMode, service, databaseUrl: databaseUrls![service], nats: relayConnection, retentionMs: outboxRetentionMs }),
    );
    const relayRuns = relays.map((relay) => relay.run({ logger }));
    stops.push(async () => {
      for (const relay of relays) relay.stop();
      await Promise.all(relayRuns);
      await Promise.all(relays.map((relay) => relay.close()));
      await relayConnection.close();
    });

    // The query side: views fed by the streams. The API answers from them once they have caught up with the seed.
    const projectorConnection = await connectNats(natsServers, 'order-saga-projector');
    const queryDb = connectQueryDb(queryDatabaseUrl!);
    const projectorDb = connectProjectorDb(queryDatabaseUrl!, logger);
    const projector = startProjector({ nats: projectorConnection, db: projectorDb, logger });
    stops.push(async () => {
      await projector.stop();
      await Promise.all([queryDb.$disconnect(), projectorDb.end()]);
      await projectorConnection.close();
    });
    await waitForViews(queryDb, projectorConnection, databaseUrls, log);

    let providerUrl = options.config.payments.providerUrl;
    if (!providerUrl) {
      if (options.config.payments.provider === 'external') throw new Error('PAYMENT_PROVIDER=external needs PAYMENT_PROVIDER_URL');
      const { payments } = options.config;
      const sandbox = await startPaymentProvider({
        dataDir: path.join(dataDir, 'payment-provider'),
        port: options.providerPort ?? 3100,
        apiKey: payments.providerApiKey,
        webhookSecret: payments.webhookSecret,
        callbackUrl: payments.callbackUrl,
        confirmDelayMs: payments.sandboxConfirmDelayMs,
        log: (line) => logger.child({ component: 'payment-provider' }).info(line),
      });
      stops.push(() => sandbox.stop());
      providerUrl = sandbox.url;
      log(`payments: sandbox payment provider on ${providerUrl} (store in ${path.join(dataDir, 'payment-provider')})`);
    }
    const config: Config = {
      ...options.config,
      temporal: { ...options.config.temporal, address: temporalAddress, uiUrl: temporalUiUrl },
      payments: { ...options.config.payments, providerUrl },
      events: { ...options.config.events, natsServers },
    };

    const admin = await Connection.connect(temporalConnectionOptions(config.temporal).client);
    await ensureSearchAttributes(admin, config.temporal.namespace, { mode: config.temporal.searchAttributes, warn: (line) => stackLogger.warn(line) }).finally(() => admin.close());

    const serviceApiPort = options.serviceApiPort ?? config.serviceApi.port;
    let workers: WorkerSet | undefined;
    if (options.runWorkers ?? true) {
      const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal).worker);
      stops.push(() => connection.close());
      const ordersNats = await connectNats(natsServers, 'order-saga-orders-worker');
      stops.push(() => ordersNats.close());
      let workflowBundle = options.workflowBundle;
      if (!workflowBundle) {
        const codePath = path.join(dataDir, 'workflow-bundle.js');
        log('workflows: bundling them from the sources (in a child process, so that webpack leaves with it)');
        await bundleInChildProcess(codePath);
        workflowBundle = { codePath };
      }
      workers = await createWorkers({
        connection,
        namespace: config.temporal.namespace,
        roles: WORKER_ROLES,
        databaseUrls,
        paymentProvider: httpPaymentProvider({ url: providerUrl, apiKey: config.payments.providerApiKey }),
        faults: faultsFromConfig(config, (line) => stackLogger.warn(line)),
        poolSize: config.workers.poolSize,
        activityConcurrency: config.workers.activityConcurrency,
        unexpectedErrorMaxAttempts: config.workers.unexpectedErrorMaxAttempts,
        maxCachedWorkflows: config.workers.maxCachedWorkflows,
        workflowBundle,
        nats: ordersNats,
        logger,
        serviceApi: { host: config.serviceApi.host, port: serviceApiPort },
        runtimeMetricsUrl: options.runtimeMetricsUrl,
        tracing: options.tracing,
      });
      log(`services: read APIs of ${workers.serviceApi?.services.join(', ')} on ${workers.serviceApi?.url}, the workers' metrics on ${workers.serviceApi?.url}/metrics`);
      const running = workers.run();
      running.catch((error) => stackLogger.error({ err: error }, 'the workers stopped'));
      stops.push(() => workers!.shutdown());
    }

    // The services' read APIs: where the configuration says, else where the workers here (or the worker process
    // started on serviceApiPort) serve them.
    const local = workers?.serviceApi?.url ?? `http://127.0.0.1:${serviceApiPort}`;
    const serviceUrls = Object.fromEntries(SERVICES.map((service) => [service, config.serviceUrls[service] ?? local])) as Record<ServiceName, string>;
    const api = await startApiServer({ config, serviceUrls, queryDatabaseUrl: queryDatabaseUrl!, natsServers, temporalAddress, logger, tracing: options.tracing });
    stops.push(() => api.close());
    return { apiUrl: api.url, temporalAddress, temporalUiUrl, providerUrl, natsServers, databaseUrls, queryDatabaseUrl: queryDatabaseUrl!, serviceUrls, workers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Waits (a while, not forever) until every outbox is published and the views have applied everything on the
 * streams, so that the API's first answers (the catalog, an order's validation) see the seed data.
 */
async function waitForViews(db: QueryDb, nats: NatsConnection, databaseUrls: DatabaseUrls, log: (line: string) => void, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const backlogs = await Promise.all(SERVICES.map((service) => outboxStatus(databaseUrls[service]).then((status) => status.backlog)));
    if (backlogs.every((backlog) => backlog === 0) && (await viewsLag(db, nats)).pendingEvents === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  log(`query: the views have not caught up with the streams after ${timeoutMs / 1000} s; the API answers from them as they are`);
}
