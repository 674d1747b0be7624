// Records the histories the replay test checks (`npm run record-histories`). Re-record only on purpose:
// a recorded history stands for the workflows already running in production, and new workflow code must
// still replay it. Runs on the time-skipping server with the in-memory services of the workflow tests.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { TASK_QUEUES } from '../../src/config';
import { ensureSearchAttributes } from '../../src/worker/search-attributes';
import { approveOrder, cancelOrder, getStatus } from '../../src/workflows/definitions';
import { OrderSaga } from '../../src/workflows/order-saga';
import { FakeServices } from '../support/fake-services';
import { createTimeSkippingEnv, workflowBundle } from '../support/temporal';

const POLICY = { approvalThresholdCents: 100_000, approvalTimeout: '24 hours', paymentConfirmationTimeout: '2 hours', dispatchDelay: '1 hour' };

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const env = await createTimeSkippingEnv();
  await ensureSearchAttributes(env.connection, 'default');
  const services = new FakeServices(env.client);
  const connection = env.nativeConnection;
  const workers = await Promise.all([
    Worker.create({ connection, taskQueue: TASK_QUEUES.saga, workflowBundle: await workflowBundle() }),
    Worker.create({ connection, taskQueue: TASK_QUEUES.orders, activities: services.orders() }),
    Worker.create({ connection, taskQueue: TASK_QUEUES.inventory, activities: services.inventory() }),
    Worker.create({ connection, taskQueue: TASK_QUEUES.payments, activities: services.payments() }),
    Worker.create({ connection, taskQueue: TASK_QUEUES.shipping, activities: services.shipping() }),
  ]);
  const running = Promise.all(workers.map((worker) => worker.run()));

  const scenarios: Record<string, { lines: { sku: string; quantity: number }[]; drive?: (orderId: string) => Promise<void> }> = {
    // Every forward step, the confirmation signal and the dispatch timer.
    'completed-order': { lines: [{ sku: 'CHEAP', quantity: 2 }] },
    // An approval update, then a cancellation update while awaiting dispatch: three compensations.
    'approved-then-cancelled-order': {
      lines: [{ sku: 'PRICEY', quantity: 1 }],
      drive: async (orderId) => {
        const handle = env.client.workflow.getHandle(orderId);
        const until = async (status: string) => {
          while ((await handle.query(getStatus)).status !== status) await new Promise((resolve) => setTimeout(resolve, 25));
        };
        await until('AWAITING_APPROVAL');
        await handle.executeUpdate(approveOrder, { args: [{ manager: 'recorder' }] });
        await until('AWAITING_DISPATCH');
        await handle.executeUpdate(cancelOrder, { args: [{ reason: 'recorded cancellation' }] });
      },
    },
  };
  for (const [name, scenario] of Object.entries(scenarios)) {
    const orderId = `ord_replay_${name}`;
    const handle = await env.client.workflow.start(OrderSaga, {
      workflowId: orderId,
      taskQueue: TASK_QUEUES.saga,
      args: [{ orderId, customerId: 'cust-replay', lines: scenario.lines, policy: POLICY }],
    });
    await scenario.drive?.(orderId);
    const result = await handle.result();
    const file = path.join(__dirname, 'histories', `${name}.json`);
    writeFileSync(file, historyToJSON(await handle.fetchHistory()) + '\n');
    console.log(`${name}: ${result.status}, history written to ${path.relative(process.cwd(), file)}`);
  }
  workers.forEach((worker) => worker.shutdown());
  await running;
  await env.teardown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
