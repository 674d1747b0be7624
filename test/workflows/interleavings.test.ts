// Messages and timers in one workflow task. With the saga's worker stopped, a timer fires on the server and
// an update (or two) is sent; when the worker comes back, its first workflow task carries both, as it does
// after a worker crash. Whatever the order in which the workflow sees them, an update that was accepted
// must take effect, and one that cannot take effect must be refused.
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { approveOrder, cancelOrder, getStatus, rejectOrder, type OrderState } from '../../src/workflows/definitions';
import { POLICY, SagaTestEnv, type SagaHandle } from '../support/saga-test-env';

/** Timers short enough to fire in real time while the saga's worker is down. */
const SHORT = { ...POLICY, approvalTimeout: '2 seconds', dispatchDelay: '2 seconds' };

/** Settles an update into what the caller was told: accepted (with the state) or refused (with the reason). */
async function outcomeOf(update: Promise<OrderState>): Promise<{ accepted: true } | { accepted: false; reason: string }> {
  try {
    await update;
    return { accepted: true };
  } catch (error) {
    assert.ok(error instanceof WorkflowUpdateFailedError, `unexpected error: ${String(error)}`);
    return { accepted: false, reason: error.cause?.message ?? '' };
  }
}

describe('OrderSaga: messages and timers in the same workflow task (time-skipping)', function () {
  let saga: SagaTestEnv;

  before(async function () {
    saga = await SagaTestEnv.start('mix');
  });

  after(async function () {
    await saga?.stop();
  });

  beforeEach(function () {
    saga.reset();
  });

  /**
   * With the saga's worker down: lets the short timers of SHORT fire (in real time: the test server skips time
   * only while a client awaits a result, and never past a pending workflow task), sends the updates, then
   * starts the worker.
   */
  async function deliverTogether(send: () => Promise<unknown>[]): Promise<void> {
    await saga.stopSagaWorker();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const pending = send();
    // Let the update requests reach the server before a worker can poll the workflow task.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await saga.startSagaWorker();
    await Promise.allSettled(pending);
  }

  async function untilDispatchWindow(policy = SHORT): Promise<SagaHandle> {
    const handle = await saga.start(undefined, policy);
    await saga.waitForStatus(handle, 'AWAITING_DISPATCH');
    return handle;
  }

  it('a cancellation accepted as the dispatch timer fires compensates; it is never accepted and then shipped', async function () {
    const handle = await untilDispatchWindow();
    let cancel!: Promise<OrderState>;
    await deliverTogether(() => [(cancel = handle.executeUpdate(cancelOrder, { args: [{ reason: 'changed my mind' }] }))]);
    const told = await outcomeOf(cancel);
    const result = await handle.result();
    if (told.accepted) {
      assert.equal(result.status, 'CANCELLED', 'an accepted cancellation compensates');
      assert.deepEqual(result.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
      assert.ok(!saga.services.calls.includes('dispatchShipment'), 'nothing was dispatched');
    } else {
      assert.match(told.reason, /can no longer be cancelled/);
      assert.equal(result.status, 'COMPLETED');
    }
    // In this interleaving the cancellation reaches the workflow while it is still before the point of no return.
    assert.ok(told.accepted, 'the update was validated before the saga passed the point of no return');
  });

  it('an approval accepted as the approval deadline fires counts', async function () {
    const handle = await saga.start([{ sku: 'PRICEY', quantity: 1 }], SHORT);
    await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
    let approve!: Promise<OrderState>;
    await deliverTogether(() => [(approve = handle.executeUpdate(approveOrder, { args: [{ manager: 'maria' }] }))]);
    const told = await outcomeOf(approve);
    const result = await handle.result();
    assert.ok(told.accepted, 'the approval was validated while the order awaited approval');
    assert.equal(result.status, 'COMPLETED', `an accepted approval is honoured (got ${result.status}: ${result.failureReason})`);
    assert.ok(result.completedSteps.includes('APPROVED'));
  });

  it('of two manager decisions in one workflow task, the first wins and the second is refused', async function () {
    const handle = await saga.start([{ sku: 'PRICEY', quantity: 1 }]);
    await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
    let approve!: Promise<OrderState>;
    let reject!: Promise<OrderState>;
    await deliverTogether(() => {
      approve = handle.executeUpdate(approveOrder, { args: [{ manager: 'maria' }] });
      reject = handle.executeUpdate(rejectOrder, { args: [{ manager: 'mallory', note: 'changed my mind' }] });
      return [approve, reject];
    });
    const told = [await outcomeOf(approve), await outcomeOf(reject)];
    assert.equal(told.filter((outcome) => outcome.accepted).length, 1, `exactly one decision is accepted: ${JSON.stringify(told)}`);
    const refused = told.find((outcome) => !outcome.accepted) as { reason: string };
    assert.match(refused.reason, /already (approved|rejected)|not awaiting approval/);
    const result = await handle.result();
    const approvedWon = told[0].accepted;
    assert.equal(result.status, approvedWon ? 'COMPLETED' : 'REJECTED', 'the saga follows the decision that was accepted');
  });

  it('a cancellation sent while the saga compensates is refused, and the status says it is not cancellable', async function () {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    saga.services.behaviours.set('voidPayment', () => held);
    const handle = await untilDispatchWindow(POLICY);
    await handle.executeUpdate(cancelOrder, { args: [{ reason: 'first' }] });
    const compensating = await saga.waitForStatus(handle, 'COMPENSATING');
    assert.equal(compensating.cancellable, false, 'cancellable is false while compensating');
    const second = await outcomeOf(handle.executeUpdate(cancelOrder, { args: [{ reason: 'second' }] }));
    assert.equal(second.accepted, false);
    release();
    const result = await handle.result();
    assert.equal(result.status, 'CANCELLED');
    assert.equal(result.failureReason, 'first');
    assert.equal((await handle.query(getStatus)).cancellable, false);
  });

  it('after a worker restart in the dispatch window, a replayed saga still compensates an accepted cancellation', async function () {
    const handle = await untilDispatchWindow(POLICY);
    await saga.stopSagaWorker();
    await saga.startSagaWorker();
    await handle.executeUpdate(cancelOrder, { args: [{ reason: 'after restart' }] });
    const result = await handle.result();
    assert.equal(result.status, 'CANCELLED');
    assert.ok(!saga.services.calls.includes('dispatchShipment'));
    assert.equal(POLICY.dispatchDelay, '1 hour');
  });
});
