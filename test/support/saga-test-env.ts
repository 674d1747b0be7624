// The time-skipping test server with OrderSaga on its task queue and in-memory fakes for the four services.
// The saga's worker can be stopped and started again on its own, so that a test can make several things
// (a timer firing, an update, a signal) land in one workflow task, as after a worker crash.
import { Client, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { TASK_QUEUES, type SagaPolicy } from '../../src/config';
import type { OrderLine } from '../../src/domain';
import { createWorkerMetrics, type WorkerMetrics } from '../../src/observability/metrics';
import { sagaMetricsSinks } from '../../src/observability/temporal';
import { clientTracingInterceptors, workflowTracingSinks } from '../../src/observability/temporal-tracing';
import type { Tracing } from '../../src/observability/tracing';
import { ensureSearchAttributes } from '../../src/worker/search-attributes';
import { getStatus, type OrderState, type OrderStatus } from '../../src/workflows/definitions';
import { OrderSaga } from '../../src/workflows/order-saga';
import { FakeServices } from './fake-services';
import { createTimeSkippingEnv, workflowBundle } from './temporal';

export const POLICY: SagaPolicy = {
  approvalThresholdCents: 100_000,
  approvalTimeout: '24 hours',
  paymentConfirmationTimeout: '2 hours',
  dispatchDelay: '1 hour',
  paymentCheckInterval: '20 minutes',
};

export type SagaHandle = WorkflowHandle<typeof OrderSaga>;

export class SagaTestEnv {
  /** The fakes the activities delegate to; replace them between tests (`reset()`). */
  services!: FakeServices;
  private serviceWorkers: Worker[] = [];
  private sagaWorker?: Worker;
  private running: Promise<unknown>[] = [];
  private sequence = 0;
  /** What the saga reported through its metric sinks, across saga worker restarts. */
  readonly metrics: WorkerMetrics = createWorkerMetrics();

  private constructor(
    readonly env: TestWorkflowEnvironment,
    private readonly prefix: string,
    private readonly tracing: Tracing | undefined,
  ) {}

  /**
   * `tracing`: the saga's worker exports the workflow's spans there (as a worker with tracing on), and tracedClient()
   * sends the active trace context with what it starts and updates (as the API does).
   */
  static async start(prefix: string, { tracing }: { tracing?: Tracing } = {}): Promise<SagaTestEnv> {
    const env = await createTimeSkippingEnv();
    await ensureSearchAttributes(env.connection, 'default');
    const saga = new SagaTestEnv(env, prefix, tracing);
    saga.reset();
    // The activities delegate to whichever fakes the current test installed.
    const delegate = <T extends object>(pick: () => T) =>
      Object.fromEntries(
        Object.keys(pick()).map((name) => [name, (...args: unknown[]) => (pick() as Record<string, (...a: unknown[]) => unknown>)[name](...args)]),
      );
    const connection = env.nativeConnection;
    saga.serviceWorkers = await Promise.all([
      Worker.create({ connection, taskQueue: TASK_QUEUES.orders, activities: delegate(() => saga.services.orders()) }),
      Worker.create({ connection, taskQueue: TASK_QUEUES.inventory, activities: delegate(() => saga.services.inventory()) }),
      Worker.create({ connection, taskQueue: TASK_QUEUES.payments, activities: delegate(() => saga.services.payments()) }),
      Worker.create({ connection, taskQueue: TASK_QUEUES.shipping, activities: delegate(() => saga.services.shipping()) }),
    ]);
    saga.running.push(...saga.serviceWorkers.map((worker) => worker.run()));
    await saga.startSagaWorker();
    return saga;
  }

  reset(): void {
    this.services = new FakeServices(this.env.client);
  }

  async startSagaWorker(): Promise<void> {
    // No sticky cache: the next workflow task of every saga goes to whichever saga worker polls, with its history.
    this.sagaWorker = await Worker.create({
      connection: this.env.nativeConnection,
      taskQueue: TASK_QUEUES.saga,
      workflowBundle: await workflowBundle(),
      maxCachedWorkflows: 0,
      // The saga's metric and tracing sinks, as every saga worker registers them (src/worker/workers.ts).
      sinks: { ...sagaMetricsSinks(this.metrics), ...workflowTracingSinks(this.tracing) },
    });
    this.running.push(this.sagaWorker.run());
  }

  /** Stops the saga's worker: workflow tasks wait on the server until startSagaWorker(). */
  async stopSagaWorker(): Promise<void> {
    const worker = this.sagaWorker;
    this.sagaWorker = undefined;
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    while (worker && worker.getState() !== 'STOPPED' && worker.getState() !== 'FAILED') await new Promise((resolve) => setTimeout(resolve, 10));
  }

  async stop(): Promise<void> {
    await this.stopSagaWorker();
    for (const worker of this.serviceWorkers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.allSettled(this.running);
    await this.env.teardown();
  }

  /** A client with the API's tracing interceptors (none when the environment has no tracing). */
  tracedClient(): Client {
    return new Client({ connection: this.env.connection, interceptors: { workflow: clientTracingInterceptors(this.tracing) } });
  }

  start(lines: OrderLine[] = [{ sku: 'CHEAP', quantity: 2 }], policy: SagaPolicy = POLICY, client: Client = this.env.client): Promise<SagaHandle> {
    const orderId = `ord_${this.prefix}_${++this.sequence}`;
    return client.workflow.start(OrderSaga, {
      workflowId: orderId,
      taskQueue: TASK_QUEUES.saga,
      args: [{ orderId, customerId: 'cust-test', clientId: 'client-test', lines, policy }],
    });
  }

  /** Polls the status query; queries do not let the test server skip time, so deadlines cannot fire meanwhile. */
  async waitForStatus(handle: SagaHandle, status: OrderStatus): Promise<OrderState> {
    for (let i = 0; i < 400; i++) {
      const state = await handle.query(getStatus);
      if (state.status === status) return state;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`order never reached ${status}; it is ${(await handle.query(getStatus)).status}`);
  }
}
