// OrderSaga on the time-skipping test server: the order of steps and compensations, retries, deadlines of
// hours that pass in seconds, cancellation on both sides of the point of no return, and the status query.
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Refusal } from '../../src/domain';
import { approveOrder, AWAIT_DECISION_UPDATE_ID, awaitDecision, cancelOrder, getStatus, OrderStatusAttribute, rejectOrder } from '../../src/workflows/definitions';
import { FakeServices, refusal, transientFailures } from '../support/fake-services';
import { POLICY, SagaTestEnv, type SagaHandle } from '../support/saga-test-env';

const FORWARD = ['priceOrder', 'createOrder', 'reserveStock', 'authorizePayment', 'scheduleShipment'];

describe('OrderSaga workflow (time-skipping)', function () {
  let saga: SagaTestEnv;
  let env: TestWorkflowEnvironment;
  let services: FakeServices;

  before(async function () {
    saga = await SagaTestEnv.start('wf');
    env = saga.env;
  });

  after(async function () {
    await saga?.stop();
  });

  beforeEach(function () {
    saga.reset();
    services = saga.services;
  });

  const start = (...args: Parameters<SagaTestEnv['start']>) => saga.start(...args);
  const waitForStatus = (handle: SagaHandle, status: Parameters<SagaTestEnv['waitForStatus']>[1]) => saga.waitForStatus(handle, status);

  it('completes the happy path: every step once, in order, no compensation', async function () {
    const handle = await start();
    const result = await handle.result();
    assert.equal(result.status, 'COMPLETED');
    assert.deepEqual(services.steps(), [...FORWARD, 'dispatchShipment', 'capturePayment', 'consumeReservation', 'closeOrder']);
    assert.deepEqual(result.completedSteps, [
      'ORDER_CREATED',
      'STOCK_RESERVED',
      'PAYMENT_AUTHORIZED',
      'PAYMENT_CONFIRMED',
      'SHIPMENT_SCHEDULED',
      'SHIPMENT_DISPATCHED',
      'PAYMENT_CAPTURED',
      'STOCK_CONSUMED',
    ]);
    assert.deepEqual(result.compensations, []);
    assert.equal(result.totalCents, 2_000);
    assert.equal(result.approvalRequired, false);
    assert.equal(result.cancellable, false);
    assert.equal(services.closed?.status, 'COMPLETED');
    // The query still answers once the saga has ended.
    assert.equal((await handle.query(getStatus)).status, 'COMPLETED');
  });

  const failingSteps: { step: string; refusal: ReturnType<typeof refusal>; compensations: string[]; undo: string[] }[] = [
    { step: 'priceOrder', refusal: refusal(Refusal.UnknownSku), compensations: [], undo: [] },
    { step: 'reserveStock', refusal: refusal(Refusal.OutOfStock), compensations: ['STOCK_RELEASED'], undo: ['releaseStock'] },
    {
      step: 'authorizePayment',
      refusal: refusal(Refusal.PaymentDeclined),
      compensations: ['PAYMENT_VOIDED', 'STOCK_RELEASED'],
      undo: ['voidPayment', 'releaseStock'],
    },
    {
      step: 'scheduleShipment',
      refusal: refusal(Refusal.ShipmentRefused),
      compensations: ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED'],
      undo: ['cancelShipment', 'voidPayment', 'releaseStock'],
    },
  ];
  for (const { step, refusal: refuse, compensations, undo } of failingSteps) {
    it(`a refusal at ${step} runs exactly the compensations registered so far, in reverse, and ends REJECTED`, async function () {
      services.behaviours.set(step, refuse);
      const result = await (await start()).result();
      assert.equal(result.status, 'REJECTED');
      assert.match(result.failureReason ?? '', /\(test\)/);
      assert.deepEqual(result.compensations, compensations);
      const upTo = FORWARD.slice(0, FORWARD.indexOf(step) + 1);
      assert.deepEqual(services.steps(), [...upTo, ...undo, 'closeOrder']);
      assert.equal(services.attempts(step), 1, 'a business refusal is not retried');
      assert.deepEqual(services.closed?.compensations, compensations);
      assert.equal(services.closed?.status, 'REJECTED');
    });
  }

  it('a payment declined by the provider voids the payment and releases the stock', async function () {
    services.providerAnswer = 'DECLINED';
    const result = await (await start()).result();
    assert.equal(result.status, 'REJECTED');
    assert.match(result.failureReason ?? '', /declined by the provider: card blocked/);
    assert.deepEqual(result.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
    assert.ok(!services.calls.includes('scheduleShipment'));
  });

  it('a saga started again for an order that ended under another saga answers with its record and runs nothing', async function () {
    // As when Temporal has forgotten the first saga (retention) and a replayed request starts a second one.
    services.endedBefore = {
      status: 'REJECTED',
      failureReason: 'out of stock: CHEAP (the first saga)',
      completedSteps: ['ORDER_CREATED'],
      compensations: ['STOCK_RELEASED'],
      totalCents: 3_000,
      lines: [{ sku: 'CHEAP', quantity: 3, unitPriceCents: 1_000 }],
    };
    const handle = await start();
    const result = await handle.result();
    assert.deepEqual(services.steps(), ['priceOrder', 'createOrder'], 'no step runs again, and the record is not closed again');
    assert.equal(services.created?.sagaRunId, (await handle.describe()).runId, 'the order is placed under the saga\'s first run id');
    assert.equal(result.status, 'REJECTED');
    assert.equal(result.failureReason, 'out of stock: CHEAP (the first saga)');
    assert.deepEqual(result.completedSteps, ['ORDER_CREATED']);
    assert.deepEqual(result.compensations, ['STOCK_RELEASED']);
    assert.deepEqual(result.lines, services.endedBefore.lines);
    assert.equal(result.totalCents, 3_000);
    assert.equal(result.cancellable, false);
    assert.equal((await handle.describe()).typedSearchAttributes.get(OrderStatusAttribute), 'REJECTED');
  });

  it('a saga started again that stops before createOrder (refused at pricing) learns at closeOrder that its order ended, and answers with the record', async function () {
    services.behaviours.set('priceOrder', refusal(Refusal.UnknownSku));
    services.endedBefore = {
      status: 'COMPLETED',
      failureReason: null,
      completedSteps: ['ORDER_CREATED', 'SHIPMENT_DISPATCHED'],
      compensations: [],
      totalCents: 2_000,
      lines: [{ sku: 'CHEAP', quantity: 2, unitPriceCents: 1_000 }],
    };
    const handle = await start();
    const result = await handle.result();
    assert.deepEqual(services.steps(), ['priceOrder', 'closeOrder']);
    assert.equal(services.closed, undefined, 'the record kept its end');
    assert.equal(result.status, 'COMPLETED', 'the record, not the refusal of this saga');
    assert.equal(result.failureReason, null);
    assert.deepEqual(result.completedSteps, ['ORDER_CREATED', 'SHIPMENT_DISPATCHED']);
    assert.equal((await handle.describe()).typedSearchAttributes.get(OrderStatusAttribute), 'COMPLETED');
  });

  it('retries a transient fault in a forward step instead of compensating', async function () {
    services.behaviours.set('reserveStock', transientFailures(3));
    const result = await (await start()).result();
    assert.equal(result.status, 'COMPLETED');
    assert.equal(services.attempts('reserveStock'), 4);
    assert.deepEqual(result.compensations, []);
  });

  it('retries a compensation that fails transiently until it succeeds, never skipping it', async function () {
    services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined));
    services.behaviours.set('releaseStock', transientFailures(4));
    const result = await (await start()).result();
    assert.equal(result.status, 'REJECTED');
    assert.equal(services.attempts('releaseStock'), 5);
    assert.deepEqual(result.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
  });

  describe('manager approval', function () {
    const pricey = [{ sku: 'PRICEY', quantity: 1 }];

    it('waits for approval above the threshold, shows it in the status query, and completes once approved', async function () {
      const handle = await start(pricey);
      const waiting = await waitForStatus(handle, 'AWAITING_APPROVAL');
      assert.equal(waiting.approvalRequired, true);
      assert.equal(waiting.totalCents, 500_000);
      assert.deepEqual(waiting.completedSteps, ['ORDER_CREATED']);
      assert.equal(waiting.cancellable, true);
      assert.ok(!services.calls.includes('reserveStock'), 'nothing is reserved before approval');

      await handle.executeUpdate(approveOrder, { args: [{ manager: 'maria' }] });
      const result = await handle.result();
      assert.equal(result.status, 'COMPLETED');
      assert.deepEqual(result.completedSteps.slice(0, 2), ['ORDER_CREATED', 'APPROVED']);
      const steps = services.steps();
      assert.ok(steps.indexOf('recordApproval') > steps.indexOf('createOrder') && steps.indexOf('recordApproval') < steps.indexOf('reserveStock'), steps.join());
      assert.deepEqual(services.approvals.map(({ approved, manager }) => ({ approved, manager })), [{ approved: true, manager: 'maria' }]);
    });

    it('ends REJECTED when the manager rejects, with nothing to compensate', async function () {
      const handle = await start(pricey);
      await waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(rejectOrder, { args: [{ manager: 'maria', note: 'too expensive' }] });
      const result = await handle.result();
      assert.equal(result.status, 'REJECTED');
      assert.equal(result.failureReason, 'rejected by maria: too expensive');
      assert.deepEqual(result.compensations, []);
      assert.deepEqual(services.steps(), ['priceOrder', 'createOrder', 'recordApproval', 'closeOrder']);
      assert.deepEqual(services.approvals, [{ orderId: services.approvals[0]?.orderId, approved: false, manager: 'maria', note: 'too expensive' }], 'the decision is recorded with the order');
    });

    it('ends REJECTED when no manager decides within the deadline (24 hours pass in test time)', async function () {
      const handle = await start(pricey);
      const startedAt = await env.currentTimeMs();
      const result = await handle.result();
      assert.equal(result.status, 'REJECTED');
      assert.match(result.failureReason ?? '', /no manager decision within 24 hours/);
      assert.ok((await env.currentTimeMs()) - startedAt >= 24 * 3600 * 1000, 'the deadline elapsed in workflow time');
    });

    it('refuses an approval when the order is not awaiting one', async function () {
      const handle = await start();
      await waitForStatus(handle, 'AWAITING_DISPATCH');
      await assert.rejects(handle.executeUpdate(approveOrder, { args: [{ manager: 'maria' }] }), (error: unknown) => {
        assert.ok(error instanceof WorkflowUpdateFailedError);
        assert.match(error.cause?.message ?? '', /not awaiting approval/);
        return true;
      });
      assert.equal((await handle.result()).status, 'COMPLETED');
    });
  });

  it('ends REJECTED when the provider never confirms the payment (2 hours pass in test time)', async function () {
    services.providerAnswer = 'NONE';
    const handle = await start();
    const waiting = await waitForStatus(handle, 'AWAITING_PAYMENT_CONFIRMATION');
    assert.deepEqual(waiting.completedSteps, ['ORDER_CREATED', 'STOCK_RESERVED', 'PAYMENT_AUTHORIZED']);
    const result = await handle.result();
    assert.equal(result.status, 'REJECTED');
    assert.match(result.failureReason ?? '', /did not confirm within 2 hours/);
    assert.equal(services.attempts('checkPaymentConfirmation'), 5, 'asked every 20 minutes until the deadline');
    assert.deepEqual(result.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
  });

  it('asks the provider while it waits, so a lost confirmation callback still completes the order', async function () {
    services.callbackLost = true;
    const handle = await start();
    const result = await handle.result();
    assert.equal(result.status, 'COMPLETED');
    assert.equal(services.attempts('checkPaymentConfirmation'), 1, 'asked once, after the first check interval');
  });

  it('a decline the saga learns by asking the provider compensates like a declined callback', async function () {
    services.callbackLost = true;
    services.providerAnswer = 'DECLINED';
    const result = await (await start()).result();
    assert.equal(result.status, 'REJECTED');
    assert.deepEqual(result.compensations, ['PAYMENT_VOIDED', 'STOCK_RELEASED']);
  });

  describe('the decision update (answered before the end)', function () {
    const askDecision = (handle: SagaHandle) => handle.executeUpdate(awaitDecision, { updateId: AWAIT_DECISION_UPDATE_ID });

    it('answers ACCEPTED once everything before the dispatch window is done, while the saga still runs', async function () {
      const handle = await start();
      const answer = await askDecision(handle);
      assert.equal(answer.decision, 'ACCEPTED');
      assert.equal(answer.state.status, 'AWAITING_DISPATCH');
      assert.deepEqual(answer.state.completedSteps, ['ORDER_CREATED', 'STOCK_RESERVED', 'PAYMENT_AUTHORIZED', 'PAYMENT_CONFIRMED', 'SHIPMENT_SCHEDULED']);
      assert.ok(!services.calls.includes('dispatchShipment'), 'answered before the point of no return');
      // Asked again (another caller, the same update id): the same answer, and the saga goes on to the end.
      assert.equal((await askDecision(handle)).decision, 'ACCEPTED');
      assert.equal((await handle.result()).status, 'COMPLETED');
    });

    it('answers REFUSED with the reason as soon as the saga starts compensating', async function () {
      services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined));
      const handle = await start();
      const answer = await askDecision(handle);
      assert.equal(answer.decision, 'REFUSED');
      assert.ok(['COMPENSATING', 'REJECTED'].includes(answer.state.status), answer.state.status);
      assert.match(answer.state.failureReason ?? '', /\(test\)/);
      assert.equal((await handle.result()).status, 'REJECTED');
    });

    it('answers AWAITING_APPROVAL when a manager must decide, and CANCELLED for a cancelled order', async function () {
      const handle = await start([{ sku: 'PRICEY', quantity: 1 }]);
      const answer = await askDecision(handle);
      assert.equal(answer.decision, 'AWAITING_APPROVAL');
      assert.equal(answer.state.status, 'AWAITING_APPROVAL');
      await handle.executeUpdate(cancelOrder, { args: [{ reason: 'changed my mind' }] });
      // A new update id: the first one completed with AWAITING_APPROVAL, which the server keeps for that id.
      const after = await handle.executeUpdate(awaitDecision, { updateId: 'after-cancel' });
      assert.equal(after.decision, 'CANCELLED');
      assert.equal((await handle.result()).status, 'CANCELLED');
    });

    it('answers REFUSED for an order refused at its first step', async function () {
      services.behaviours.set('priceOrder', refusal(Refusal.UnknownSku));
      const handle = await start();
      const [answer, result] = await Promise.all([askDecision(handle), handle.result()]);
      assert.equal(result.status, 'REJECTED');
      assert.equal(answer.decision, 'REFUSED');
    });
  });

  describe('cancellation', function () {
    it('before the point of no return compensates every step done and ends CANCELLED', async function () {
      const handle = await start();
      const waiting = await waitForStatus(handle, 'AWAITING_DISPATCH');
      assert.equal(waiting.cancellable, true);
      await handle.executeUpdate(cancelOrder, { args: [{ reason: 'customer changed their mind' }] });
      const result = await handle.result();
      assert.equal(result.status, 'CANCELLED');
      assert.equal(result.failureReason, 'customer changed their mind');
      assert.deepEqual(result.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
      assert.ok(!services.calls.includes('dispatchShipment'));
      assert.equal(services.closed?.status, 'CANCELLED');
    });

    it('while awaiting approval ends CANCELLED with nothing to compensate', async function () {
      const handle = await start([{ sku: 'PRICEY', quantity: 1 }]);
      await waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(cancelOrder, { args: [{ reason: 'duplicate order' }] });
      const result = await handle.result();
      assert.equal(result.status, 'CANCELLED');
      assert.deepEqual(result.compensations, []);
    });

    it('interrupts a step that is being retried and still undoes it (it may have committed)', async function () {
      services.behaviours.set('reserveStock', transientFailures(1_000));
      const handle = await start();
      await waitForStatus(handle, 'RESERVING_STOCK');
      while (services.attempts('reserveStock') < 2) await new Promise((resolve) => setTimeout(resolve, 25));
      await handle.executeUpdate(cancelOrder, { args: [{ reason: 'taking too long' }] });
      const result = await handle.result();
      assert.equal(result.status, 'CANCELLED');
      assert.deepEqual(result.compensations, ['STOCK_RELEASED']);
    });

    it('after the point of no return is refused with a reason, and the order completes', async function () {
      let releaseDispatch!: () => void;
      const dispatchHeld = new Promise<void>((resolve) => (releaseDispatch = resolve));
      services.behaviours.set('dispatchShipment', () => dispatchHeld);
      const handle = await start();
      await waitForStatus(handle, 'AWAITING_DISPATCH');
      await env.sleep(POLICY.dispatchDelay);
      const dispatching = await waitForStatus(handle, 'DISPATCHING');
      assert.equal(dispatching.cancellable, false);
      await assert.rejects(handle.executeUpdate(cancelOrder, { args: [{ reason: 'too late' }] }), (error: unknown) => {
        assert.ok(error instanceof WorkflowUpdateFailedError);
        assert.match(error.cause?.message ?? '', /can no longer be cancelled: its shipment has been dispatched/);
        return true;
      });
      releaseDispatch();
      const result = await handle.result();
      assert.equal(result.status, 'COMPLETED');
      assert.deepEqual(result.compensations, []);
    });

    it('through Temporal itself (e.g. from the Web UI) compensates the same way', async function () {
      const handle = await start();
      await waitForStatus(handle, 'AWAITING_DISPATCH');
      await handle.cancel();
      const result = await handle.result();
      assert.equal(result.status, 'CANCELLED');
      assert.deepEqual(result.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
    });
  });
});
