// Builds the workers: one for the saga's task queue (workflows) and one per service task queue (that
// service's activities, with its own database). Any subset can run in a process, so each scales alone.
// Every service worker classifies its activities' errors (src/worker/error-classification.ts) and runs at
// most as many activities at once as its database pool has connections (src/activities/pool.ts).
// Every worker set counts its metrics in a registry of its own (src/observability/metrics.ts): activity failures
// through an interceptor, the saga's facts through workflow sinks, the outboxes and consumers it hosts at scrape
// time; it serves them on GET /metrics of its service API, which every process with serviceApi starts.
import type { NatsConnection } from '@nats-io/nats-core';
import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { TASK_QUEUES, type DatabaseUrls, type WorkerRole } from '../config';
import { createInventoryActivities } from '../activities/inventory/activities';
import { connectInventoryDb } from '../activities/inventory/db';
import { createOrdersActivities } from '../activities/orders/activities';
import { connectOrdersDb } from '../activities/orders/db';
import { connectFactsDb, startFactsConsumers, type FactsConsumers } from '../activities/orders/facts-consumer';
import { createPaymentsActivities } from '../activities/payments/activities';
import { connectPaymentsDb } from '../activities/payments/db';
import type { PaymentProvider } from '../activities/payments/provider';
import { createShippingActivities } from '../activities/shipping/activities';
import { connectShippingDb } from '../activities/shipping/db';
import { DEFAULT_POOL_SIZE } from '../activities/pool';
import { DEFAULT_UNEXPECTED_ERROR_MAX_ATTEMPTS, errorClassifier } from './error-classification';
import { faultInjector, type FaultPlan, type FaultStats } from './fault-injection';
import { startServiceApi, type ServiceApi, type ServiceDatabases } from './service-api';
import { FACTS_CONSUMERS } from '../activities/orders/facts-consumer';
import { createWorkerMetrics, watchOutbox, watchWorkerConsumers, type WorkerMetrics } from '../observability/metrics';
import { activityFailureMetrics, fetchRuntimeMetrics, sagaMetricsSinks } from '../observability/temporal';
import type { Logger } from '../observability/logging';
import { activityTracing, TRACING_WORKFLOW_MODULES, workflowTracingSinks } from '../observability/temporal-tracing';
import type { Tracing } from '../observability/tracing';

export interface WorkerSetOptions {
  connection: NativeConnection;
  namespace: string;
  roles: readonly WorkerRole[];
  /** The database of each service role hosted (only those: a worker gets only its own services' URLs). */
  databaseUrls: Partial<DatabaseUrls>;
  paymentProvider: PaymentProvider;
  /**
   * A prebuilt workflow bundle (tests build one and reuse it; `npm run worker` loads WORKFLOW_BUNDLE's file, `npm start`
   * one it builds at start); otherwise the workflows are bundled at start, with TRACING_WORKFLOW_MODULES. Bundle a
   * prebuilt one with them too (workflowInterceptorModules), as every worker does.
   */
  workflowBundle?: WorkflowBundleOption;
  /** Faults to inject into the service activities (reliability tests only); `random` makes them repeatable. */
  faults?: { plan: FaultPlan; stats?: FaultStats; random?: () => number };
  /** Connections per service database, and activities at once per service worker (DB_POOL_SIZE). */
  poolSize?: number;
  /** Activities at once per service worker; the pool size unless given (see Config.workers). */
  activityConcurrency?: number;
  /** Attempts an unexpected (unclassified) activity error gets before the saga needs attention. */
  unexpectedErrorMaxAttempts?: number;
  /** Sagas the saga worker keeps cached between their tasks (Config.workers.maxCachedWorkflows); the SDK's default if absent. */
  maxCachedWorkflows?: number;
  /**
   * The message stream: with the orders role, the orders service records the other services' events in each
   * order's stream (src/activities/orders/facts-consumer.ts). `npm run worker` requires it for that role; tests
   * of the saga alone may leave it out.
   */
  nats?: NatsConnection;
  /** The process's logger (src/observability/logging.ts), for the orders service's consumers; silent if absent. */
  logger?: Logger;
  /**
   * Where to serve the hosted services' read APIs and GET /metrics (src/worker/service-api.ts); none if absent. A
   * set hosting no service (the saga alone) serves /metrics only.
   */
  serviceApi?: { host: string; port: number };
  /** The metrics to count in (a registry of the set's own unless given). */
  metrics?: WorkerMetrics;
  /** The Temporal runtime's Prometheus exporter (installRuntimeWithMetrics), appended to GET /metrics. */
  runtimeMetricsUrl?: string;
  /** The process's tracing (src/observability/tracing.ts): when on, the workflows and activities record spans. */
  tracing?: Tracing;
}

