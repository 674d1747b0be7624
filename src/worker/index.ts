// `npm run worker`: hosts the saga's workflows and every service's activities. To scale one service on its
// own, run just its worker: `npm run worker -- --only=inventory` or WORKER_ROLES=inventory,payments.
import { existsSync } from 'node:fs';
import { NativeConnection } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import { ConfigError, loadConfig, parseWorkerRoles, requireServiceUrls, type ServiceName, type WorkerRole } from '../config';
import { httpPaymentProvider } from '../activities/payments/provider';
import { describeTemporalConnection, temporalConnectionOptions, type TemporalConnectionOptions } from '../temporal-connection';
import { ensureSearchAttributes } from './search-attributes';
import { faultsFromConfig } from './fault-injection';
import { connectNats } from '../events/nats-connection';
import { createWorkers } from './workers';
import { installRuntimeWithMetrics } from '../observability/temporal';
import { createLogger, runtimeLogging, type Logger } from '../observability/logging';
import { startTracing } from '../observability/tracing';

/** The roles of this process: `--only=` on the command line, else WORKER_ROLES (already validated in the config). */
export function parseRoles(argv: string[], configured: WorkerRole[]): WorkerRole[] {
  const flag = argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  return flag === undefined ? configured : parseWorkerRoles(flag, '--only');
}

/** Waits for Temporal to come up (containers start in any order) instead of failing at once. */
async function connectWithRetry<T>(what: string, connect: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (error) {
      if (attempt >= 60) throw error;
      logger.warn({ err: error, attempt }, `Temporal at ${what} not reachable yet; retrying`);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

/** The process's root logger, once the configuration is read (a fatal error is logged through it from then on). */
let logger: Logger | undefined;

async function main() {
  const config = loadConfig();
  const root = (logger = createLogger({ service: 'worker', level: config.logLevel, format: config.logFormat }));
  // This file's own lines; the SDK and each part make their own children of the root, with their component.
  const log = root.child({ component: 'main' });
  // Traces, when an OTLP endpoint is configured (src/observability/tracing.ts).
  const tracing = startTracing({ serviceName: 'order-saga-worker', config: config.tracing });
  const roles = parseRoles(process.argv.slice(2), config.workerRoles);
  if (!config.temporal.address) throw new ConfigError('set TEMPORAL_ADDRESS, or use `npm start`, which runs everything');
  // Each service's worker gets its own database only: the URLs of the services it hosts, no other.
  const services = roles.filter((role): role is ServiceName => role !== 'saga');
  const databaseUrls = requireServiceUrls(config.serviceDatabaseUrls, services, 'DATABASE_URL', `a worker for ${roles.join(', ')}`);
  if (services.includes('payments') && !config.payments.providerUrl) throw new ConfigError('the payments worker needs PAYMENT_PROVIDER_URL');
  const natsServers = config.events.natsServers;
  if (roles.includes('orders') && !natsServers) {
    throw new ConfigError('the orders worker needs NATS_URL: it records the other services\' events in each order\'s stream');
  }
  const bundlePath = config.workers.workflowBundlePath;
  if (bundlePath && roles.includes('saga') && !existsSync(bundlePath)) {
    throw new ConfigError(`WORKFLOW_BUNDLE: no file at ${bundlePath}; build it with \`npm run build:workflows\``);
  }
  const temporal: TemporalConnectionOptions = temporalConnectionOptions(config.temporal);
  const target = describeTemporalConnection(temporal);
  // The SDK's own metrics (Core's Prometheus exporter on a private local port) are appended to this process's
  // GET /metrics, next to the saga's: one scrape target per worker process (src/observability/temporal.ts).
  // The SDK's logs, workflows' and activities' included, go to this process's logger (src/observability/logging.ts).
  const runtimeMetricsUrl = await installRuntimeWithMetrics(
    { shutdownSignals: ['SIGINT', 'SIGTERM'], ...runtimeLogging(root, config.logLevel) },
    (line) => log.warn(line),
  );
  const connection = await connectWithRetry(target, () => NativeConnection.connect(temporal.worker), log);
  const admin = await connectWithRetry(target, () => Connection.connect(temporal.client), log);
  try {
    await ensureSearchAttributes(admin, config.temporal.namespace, { mode: config.temporal.searchAttributes, warn: (line) => log.warn(line) });
  } finally {
    await admin.close();
  }
  const nats = natsServers && roles.includes('orders') ? await connectNats(natsServers, 'orders-worker') : undefined;
  const workers = await createWorkers({
    connection,
    namespace: config.temporal.namespace,
    roles,
    databaseUrls,
    paymentProvider: httpPaymentProvider({ url: config.payments.providerUrl ?? '', apiKey: config.payments.providerApiKey }),
    faults: faultsFromConfig(config, (line) => log.warn(line)),
    poolSize: config.workers.poolSize,
    activityConcurrency: config.workers.activityConcurrency,
    unexpectedErrorMaxAttempts: config.workers.unexpectedErrorMaxAttempts,
    maxCachedWorkflows: config.workers.maxCachedWorkflows,
    // Built with TRACING_WORKFLOW_MODULES by scripts/build-workflow-bundle.ts, as createWorkers requires.
    ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : {}),
    nats,
    logger: root,
    serviceApi: config.serviceApi,
    runtimeMetricsUrl,
    tracing,
  });
  const serviceApi = workers.serviceApi;
  if (serviceApi?.services.length) log.info(`read APIs of ${serviceApi.services.join(', ')} on ${serviceApi.url}`);
  if (serviceApi) log.info(`metrics on ${serviceApi.url}/metrics`);
  // Scripts and tests wait for this line (its "msg" starts with "polling").
  log.info({ roles }, `polling ${roles.join(', ')} on ${target}`);
  await workers.run();
  await tracing.shutdown();
  await nats?.close();
  await connection.close();
}

if (require.main === module) {
  main().catch((error) => {
    if (error instanceof ConfigError) console.error(`worker: configuration error: ${error.message}`);
    else if (logger) logger.fatal({ component: 'main', err: error }, 'worker stopped');
    else console.error(error);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
