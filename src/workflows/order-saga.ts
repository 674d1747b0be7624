// OrderSaga: one order across four services, as an orchestrated saga with a compensation stack.
//
//   price → create order → [manager approval] → reserve stock → authorize payment → [provider confirmation]
//         → schedule shipment → [cancellation window] → dispatch (point of no return) → capture → complete
//
// Every side effect is an activity on its service's task queue. A business refusal (out of stock, payment
// declined, approval rejected or timed out, confirmation timed out) undoes the steps done so far, in reverse,
// and the order ends REJECTED; a cancellation does the same and ends CANCELLED.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import { TASK_QUEUES } from '../config';
import { Refusal, providerRefFor, type RefusalType } from '../domain';
import type { InventoryActivities } from '../activities/inventory/activities';
import type { OrdersActivities } from '../activities/orders/activities';
import type { PaymentsActivities } from '../activities/payments/activities';
import type { ShippingActivities } from '../activities/shipping/activities';
import {
  approveOrder,
  cancelOrder,
  getStatus,
  OrderStatusAttribute,
  paymentConfirmed,
  rejectOrder,
  TERMINAL_STATUSES,
  type CancelRequest,
  type ManagerDecision,
  type OrderSagaInput,
  type OrderState,
  type OrderStatus,
  type PaymentConfirmation,
} from './definitions';
import { Compensations } from './saga';

/**
 * Each call is a short local transaction, so 10 s is generous; a transient fault (database or worker down)
 * is retried with backoff for as long as it lasts, because an outage is never a reason to compensate.
 * Business refusals are non-retryable ApplicationFailures and end the retries at once.
 */
export const ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
};

const orders = proxyActivities<OrdersActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.orders });
const inventory = proxyActivities<InventoryActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.inventory });
const payments = proxyActivities<PaymentsActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.payments });
const shipping = proxyActivities<ShippingActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.shipping });

const REFUSALS = new Set<string>(Object.values(Refusal));

