// Builds the workers: one for the saga's task queue (workflows) and one per service task queue (that
// service's activities, with its own database). Any subset can run in a process, so each scales alone.
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { TASK_QUEUES, type DatabaseUrls, type WorkerRole } from '../config';
import { createInventoryActivities } from '../activities/inventory/activities';
import { connectInventoryDb } from '../activities/inventory/db';
import { createOrdersActivities } from '../activities/orders/activities';
import { connectOrdersDb } from '../activities/orders/db';
import { createPaymentsActivities } from '../activities/payments/activities';
import { connectPaymentsDb } from '../activities/payments/db';
import type { PaymentProvider } from '../activities/payments/provider';
import { createShippingActivities } from '../activities/shipping/activities';
import { connectShippingDb } from '../activities/shipping/db';
import { faultInjector, type FaultPlan, type FaultStats } from './fault-injection';

export interface WorkerSetOptions {
  connection: NativeConnection;
  namespace: string;
  roles: readonly WorkerRole[];
  databaseUrls: DatabaseUrls;
  paymentProvider: PaymentProvider;
  /** A prebuilt workflow bundle (tests build one and reuse it); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkflowBundle;
  /** Faults to inject into the service activities (reliability tests only). */
  faults?: { plan: FaultPlan; stats?: FaultStats };
}

export interface WorkerSet {
  roles: readonly WorkerRole[];
  /** Resolves when every worker has stopped (after shutdown()). */
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

export async function createWorkers(options: WorkerSetOptions): Promise<WorkerSet> {
  const { connection, namespace, databaseUrls } = options;
  const disconnects: (() => Promise<void>)[] = [];
  const interceptors = options.faults ? { activity: [faultInjector(options.faults.plan, options.faults.stats)] } : undefined;
  const serviceWorker = (role: WorkerRole, activities: object) =>
    Worker.create({ connection, namespace, taskQueue: TASK_QUEUES[role], activities, interceptors });

  const workers: Worker[] = [];
  for (const role of options.roles) {
    switch (role) {
      case 'saga':
        workers.push(
          await Worker.create({
            connection,
            namespace,
            taskQueue: TASK_QUEUES.saga,
            ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
          }),
        );
        break;
      case 'orders': {
        const db = connectOrdersDb(databaseUrls.orders);
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createOrdersActivities(db)));
        break;
      }
      case 'inventory': {
        const db = connectInventoryDb(databaseUrls.inventory);
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createInventoryActivities(db)));
        break;
      }
      case 'payments': {
        const db = connectPaymentsDb(databaseUrls.payments);
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createPaymentsActivities(db, options.paymentProvider)));
        break;
      }
      case 'shipping': {
        const db = connectShippingDb(databaseUrls.shipping);
        disconnects.push(() => db.$disconnect());
        workers.push(await serviceWorker(role, createShippingActivities(db)));
        break;
      }
    }
  }

  let running: Promise<void> | undefined;
  return {
    roles: options.roles,
    run() {
      running ??= Promise.all(workers.map((worker) => worker.run())).then(async () => {
        await Promise.all(disconnects.map((disconnect) => disconnect()));
      });
      return running;
    },
    async shutdown() {
      for (const worker of workers) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      }
      await running;
    },
  };
}