export interface WorkerSet {
  roles: readonly WorkerRole[];
  /** The hosted services' read API and GET /metrics, when asked for. */
  serviceApi?: ServiceApi;
  metrics: WorkerMetrics;
  /** Resolves when every worker has stopped (after shutdown()). */
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

export async function createWorkers(options: WorkerSetOptions): Promise<WorkerSet> {
  const { connection, namespace, databaseUrls } = options;
  const disconnects: (() => Promise<void>)[] = [];
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  const metrics = options.metrics ?? createWorkerMetrics();
  // The activity's span comes first (outermost), so that it covers the rest; then the failure metrics, so that they
  // count each failure as classified; the classifier comes next, so that it also sees the faults the injector raises.
  const interceptors = {
    activity: [
      ...activityTracing(options.tracing),
      activityFailureMetrics(metrics),
      errorClassifier(options.unexpectedErrorMaxAttempts ?? DEFAULT_UNEXPECTED_ERROR_MAX_ATTEMPTS),
      ...(options.faults ? [faultInjector(options.faults.plan, options.faults.stats, options.faults.random)] : []),
    ],
  };
  const serviceWorker = (role: WorkerRole, activities: object) =>
    Worker.create({ connection, namespace, taskQueue: TASK_QUEUES[role], activities, interceptors, maxConcurrentActivityTaskExecutions: options.activityConcurrency ?? poolSize });

  const workers: Worker[] = [];
  const databases: ServiceDatabases = {};
  let facts: (() => FactsConsumers) | undefined;
  for (const role of options.roles) {
    switch (role) {
      case 'saga':
        workers.push(
          await Worker.create({
            connection,
            namespace,
            taskQueue: TASK_QUEUES.saga,
            ...(options.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: options.maxCachedWorkflows }),
            sinks: { ...sagaMetricsSinks(metrics), ...workflowTracingSinks(options.tracing) },
            ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
            // Bundled at start: with the workflow side of tracing, as every saga worker runs it (src/workflows/tracing-interceptors.ts).
            ...(options.workflowBundle ? {} : { interceptors: { workflowModules: TRACING_WORKFLOW_MODULES } }),
          }),
        );
        break;
      case 'orders': {
        const db = (databases.orders = connectOrdersDb(databaseUrls.orders!, poolSize));
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createOrdersActivities(db)));
        const nats = options.nats;
        if (nats) {
          const factsDb = connectFactsDb(databaseUrls.orders!, options.logger);
          disconnects.push(() => factsDb.end());
          facts = () => startFactsConsumers({ nats, db: factsDb, logger: options.logger });
        }
        break;
      }
      case 'inventory': {
        const db = (databases.inventory = connectInventoryDb(databaseUrls.inventory!, poolSize));
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createInventoryActivities(db)));
        break;
      }
      case 'payments': {
        const db = (databases.payments = connectPaymentsDb(databaseUrls.payments!, poolSize));
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createPaymentsActivities(db, options.paymentProvider)));
        break;
      }
      case 'shipping': {
        const db = (databases.shipping = connectShippingDb(databaseUrls.shipping!, poolSize));
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createShippingActivities(db)));
        break;
      }
    }
  }

  for (const [service, db] of Object.entries(databases)) {
    watchOutbox(metrics, service, (sql, params) => db.$queryRawUnsafe(sql, ...params));
  }
  if (facts && options.nats) watchWorkerConsumers(metrics, options.nats, FACTS_CONSUMERS);
  const runtimeMetricsUrl = options.runtimeMetricsUrl;
  if (runtimeMetricsUrl) metrics.metrics.addAppendix('temporal-runtime', () => fetchRuntimeMetrics(runtimeMetricsUrl));
  const serviceApi = options.serviceApi ? await startServiceApi({ databases, ...options.serviceApi, metrics: metrics.metrics }) : undefined;
  let running: Promise<void> | undefined;
  let consumers: FactsConsumers | undefined;
  return {
    roles: options.roles,
    serviceApi,
    metrics,
    run() {
      consumers ??= facts?.();
      running ??= Promise.all(workers.map((worker) => worker.run())).then(async () => {
        await consumers?.stop();
        await serviceApi?.close();
        await Promise.all(disconnects.map((disconnect) => disconnect()));
      });
      return running;
    },
    async shutdown() {
      for (const worker of workers) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      }
      await consumers?.stop();
      await running;
    },
  };
}
