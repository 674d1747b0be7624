// The OrderStatus search attribute (what the Web UI lists and filters orders by), on the time-skipping server:
// written where a saga starts to wait, needs a person, compensates or ends; the steps between two waits keep the
// status before them, except one that asks a person to act, which goes as soon as the act is done.
import assert from 'node:assert/strict';
import { Refusal } from '../../src/domain';
import { approveOrder, resolveAttention } from '../../src/workflows/definitions';
import { failuresForGood, refusal } from '../support/fake-services';
import { listedOrderStatuses } from '../support/history';
import { SagaTestEnv, type SagaHandle } from '../support/saga-test-env';

const listedStatuses = async (handle: SagaHandle) => listedOrderStatuses(await handle.fetchHistory());

describe('OrderSaga: the OrderStatus search attribute (time-skipping)', function () {
  let saga: SagaTestEnv;

  before(async function () {
    saga = await SagaTestEnv.start('status_attribute');
  });

  after(async function () {
    await saga?.stop();
  });

  beforeEach(function () {
    saga.reset();
  });

  it('lists a completed order at its two waits and its end: three writes, none for the steps between', async function () {
    const handle = await saga.start();
    assert.equal((await handle.result()).status, 'COMPLETED');
    assert.deepEqual(await listedStatuses(handle), ['AWAITING_PAYMENT_CONFIRMATION', 'AWAITING_DISPATCH', 'COMPLETED']);
  });

  it('takes an approved order off AWAITING_APPROVAL at once, not at its next wait', async function () {
    const handle = await saga.start([{ sku: 'PRICEY', quantity: 1 }]);
    await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
    await handle.executeUpdate(approveOrder, { args: [{ manager: 'test' }] });
    assert.equal((await handle.result()).status, 'COMPLETED');
    assert.deepEqual(await listedStatuses(handle), ['AWAITING_APPROVAL', 'RESERVING_STOCK', 'AWAITING_PAYMENT_CONFIRMATION', 'AWAITING_DISPATCH', 'COMPLETED']);
  });

  it('takes a resumed order off NEEDS_ATTENTION at once, with the step it retries', async function () {
    saga.services.behaviours.set('reserveStock', failuresForGood(1));
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await handle.executeUpdate(resolveAttention, { args: [{ action: 'retry', operator: 'test' }] });
    assert.equal((await handle.result()).status, 'COMPLETED');
    assert.deepEqual(await listedStatuses(handle), ['NEEDS_ATTENTION', 'RESERVING_STOCK', 'AWAITING_PAYMENT_CONFIRMATION', 'AWAITING_DISPATCH', 'COMPLETED']);
  });

  it('lists a refused order as COMPENSATING, then REJECTED', async function () {
    saga.services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined));
    const handle = await saga.start();
    assert.equal((await handle.result()).status, 'REJECTED');
    assert.deepEqual(await listedStatuses(handle), ['COMPENSATING', 'REJECTED']);
  });
});
