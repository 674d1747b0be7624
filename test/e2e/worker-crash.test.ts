// A worker killed with SIGKILL while an order waits in its dispatch window, as an operator reported it: the
// dispatch timer fires on the server while no worker runs, a cancel arrives, and a new worker process gets
// both in one workflow task, replaying the saga from its history. A cancel that was accepted must compensate;
// it is never accepted and then shipped. Real processes: the Temporal dev server, PostgreSQL, the sandbox
// provider, the API, and a `npm run worker` process the test kills.
// The worker runs as the image runs it: from a workflow bundle built beforehand (WORKFLOW_BUNDLE), and here with a
// cache of two sagas (WORKFLOW_CACHE_SIZE), so that sagas beyond it are evicted and replayed at their next task.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ManagedProcess } from '../../scripts/chaos/processes';
import { buildWorkflowBundle } from '../../src/worker/workflow-bundle';
import { cancelOrder, type OrderState } from '../../src/workflows/definitions';
import { TestStack } from '../support/stack';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DISPATCH_DELAY_MS = 8_000;
/** The worker's workflow cache: the SDK's smallest. */
const CACHED_SAGAS = 2;

describe('a worker killed in the dispatch window (SIGKILL, real processes)', function () {
  this.timeout(240_000);
  let system: TestStack;
  let worker: ManagedProcess;
  let logDir: string;
  let log: ReturnType<typeof ManagedProcess.logFile>;

  before(async function () {
    system = await TestStack.start('crash', { DISPATCH_DELAY: `${DISPATCH_DELAY_MS / 1000}s` }, { runWorkers: false });
    logDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-crash-'));
    log = ManagedProcess.logFile(path.join(logDir, 'worker.log'));
    const bundle = path.join(logDir, 'workflow-bundle.js');
    await buildWorkflowBundle(bundle);
    const env = { ...system.workerEnvironment(), WORKFLOW_BUNDLE: bundle, WORKFLOW_CACHE_SIZE: String(CACHED_SAGAS) };
    worker = new ManagedProcess('worker', 'src/worker/index.ts', env, /"msg":"polling /, log);
    await worker.start();
  });

  after(async function () {
    await worker?.stop();
    await system?.stop();
    log?.end();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  /** Whether the saga accepted a cancelOrder update, from its history (a refused update leaves no event). */
  async function cancelAccepted(orderId: string): Promise<boolean> {
    const history = await system.client.workflow.getHandle(orderId).fetchHistory();
    return (history.events ?? []).some((event) => event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === cancelOrder.name);
  }

  /** An order whose payment is confirmed, waiting in its dispatch window. */
  async function orderInDispatchWindow(): Promise<string> {
    const placed = await system.http('POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'CB-005', quantity: 1 }] });
    assert.equal(placed.status, 202, placed.text);
    const { orderId } = placed.body;
    await system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    await system.providerDecides(orderId, 'CONFIRMED');
    await system.waitForStatus(orderId, 'AWAITING_DISPATCH');
    return orderId;
  }

  it('a cancel delivered with the fired dispatch timer to a new worker compensates', async function () {
    const orderId = await orderInDispatchWindow();
    await worker.kill();
    // The dispatch timer fires on the server while no worker runs.
    await sleep(DISPATCH_DELAY_MS + 1_000);
    const handle = system.client.workflow.getHandle(orderId);
    const update = handle.executeUpdate(cancelOrder, { args: [{ reason: 'cancelled during the crash' }] }).then(
      (state: OrderState) => ({ accepted: true as const, state }),
      (error: unknown) => ({ accepted: false as const, error }),
    );
    // Let the update reach the server, so the new worker's first task carries the timer and the update together.
    await sleep(1_000);
    await worker.start();
    const outcome = await update;
    const result = (await handle.result()) as OrderState;
    assert.equal(await cancelAccepted(orderId), outcome.accepted, 'the history agrees with what the caller was told');
    if (outcome.accepted) {
      assert.equal(result.status, 'CANCELLED', `an accepted cancel must compensate, but the order ended ${result.status}`);
      assert.ok(!result.completedSteps.includes('SHIPMENT_DISPATCHED'), 'nothing was shipped');
      assert.deepEqual(result.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
    } else {
      assert.ok(outcome.error instanceof WorkflowUpdateFailedError, String(outcome.error));
      assert.equal(result.status, 'COMPLETED');
    }
    // The cancel reached the saga before it passed the point of no return: it is the one that is accepted.
    assert.equal(outcome.accepted, true, 'the cancel was validated while the saga still waited in its window');
  });

  it('after a restart, a cancel through the API tells the truth: 202 compensates, 409 ships, 504 says to check', async function () {
    const orderId = await orderInDispatchWindow();
    await worker.kill();
    await worker.start();
    const cancel = await system.http('POST', `/orders/${orderId}/cancel`, { reason: 'changed my mind' });
    const result = (await system.client.workflow.getHandle(orderId).result()) as OrderState;
    const accepted = await cancelAccepted(orderId);
    // Whatever the API answered, a cancel the saga accepted compensated, and one it did not accept did not.
    assert.equal(result.status, accepted ? 'CANCELLED' : 'COMPLETED');
    if (cancel.status === 202) assert.equal(accepted, true, '202 means it will happen');
    else if (cancel.status === 409) assert.equal(accepted, false, '409 means it did not happen');
    else {
      // The new worker may take over the saga only after the dead one's sticky queue times out: the update's
      // answer can be late, and the API says the outcome is unknown and where to look, never a 500.
      assert.equal(cancel.status, 504, cancel.text);
      assert.equal(cancel.body.error.code, 'outcome_unknown');
      assert.equal(cancel.body.error.statusUrl, `/orders/${orderId}`);
    }
  });

  it('sagas beyond the worker\'s cache are evicted, replayed at their next task, and complete as they would have', async function () {
    const placed = await Promise.all(
      Array.from({ length: 3 * CACHED_SAGAS }, () => system.http('POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'CB-005', quantity: 1 }] })),
    );
    const orderIds = placed.map((answer) => {
      assert.equal(answer.status, 202, answer.text);
      return answer.body.orderId as string;
    });
    await Promise.all(orderIds.map((orderId) => system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION')));
    await Promise.all(orderIds.map((orderId) => system.providerDecides(orderId, 'CONFIRMED')));
    const results = (await Promise.all(orderIds.map((orderId) => system.client.workflow.getHandle(orderId).result()))) as OrderState[];
    assert.deepEqual(results.map((result) => result.status), orderIds.map(() => 'COMPLETED'));
    // More sagas were open than the cache holds: the worker evicted some, and replayed them from their histories.
    const metrics = await (await fetch(`http://127.0.0.1:${system.workerEnvironment().SERVICE_API_PORT}/metrics`)).text();
    // Core's counter, absent from the scrape until the first eviction.
    const evictions = Number(/^temporal_sticky_cache_total_forced_eviction\S* (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(evictions > 0, `forced evictions: ${evictions}`);
  });

  it('the worker loads the workflow bundle it is given instead of bundling at its start', async function () {
    // The log file is written through a stream: the line the worker was seen polling with may be on its way.
    let lines = '';
    for (let waited = 0; waited < 5_000 && !/"msg":"polling /.test(lines); waited += 100) {
      lines = readFileSync(path.join(logDir, 'worker.log'), 'utf8');
      await sleep(100);
    }
    assert.match(lines, /"msg":"polling /, 'the worker started (and logged at INFO)');
    // The SDK logs this line (INFO) when it bundles the workflows itself.
    assert.doesNotMatch(lines, /Workflow bundle created/);
  });
});
