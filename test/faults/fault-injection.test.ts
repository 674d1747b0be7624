// The saga with its real activities on real PostgreSQL, under injected faults: answers lost after a commit,
// duplicate deliveries, compensations that keep failing, random transient faults. Every order must still
// end fully done or fully undone, each effect applied once (checked by the consistency auditor).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { auditDatabases } from '../../src/audit/auditor';
import { TASK_QUEUES, type DatabaseUrls, type SagaPolicy } from '../../src/config';
import type { OrderLine } from '../../src/domain';
import { getProduct } from '../../src/activities/inventory/catalog';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { getCustomer } from '../../src/activities/payments/customers';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import { httpPaymentProvider, type PaymentProvider } from '../../src/activities/payments/provider';
import { freePort } from '../../src/local-stack/free-port';
import { startPaymentProvider, type RunningPaymentProvider } from '../../src/payment-provider/start';
import { parseFaultPlan, type FaultStats } from '../../src/worker/fault-injection';
import { ensureSearchAttributes } from '../../src/worker/search-attributes';
import { createWorkers, type WorkerSet } from '../../src/worker/workers';
import { getStatus, resolveAttention, type OrderState } from '../../src/workflows/definitions';
import { OrderSaga } from '../../src/workflows/order-saga';
import { createServiceDatabases } from '../support/postgres';
import { createTimeSkippingEnv, workflowBundle } from '../support/temporal';

// The saga learns the provider's confirmation by asking it (every minute of skipped time): nothing here
// receives the provider's webhooks.
const POLICY: SagaPolicy = {
  approvalThresholdCents: 10_000_000,
  approvalTimeout: '1h',
  paymentConfirmationTimeout: '1h',
  dispatchDelay: '1m',
  paymentCheckInterval: '1m',
};