function refusal(type: RefusalType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** The reason of a business refusal, whether an activity raised it or the saga itself; undefined for anything else. */
function refusalReason(error: unknown): string | undefined {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  if (failure instanceof ApplicationFailure && failure.type && REFUSALS.has(failure.type)) return failure.message;
  return undefined;
}

export async function OrderSaga(input: OrderSagaInput): Promise<OrderState> {
  const { orderId, customerId, policy } = input;
  const state: OrderState = {
    orderId,
    customerId,
    status: 'PENDING',
    lines: input.lines,
    totalCents: null,
    approvalRequired: false,
    completedSteps: [],
    compensations: [],
    failureReason: null,
    cancellable: true,
  };
  let decision: (ManagerDecision & { approved: boolean }) | undefined;
  let confirmation: PaymentConfirmation | undefined;
  let cancellation: string | undefined;
  let pastPointOfNoReturn = false;
  // The forward steps run in their own scope, so a cancellation request can interrupt them (a timer, a
  // wait or an activity) while the compensations, run outside it, cannot be interrupted.
  const forwardSteps = new CancellationScope();

  const setStatus = (status: OrderStatus) => {
    state.status = status;
    state.cancellable = !pastPointOfNoReturn && !TERMINAL_STATUSES.includes(status);
    upsertSearchAttributes([{ key: OrderStatusAttribute, value: status }]);
  };
  const stepDone = (step: string) => state.completedSteps.push(step);

  setHandler(getStatus, () => state);
  const decide = (approved: boolean) => (request: ManagerDecision) => {
    decision = { ...request, approved };
    return state;
  };
  const mustAwaitApproval = (_decision: ManagerDecision) => {
    if (state.status !== 'AWAITING_APPROVAL') throw new Error(`order ${orderId} is ${state.status}, not awaiting approval`);
  };
  setHandler(approveOrder, decide(true), { validator: mustAwaitApproval });
  setHandler(rejectOrder, decide(false), { validator: mustAwaitApproval });
  setHandler(
    cancelOrder,
    ({ reason }) => {
      cancellation ??= reason;
      forwardSteps.cancel();
      return state;
    },
    {
      validator: (_request: CancelRequest) => {
        if (TERMINAL_STATUSES.includes(state.status) || state.status === 'COMPENSATING') {
          throw new Error(`order ${orderId} is ${state.status} and can no longer be cancelled`);
        }
        if (pastPointOfNoReturn) throw new Error(`order ${orderId} can no longer be cancelled: its shipment has been dispatched`);
      },
    },
  );
  setHandler(paymentConfirmed, (message) => {
    // Only the provider's answer for this order's payment counts, and only its first answer.
    if (message.providerRef === providerRefFor(orderId)) confirmation ??= message;
  });

  const compensations = new Compensations();
  let outcome: 'COMPLETED' | 'REJECTED' | 'CANCELLED' = 'COMPLETED';
  try {
    await forwardSteps.run(async () => {
      const priced = await inventory.priceOrder(input.lines);
      state.lines = priced;
      state.totalCents = priced.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0);
      // The order record itself is not undone: closeOrder below records how the saga ended.
      await orders.createOrder({ orderId, customerId, lines: priced });
      stepDone('ORDER_CREATED');

      if (state.totalCents > policy.approvalThresholdCents) {
        state.approvalRequired = true;
        setStatus('AWAITING_APPROVAL');
        if (!(await condition(() => decision !== undefined, policy.approvalTimeout))) {
          throw refusal(Refusal.ApprovalTimedOut, `no manager decision within ${policy.approvalTimeout}`);
        }
        if (!decision!.approved) {
          throw refusal(Refusal.ApprovalRejected, `rejected by ${decision!.manager}${decision!.note ? `: ${decision!.note}` : ''}`);
        }
        stepDone('APPROVED');
      }

      setStatus('RESERVING_STOCK');
      compensations.add('STOCK_RELEASED', () => inventory.releaseStock({ orderId }));
      await inventory.reserveStock({ orderId, lines: input.lines });
      stepDone('STOCK_RESERVED');

      setStatus('AUTHORIZING_PAYMENT');
      compensations.add('PAYMENT_VOIDED', () => payments.voidPayment({ orderId, customerId }));
      await payments.authorizePayment({ orderId, customerId, amountCents: state.totalCents });
      stepDone('PAYMENT_AUTHORIZED');

      setStatus('AWAITING_PAYMENT_CONFIRMATION');
      if (!(await condition(() => confirmation !== undefined, policy.paymentConfirmationTimeout))) {
        throw refusal(Refusal.PaymentConfirmationTimedOut, `the payment provider did not confirm within ${policy.paymentConfirmationTimeout}`);
      }
      if (confirmation!.outcome === 'DECLINED') {
        throw refusal(Refusal.PaymentDeclined, `payment declined by the provider${confirmation!.reason ? `: ${confirmation!.reason}` : ''}`);
      }
      stepDone('PAYMENT_CONFIRMED');

      setStatus('SCHEDULING_SHIPMENT');
      compensations.add('SHIPMENT_CANCELLED', () => shipping.cancelShipment({ orderId }));
      await shipping.scheduleShipment({ orderId, lines: input.lines });
      stepDone('SHIPMENT_SCHEDULED');

      setStatus('AWAITING_DISPATCH');
      await sleep(policy.dispatchDelay);

      // The point of no return: from here on the saga only moves forward, and cancellation is refused.
      pastPointOfNoReturn = true;
      setStatus('DISPATCHING');
      await CancellationScope.nonCancellable(async () => {
        await shipping.dispatchShipment({ orderId });
        stepDone('SHIPMENT_DISPATCHED');
        await payments.capturePayment({ orderId });
        stepDone('PAYMENT_CAPTURED');
        await inventory.consumeReservation({ orderId });
        stepDone('STOCK_CONSUMED');
      });
    });
  } catch (error) {
    if (isCancellation(error)) {
      outcome = 'CANCELLED';
      state.failureReason = cancellation ?? 'cancelled';
    } else {
      const reason = refusalReason(error);
      // Anything else is a bug or an unexpected permanent failure: fail loudly rather than guess.
      if (reason === undefined) throw error;
      outcome = 'REJECTED';
      state.failureReason = reason;
    }
    setStatus('COMPENSATING');
    await compensations.runAll((name) => state.compensations.push(name));
  }

  await CancellationScope.nonCancellable(() =>
    orders.closeOrder({
      orderId,
      customerId,
      lines: state.lines,
      status: outcome,
      failureReason: state.failureReason ?? undefined,
      completedSteps: state.completedSteps,
      compensations: state.compensations,
    }),
  );
  setStatus(outcome);
  return state;
}
