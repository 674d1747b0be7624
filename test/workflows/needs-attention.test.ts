// A step that fails for good without being a business refusal (a bug, a broken invariant): the saga stops in
// NEEDS_ATTENTION, says which step failed and which compensations are still to run, records it in the orders
// service, and waits for an operator's decision. It never fails the workflow, never drops a compensation and
// never pretends the order was rejected while something is still held.
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Refusal } from '../../src/domain';
import { cancelOrder, OrderStatusAttribute, resolveAttention, type AttentionResolution } from '../../src/workflows/definitions';
import { failuresForGood, refusal } from '../support/fake-services';
import { SagaTestEnv, type SagaHandle } from '../support/saga-test-env';

describe('OrderSaga: NEEDS_ATTENTION and the operator (time-skipping)', function () {
  let saga: SagaTestEnv;

  before(async function () {
    saga = await SagaTestEnv.start('attn');
  });

  after(async function () {
    await saga?.stop();
  });

  beforeEach(function () {
    saga.reset();
  });

  const resolve = (handle: SagaHandle, action: AttentionResolution['action'], note?: string) =>
    handle.executeUpdate(resolveAttention, { args: [{ action, operator: 'ops-anna', note }] });

  async function refused(promise: Promise<unknown>, reason: RegExp): Promise<void> {
    await assert.rejects(promise, (error: unknown) => {
      assert.ok(error instanceof WorkflowUpdateFailedError);
      assert.match(error.cause?.message ?? '', reason);
      return true;
    });
  }

  it('a compensation that fails for good waits with the rest of the stack; a retry completes it', async function () {
    saga.services.behaviours.set('scheduleShipment', refusal(Refusal.ShipmentRefused));
    saga.services.behaviours.set('voidPayment', failuresForGood(1));
    const handle = await saga.start();
    const stuck = await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    assert.equal(stuck.attention?.phase, 'COMPENSATION');
    assert.equal(stuck.attention?.step, 'voidPayment');
    assert.match(stuck.attention?.error ?? '', /failure for good 1 of 1/);
    assert.deepEqual(stuck.attention?.allowedActions, ['retry', 'resolved-manually']);
    assert.deepEqual(stuck.compensations, ['SHIPMENT_CANCELLED'], 'what was undone so far');
    assert.deepEqual(stuck.pendingCompensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED'], 'what is still to undo, next first');
    assert.equal(stuck.cancellable, false);
    assert.ok(!saga.services.calls.includes('releaseStock'), 'compensations below the stuck one wait their turn');
    assert.ok(!saga.services.calls.includes('closeOrder'), 'the order is not closed, and not REJECTED, while something is held');
    assert.equal(saga.services.attentionRecords.at(-1)?.step, 'voidPayment', 'the orders service records the attention');
    const description = await handle.describe();
    assert.equal(description.status.name, 'RUNNING', 'the workflow has not failed');
    assert.equal(description.typedSearchAttributes.get(OrderStatusAttribute), 'NEEDS_ATTENTION');

    await refused(resolve(handle, 'abort'), /"abort" is not possible for voidPayment/);
    await resolve(handle, 'retry', 'provider fixed');
    const result = await handle.result();
    assert.equal(result.status, 'REJECTED');
    assert.deepEqual(result.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.deepEqual(result.pendingCompensations, []);
    assert.deepEqual(result.operatorActions, ['voidPayment: retry by ops-anna (provider fixed)']);
    assert.equal(saga.services.attentionRecords.at(-1), null, 'the attention is cleared once resumed');
    assert.equal(saga.services.closed?.status, 'REJECTED');
    assert.equal(saga.services.attempts('voidPayment'), 2);
  });

  it('an operator who did a compensation by hand lets the saga go on with the rest', async function () {
    saga.services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined));
    saga.services.behaviours.set('releaseStock', failuresForGood(1_000));
    const handle = await saga.start();
    const stuck = await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    assert.deepEqual(stuck.pendingCompensations, ['STOCK_RELEASED']);
    await resolve(handle, 'resolved-manually', 'restocked by hand');
    const result = await handle.result();
    assert.equal(result.status, 'REJECTED');
    assert.deepEqual(result.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED_MANUALLY']);
    assert.deepEqual(saga.services.closed?.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED_MANUALLY']);
  });

  it('a forward step that fails for good waits; an abort compensates what may have been done and rejects', async function () {
    saga.services.behaviours.set('reserveStock', failuresForGood(1_000, 'UnexpectedActivityError'));
    const handle = await saga.start();
    const stuck = await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    assert.equal(stuck.attention?.phase, 'FORWARD');
    assert.equal(stuck.attention?.step, 'reserveStock');
    assert.equal(stuck.attention?.errorType, 'UnexpectedActivityError');
    assert.deepEqual(stuck.attention?.allowedActions, ['retry', 'abort']);
    assert.deepEqual(stuck.pendingCompensations, ['STOCK_RELEASED'], 'the reservation may have committed: its undo is registered');
    await refused(resolve(handle, 'resolved-manually'), /not possible for reserveStock/);
    await resolve(handle, 'abort', 'bug ticket 123');
    const result = await handle.result();
    assert.equal(result.status, 'REJECTED');
    assert.match(result.failureReason ?? '', /aborted by an operator after reserveStock failed/);
    assert.deepEqual(result.compensations, ['STOCK_RELEASED']);
    assert.ok(!saga.services.calls.includes('authorizePayment'));
  });

  it('a forward step retried by the operator completes the order', async function () {
    saga.services.behaviours.set('scheduleShipment', failuresForGood(2));
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await resolve(handle, 'retry');
    // It fails for good once more: the saga stops again rather than guessing.
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await resolve(handle, 'retry');
    const result = await handle.result();
    assert.equal(result.status, 'COMPLETED');
    assert.equal(result.operatorActions.length, 2);
    assert.deepEqual(result.compensations, []);
  });

  it('a customer may still cancel while a forward step waits for an operator', async function () {
    saga.services.behaviours.set('scheduleShipment', failuresForGood(1_000));
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await handle.executeUpdate(cancelOrder, { args: [{ reason: 'waited too long' }] });
    const result = await handle.result();
    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(result.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.equal(result.attention, null);
  });

  it('past the point of no return a failed step is retried or done by hand, never compensated', async function () {
    saga.services.behaviours.set('capturePayment', failuresForGood(1_000, 'PaymentNotCapturable'));
    const handle = await saga.start();
    await saga.env.sleep('2 hours');
    const stuck = await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    assert.deepEqual(stuck.attention?.allowedActions, ['retry', 'resolved-manually']);
    assert.equal(stuck.cancellable, false);
    assert.deepEqual(stuck.pendingCompensations, [], 'nothing is undone past the point of no return, so nothing shows as pending');
    await refused(handle.executeUpdate(cancelOrder, { args: [{ reason: 'too late' }] }), /can no longer be cancelled/);
    await resolve(handle, 'resolved-manually', 'captured in the provider dashboard');
    const result = await handle.result();
    assert.equal(result.status, 'COMPLETED');
    assert.deepEqual(result.completedSteps.slice(-3), ['SHIPMENT_DISPATCHED', 'PAYMENT_CAPTURED_MANUALLY', 'STOCK_CONSUMED']);
  });

  it('refuses an operator decision when the saga is not waiting for one', async function () {
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'AWAITING_DISPATCH');
    await refused(resolve(handle, 'retry'), /not waiting for an operator/);
    await handle.executeUpdate(cancelOrder, { args: [{ reason: 'cleanup' }] });
    assert.equal((await handle.result()).status, 'CANCELLED');
  });
});
