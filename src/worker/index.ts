// `npm run worker`: hosts the saga's workflows and every service's activities. To scale one service on its
// own, run just its worker: `npm run worker -- --only=inventory` or WORKER_ROLES=inventory,payments.
import { DefaultLogger, NativeConnection } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import { ConfigError, loadConfig, parseWorkerRoles, requireServiceUrls, type ServiceName, type WorkerRole } from '../config';
import { httpPaymentProvider } from '../activities/payments/provider';
import { describeTemporalConnection, temporalConnectionOptions, type TemporalConnectionOptions } from '../temporal-connection';
import { ensureSearchAttributes } from './search-attributes';
import { faultsFromConfig } from './fault-injection';
import { connectNats } from '../events/nats-connection';
import { createWorkers } from './workers';
import { installRuntimeWithMetrics } from '../observability/temporal';

/** The roles of this process: `--only=` on the command line, else WORKER_ROLES (already validated in the config). */
export function parseRoles(argv: string[], configured: WorkerRole[]): WorkerRole[] {
  const flag = argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  return flag === undefined ? configured : parseWorkerRoles(flag, '--only');
}

/** Waits for Temporal to come up (containers start in any order) instead of failing at once. */
async function connectWithRetry<T>(what: string, connect: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (error) {
      if (attempt >= 60) throw error;
      console.error(`worker: Temporal at ${what} not reachable yet (${String(error)}); retrying`);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

async function main() {
  const config = loadConfig();
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
  const temporal: TemporalConnectionOptions = temporalConnectionOptions(config.temporal);
  const target = describeTemporalConnection(temporal);
  // The SDK's own metrics (Core's Prometheus exporter on a private local port) are appended to this process's
  // GET /metrics, next to the saga's: one scrape target per worker process (src/observability/temporal.ts).
  const runtimeMetricsUrl = await installRuntimeWithMetrics(
    { shutdownSignals: ['SIGINT', 'SIGTERM'], logger: new DefaultLogger(config.logLevel ?? 'INFO') },
    (line) => console.warn(`worker: ${line}`),
  );
  const connection = await connectWithRetry(target, () => NativeConnection.connect(temporal.worker));
  const admin = await connectWithRetry(target, () => Connection.connect(temporal.client));
  try {
    await ensureSearchAttributes(admin, config.temporal.namespace, { mode: config.temporal.searchAttributes, warn: (line) => console.warn(`worker: ${line}`) });
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
    faults: faultsFromConfig(config),
    poolSize: config.workers.poolSize,
    activityConcurrency: config.workers.activityConcurrency,
    unexpectedErrorMaxAttempts: config.workers.unexpectedErrorMaxAttempts,
    nats,
    log: (line) => console.error(`worker: ${line}`),
    serviceApi: config.serviceApi,
    runtimeMetricsUrl,
  });
  const serviceApi = workers.serviceApi;
  if (serviceApi?.services.length) console.log(`worker: read APIs of ${serviceApi.services.join(', ')} on ${serviceApi.url}`);
  if (serviceApi) console.log(`worker: metrics on ${serviceApi.url}/metrics`);
  console.log(`worker: polling ${roles.join(', ')} on ${target}`);
  await workers.run();
  await nats?.close();
  await connection.close();
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error instanceof ConfigError ? `worker: configuration error: ${error.message}` : error);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