describe('fault injection (real activities, PostgreSQL, time-skipping server)', function () {
  let env: TestWorkflowEnvironment;
  let urls: DatabaseUrls;
  let inventory: InventoryDb;
  let payments: PaymentsDb;
  let sandbox: RunningPaymentProvider;
  let provider: PaymentProvider;
  let providerDir: string;
  let sequence = 0;

  before(async function () {
    env = await createTimeSkippingEnv();
    await ensureSearchAttributes(env.connection, 'default');
    urls = await createServiceDatabases('faults');
    inventory = connectInventoryDb(urls.inventory);
    payments = connectPaymentsDb(urls.payments);
    // The real sandbox provider, confirming every authorization at once; its webhooks go nowhere.
    providerDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-faults-provider-'));
    sandbox = await startPaymentProvider({
      dataDir: providerDir,
      apiKey: 'faults-provider-key',
      webhookSecret: 'faults-webhook-secret',
      callbackUrl: `http://127.0.0.1:${await freePort()}/payments/callback`,
      confirmDelayMs: 0,
      log: () => {},
    });
    provider = httpPaymentProvider({ url: sandbox.url, apiKey: 'faults-provider-key' });
  });

  after(async function () {
    await inventory?.$disconnect();
    await payments?.$disconnect();
    await sandbox?.stop();
    if (providerDir) rmSync(providerDir, { recursive: true, force: true });
    await env?.teardown();
  });

  /** The auditor as `npm run audit` runs it: databases, workflows and the provider's records. */
  const audit = () => auditDatabases(urls, { temporal: env.client, provider });

  /** Runs orders to their end with workers that inject the given faults. */
  async function runOrders(
    spec: string,
    orders: { customerId: string; lines: OrderLine[] }[],
    random?: () => number,
    duringEach?: (handle: WorkflowHandle<typeof OrderSaga>) => Promise<void>,
  ) {
    const stats: FaultStats = { injectedFailures: 0, duplicatedCalls: 0 };
    const plan = parseFaultPlan(spec);
    const workers: WorkerSet = await createWorkers({
      connection: env.nativeConnection,
      namespace: 'default',
      roles: ['saga', 'orders', 'inventory', 'payments', 'shipping'],
      databaseUrls: urls,
      paymentProvider: provider,
      workflowBundle: await workflowBundle(),
      // A seeded generator makes the injected faults repeatable, so a failure can be replayed.
      faults: { plan, stats, random },
    });
    const running = workers.run();
    try {
      // One order at a time: the time-skipping test server mishandles its time lock when several
      // workflows' activities fail at once ("Unbalanced lock and unlock calls").
      const results: OrderState[] = [];
      for (const order of orders) {
        const orderId = `ord_fault_${++sequence}`;
        const handle = await env.client.workflow.start(OrderSaga, {
          workflowId: orderId,
          taskQueue: TASK_QUEUES.saga,
          args: [{ orderId, ...order, policy: POLICY }],
        });
        await duringEach?.(handle);
        results.push(await handle.result());
      }
      return { results, stats };
    } finally {
      await workers.shutdown();
      await running;
    }
  }

  const stock = async (sku: string) => (await getProduct(inventory, sku))!.onHand;
  const creditUsed = async (id: string) => (await getCustomer(payments, id))!.creditUsedCents;

  it('applies a step once when its answer is lost after it committed (twice in a row)', async function () {
    const [stockBefore, creditBefore] = [await stock('KB-001'), await creditUsed('cust-alice')];
    const { results, stats } = await runOrders(
      'reserveStock:commit-then-fail=2;authorizePayment:commit-then-fail=2;scheduleShipment:commit-then-fail=2;capturePayment:commit-then-fail=2',
      [{ customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 3 }] }],
    );
    assert.equal(results[0].status, 'COMPLETED');
    assert.equal(stats.injectedFailures, 8);
    assert.equal(await stock('KB-001'), stockBefore - 3);
    assert.equal(await creditUsed('cust-alice'), creditBefore + 3 * 8_900);
    assert.equal((await audit()).violations, 0);
  });

  it('applies a step once when it commits and then times out', async function () {
    const stockBefore = await stock('MS-002');
    const { results } = await runOrders('reserveStock:commit-then-stall=1', [{ customerId: 'cust-dave', lines: [{ sku: 'MS-002', quantity: 5 }] }]);
    assert.equal(results[0].status, 'COMPLETED');
    assert.equal(await stock('MS-002'), stockBefore - 5, 'the timed-out attempt had committed; its retry took nothing more');
    const history = await env.client.workflow.getHandle(results[0].orderId).fetchHistory();
    const retried = history.events?.find((event) => (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    // The test server does not record the attempt's last failure; that a second attempt ran is what it shows.
    assert.ok(retried, 'the timed-out attempt was retried');
    assert.equal((await audit()).violations, 0);
  });

  it('completes compensations that fail again and again, and restores stock and credit', async function () {
    const stockBefore = await stock('MS-002');
    // Carol has no credit: the payment is refused, so the reservation (and the payment void) are compensated.
    const { results, stats } = await runOrders('releaseStock:fail-first=5;voidPayment:fail-first=4', [
      { customerId: 'cust-carol', lines: [{ sku: 'MS-002', quantity: 2 }] },
    ]);
    assert.equal(results[0].status, 'REJECTED');
    assert.deepEqual(results[0].compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.equal(stats.injectedFailures, 9);
    assert.equal(await stock('MS-002'), stockBefore);
    assert.equal(await creditUsed('cust-carol'), 0);
    assert.equal((await audit()).violations, 0);
  });

  it('leaves one effect when every activity is delivered twice', async function () {
    const [stockBefore, creditBefore] = [await stock('CB-005'), await creditUsed('cust-dave')];
    const { results, stats } = await runOrders('*:duplicate=1', [
      { customerId: 'cust-dave', lines: [{ sku: 'CB-005', quantity: 4 }] },
      { customerId: 'cust-bob', lines: [{ sku: 'LT-004', quantity: 1 }] }, // refused: too little credit
    ]);
    assert.deepEqual(results.map((r) => r.status), ['COMPLETED', 'REJECTED']);
    assert.ok(stats.duplicatedCalls >= 12, `duplicated ${stats.duplicatedCalls} calls`);
    assert.equal(await stock('CB-005'), stockBefore - 4);
    assert.equal(await creditUsed('cust-dave'), creditBefore + 4 * 900);
    assert.equal((await audit()).violations, 0);
  });

  it('ends every order consistently when 30 % of all activity attempts fail at random', async function () {
    let seed = 42;
    let draws = 0;
    const random = () => {
      draws++;
      return (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    };
    const orders = Array.from({ length: 12 }, (_, i) => ({
      customerId: ['cust-alice', 'cust-bob', 'cust-carol', 'cust-dave'][i % 4],
      lines: [{ sku: ['KB-001', 'MS-002', 'GPU-006'][i % 3], quantity: 1 + (i % 2) }],
    }));
    const { results, stats } = await runOrders('*:transient=0.3', orders, random);
    assert.ok(stats.injectedFailures > 10, `injected ${stats.injectedFailures} failures`);
    assert.ok(draws >= stats.injectedFailures, `the seeded generator decided every fault (${draws} draws)`);
    assert.ok(results.every((r) => r.status === 'COMPLETED' || r.status === 'REJECTED'));
    assert.ok(results.some((r) => r.status === 'COMPLETED') && results.some((r) => r.status === 'REJECTED'));
    const report = await audit();
    assert.equal(report.violations, 0, JSON.stringify(report.checks, null, 2));
    assert.equal(report.orders.inFlight, 0);
  });

  it('stops a saga whose compensation keeps failing in NEEDS_ATTENTION; the auditor flags it until an operator resumes it', async function () {
    const stockBefore = await stock('KB-001');
    const flagged: string[] = [];
    // Carol has no credit: the payment is refused, and releasing the reservation hits a "bug" 5 times (the
    // worker gives up on an unexpected error after 5 attempts), so the saga needs an operator.
    const { results } = await runOrders('releaseStock:broken=5', [{ customerId: 'cust-carol', lines: [{ sku: 'KB-001', quantity: 2 }] }], undefined, async (handle) => {
      let state = await handle.query(getStatus);
      for (let i = 0; i < 600 && state.status !== 'NEEDS_ATTENTION'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        state = await handle.query(getStatus);
      }
      assert.equal(state.status, 'NEEDS_ATTENTION');
      assert.equal(state.attention?.step, 'releaseStock');
      assert.equal(state.attention?.errorType, 'UnexpectedActivityError');
      assert.match(state.attention?.error ?? '', /failed 5 times with an unexpected error: InjectedBug/);
      assert.deepEqual(state.pendingCompensations, ['STOCK_RELEASED']);
      assert.equal(await stock('KB-001'), stockBefore - 2, 'the reservation is still held');
      // The status query says NEEDS_ATTENTION as soon as the saga stops; the orders service records it (what the auditor
      // reads) in the recordAttention activity right after, which a loaded machine may not have run yet.
      let report = await audit();
      for (let i = 0; i < 100 && report.orders.needsAttention === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        report = await audit();
      }
      for (const check of report.checks) if (check.violations > 0) flagged.push(check.name);
      assert.equal(report.orders.needsAttention, 1);
      await handle.executeUpdate(resolveAttention, { args: [{ action: 'retry', operator: 'ops-test', note: 'bug fixed' }] });
    });
    assert.equal(results[0].status, 'REJECTED');
    assert.deepEqual(results[0].compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.deepEqual(flagged, ['no saga waits for an operator (NEEDS_ATTENTION)'], 'flagged while it waited, and only for that');
    assert.equal(await stock('KB-001'), stockBefore);
    const after = await audit();
    assert.equal(after.violations, 0, JSON.stringify(after.checks, null, 2));
    assert.equal(after.orders.needsAttention, 0);
  });

  it('refuses a fault plan it cannot read', function () {
    assert.throws(() => parseFaultPlan('reserveStock:explode=1'), /cannot read/);
    assert.throws(() => parseFaultPlan('*:transient=1.5'), /cannot read/);
    assert.deepEqual(parseFaultPlan('*:transient=0.2; releaseStock:fail-first=3;releaseStock:delay=50;voidPayment:broken=2'), {
      '*': { transient: 0.2 },
      releaseStock: { failFirst: 3, delayMs: 50 },
      voidPayment: { broken: 2 },
    });
  });
});
