// OrderSaga: one order across four services, as an orchestrated saga with a compensation stack.
//
//   price → create order → [manager approval] → reserve stock → authorize payment → [provider confirmation]
//         → schedule shipment → [cancellation window] → dispatch (point of no return) → capture → complete
//
// Every side effect is an activity on its service's task queue. A business refusal (out of stock, payment
// declined, approval rejected or timed out, confirmation timed out) undoes the steps done so far, in reverse,
// and the order ends REJECTED; a cancellation does the same and ends CANCELLED.
//
// A step that fails for good without being a refusal (a bug, a broken invariant, a compensation that cannot
// run) does not fail the workflow: the saga stops in NEEDS_ATTENTION, recorded in the orders database and the
// OrderStatus search attribute, keeps every compensation still to run, and waits for an operator's
// `resolveAttention` (retry the step, say it was done by hand, or abort and compensate).
//
// Messages and timers can arrive in the same workflow task. The rule that keeps their interleavings safe:
// every decision reads the saga's state *after* its wait ends, never the wait's own result, so a message
// accepted in the same task as a timer is never ignored.
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxySinks,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import { TASK_QUEUES } from '../config';
import { Refusal, providerRefFor, totalCents, type RefusalType } from '../domain';
import type { InventoryActivities } from '../activities/inventory/activities';
import type { ClosedOrderRecord, OrdersActivities } from '../activities/orders/activities';
import type { PaymentsActivities } from '../activities/payments/activities';
import type { ShippingActivities } from '../activities/shipping/activities';
import type { SagaMetricsSinks } from '../observability/saga-sinks';
import {
  approveOrder,
  awaitDecision,
  cancelOrder,
  decisionOf,
  getStatus,
  OrderStatusAttribute,
  paymentConfirmed,
  rejectOrder,
  resolveAttention,
  TERMINAL_STATUSES,
  type Attention,
  type AttentionAction,
  type AttentionPhase,
  type AttentionResolution,
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
 * Business refusals are non-retryable ApplicationFailures and end the retries at once; so are errors the
 * worker classifies as unexpected after a few attempts (src/worker/error-classification.ts).
 */
export const ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
};

/** How often the saga asks the payment provider while it waits for its confirmation (policy may override). */
export const DEFAULT_PAYMENT_CHECK_INTERVAL = '30s';

/** Patch marker: sagas started before it wait for the provider's callback alone (see README, "Changing the workflow"). */
export const PATCH_ASK_PROVIDER_WHILE_WAITING = 'ask-provider-while-waiting';
/** Patch marker: sagas started before it do not record the manager's decision in the order's event stream. */
export const PATCH_RECORD_APPROVAL_DECISION = 'record-approval-decision';
/** Patch marker: a saga that finds its order closed by another saga ends with that record (recorded only then). */
export const PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA = 'order-closed-by-another-saga';
/** Patch marker: sagas started before it write every status to the OrderStatus search attribute. */
export const PATCH_STATUS_ATTRIBUTE_AT_WAITS = 'status-attribute-at-waits';

/**
 * The statuses of the steps between two waits, each one activity (retried for as long as a service is down). The
 * OrderStatus search attribute keeps the status before them (the wait just over, or PENDING), unless that status
 * asks a person to act: a manager's approval, once given, or an operator's, once resumed, must not stay listed.
 * The saga's own status (the getStatus query, GET /orders/:id) always names the step.
 *
 * Why: each change of a search attribute is a visibility write in the Temporal server (some 4-5 ms of its CPU).
 * Written at every step, seven per completed order, they took a sixth of the server's CPU per order
 * (docs/performance.md); now three.
 */
const STEPS_BETWEEN_WAITS: readonly OrderStatus[] = ['RESERVING_STOCK', 'AUTHORIZING_PAYMENT', 'SCHEDULING_SHIPMENT', 'DISPATCHING'];
const ASKS_A_PERSON: readonly OrderStatus[] = ['AWAITING_APPROVAL', 'NEEDS_ATTENTION'];

const orders = proxyActivities<OrdersActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.orders });
const inventory = proxyActivities<InventoryActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.inventory });
const payments = proxyActivities<PaymentsActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.payments });
const shipping = proxyActivities<ShippingActivities>({ ...ACTIVITY_OPTIONS, taskQueue: TASK_QUEUES.shipping });
/** Metrics (src/observability/saga-sinks.ts): sink calls are no commands and are not made on replay, so never break determinism. */
const { sagaMetrics } = proxySinks<SagaMetricsSinks>();

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

/** The innermost message and type of an activity's failure, for the operator. */
function describeFailure(error: unknown): { message: string; type: string | null } {
  let current: unknown = error;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  if (current instanceof ApplicationFailure) return { message: current.message, type: current.type ?? null };
  if (current instanceof Error) return { message: current.message, type: current.name };
  return { message: String(current), type: null };
}

/** An operator gave up a forward step: the saga compensates and ends REJECTED with this reason. */
class AbortedByOperator extends Error {
  override name = 'AbortedByOperator';
}

export async function OrderSaga(input: OrderSagaInput): Promise<OrderState> {
  const { orderId, customerId, policy } = input;
  const statusAttributeAtEveryStep = !patched(PATCH_STATUS_ATTRIBUTE_AT_WAITS);
  // Recorded with the order: who placed it, with what request, and by which saga (the first run id, kept by a reset).
  const origin = { clientId: input.clientId, requestFingerprint: input.requestFingerprint, sagaRunId: workflowInfo().firstExecutionRunId };
  const state: OrderState = {
    orderId,
    customerId,
    clientId: input.clientId ?? null,
    status: 'PENDING',
    lines: input.lines,
    totalCents: null,
    approvalRequired: false,
    completedSteps: [],
    compensations: [],
    pendingCompensations: [],
    failureReason: null,
    attention: null,
    operatorActions: [],
    cancellable: true,
  };
  let decision: (ManagerDecision & { approved: boolean }) | undefined;
  let confirmation: PaymentConfirmation | undefined;
  let cancellation: string | undefined;
  let resolution: AttentionResolution | undefined;
  /** The status to show again once an operator has resumed a saga in NEEDS_ATTENTION. */
  let resumeAs: OrderStatus = 'PENDING';
  let pastPointOfNoReturn = false;
  let compensating = false;
  let outcome: 'COMPLETED' | 'REJECTED' | 'CANCELLED' = 'COMPLETED';
  /** The order's record, when createOrder or closeOrder finds it ended under another saga: then the answer. */
  let endedBefore: ClosedOrderRecord | undefined;
  // The forward steps run in their own scope, so a cancellation request can interrupt them (a timer, a
  // wait or an activity) while the compensations, run outside it, cannot be interrupted.
  const forwardSteps = new CancellationScope();
  const compensations = new Compensations();

  /** What the OrderStatus search attribute shows: PENDING from the start (src/api/order-workflows.ts). */
  let listedStatus: OrderStatus = 'PENDING';
  const setStatus = (status: OrderStatus) => {
    state.status = status;
    state.cancellable = !pastPointOfNoReturn && !compensating && !TERMINAL_STATUSES.includes(status);
    if (statusAttributeAtEveryStep || !STEPS_BETWEEN_WAITS.includes(status) || ASKS_A_PERSON.includes(listedStatus)) {
      upsertSearchAttributes([{ key: OrderStatusAttribute, value: status }]);
      listedStatus = status;
    }
  };
  const stepDone = (step: string) => state.completedSteps.push(step);
  const registerCompensation = (name: string, activity: string, run: () => Promise<unknown>) => {
    compensations.add(name, activity, run);
    state.pendingCompensations = compensations.pending();
  };

  setHandler(getStatus, () => state);
  const decide = (approved: boolean) => (request: ManagerDecision) => {
    decision = { ...request, approved };
    return state;
  };
  const mustAwaitApproval = (_decision: ManagerDecision) => {
    // The first decision wins: a second one, even in the same workflow task, is refused.
    if (decision) throw new Error(`order ${orderId} was already ${decision.approved ? 'approved' : 'rejected'} by ${decision.manager}`);
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
        if (TERMINAL_STATUSES.includes(state.status) || compensating) {
          throw new Error(`order ${orderId} is ${compensating ? 'COMPENSATING' : state.status} and can no longer be cancelled`);
        }
        if (pastPointOfNoReturn) throw new Error(`order ${orderId} can no longer be cancelled: its shipment has been dispatched`);
      },
    },
  );
  // Answers at the decision rather than at the end: it waits for the state, and changes nothing.
  setHandler(awaitDecision, async () => {
    const decided = () => decisionOf(state, outcome === 'CANCELLED');
    await condition(() => decided() !== undefined);
    return { decision: decided()!, state };
  });
  setHandler(paymentConfirmed, (message) => {
    // Only the provider's answer for this order's payment counts, and only its first answer.
    if (message.providerRef === providerRefFor(orderId)) confirmation ??= message;
  });
  setHandler(
    resolveAttention,
    (request) => {
      resolution = request;
      // Resumed from now on, in what the status query answers too.
      state.attention = null;
      sagaMetrics.attentionLeft(request.action);
      setStatus(resumeAs);
      return state;
    },
    {
      validator: ({ action }: AttentionResolution) => {
        if (!state.attention) throw new Error(`order ${orderId} is ${state.status}, not waiting for an operator`);
        if (!state.attention.allowedActions.includes(action)) {
          throw new Error(`"${action}" is not possible for ${state.attention.step}; choose ${state.attention.allowedActions.join(' or ')}`);
        }
      },
    },
  );

  /** Records in the orders database that the saga waits for an operator (or, with null, no longer does). */
  const recordAttention = (attention: Attention | null) =>
    CancellationScope.nonCancellable(() =>
      orders.recordAttention({ orderId, customerId, lines: state.lines, ...origin, attention }).catch((error) => {
        // The workflow's own state and search attribute still show it; the operator can act on those.
        log.error('could not record attention in the orders database', { orderId, error: String(error) });
      }),
    );

  /** Stops the saga until an operator decides what to do about a step that failed for good. */
  async function waitForOperator(phase: AttentionPhase, step: string, error: unknown, allowedActions: AttentionAction[]): Promise<AttentionAction> {
    const { message, type } = describeFailure(error);
    resumeAs = state.status;
    resolution = undefined;
    state.attention = { phase, step, error: message, errorType: type, since: new Date().toISOString(), allowedActions };
    setStatus('NEEDS_ATTENTION');
    sagaMetrics.attentionEntered(phase, step);
    log.error('saga needs attention', { orderId, phase, step, error: message });
    await recordAttention(state.attention);
    // Forward phase: inside the forward scope, so a customer's cancellation still ends the wait and compensates.
    await condition(() => resolution !== undefined);
    const { action, operator, note } = resolution!;
    state.operatorActions.push(`${step}: ${action} by ${operator}${note ? ` (${note})` : ''}`);
    resolution = undefined;
    await recordAttention(null);
    return action;
  }

  /**
   * Runs an activity; if it fails for good without a business refusal, waits for an operator, who may choose
   * among `actions`: retry it, abort (compensate), or say it was done by hand.
   */
  async function step<T>(activity: string, run: () => Promise<T>, actions: AttentionAction[]): Promise<T | 'resolved-manually'> {
    for (;;) {
      try {
        return await run();
      } catch (error) {
        if (isCancellation(error) || refusalReason(error) !== undefined) throw error;
        const action = await waitForOperator('FORWARD', activity, error, actions);
        if (action === 'abort') throw new AbortedByOperator(`aborted by an operator after ${activity} failed: ${describeFailure(error).message}`);
        if (action === 'resolved-manually') return 'resolved-manually';
      }
    }
  }
  /** A forward step before the point of no return, whose result the saga needs: retried, or aborted (compensated). */
  async function forward<T>(activity: string, run: () => Promise<T>): Promise<T> {
    return (await step(activity, run, ['retry', 'abort'])) as T;
  }
  /** A step past the point of no return: done by its activity, or by hand. */
  async function finalStep(activity: string, done: string, run: () => Promise<unknown>): Promise<void> {
    stepDone((await step(activity, run, ['retry', 'resolved-manually'])) === 'resolved-manually' ? `${done}_MANUALLY` : done);
  }

  /** Waits for the provider's answer, asking the provider again every so often in case its callback was lost. */
  async function awaitPaymentConfirmation(): Promise<void> {
    if (!patched(PATCH_ASK_PROVIDER_WHILE_WAITING)) {
      await condition(() => confirmation !== undefined, policy.paymentConfirmationTimeout);
      return;
    }
    const deadline = Date.now() + msToNumber(policy.paymentConfirmationTimeout as never);
    const interval = msToNumber((policy.paymentCheckInterval ?? DEFAULT_PAYMENT_CHECK_INTERVAL) as never);
    while (confirmation === undefined && Date.now() < deadline) {
      await condition(() => confirmation !== undefined, Math.min(interval, deadline - Date.now()));
      if (confirmation !== undefined || Date.now() >= deadline) break;
      const answer = await forward('checkPaymentConfirmation', () => payments.checkPaymentConfirmation({ orderId }));
      if (answer.outcome !== 'PENDING') confirmation ??= { providerRef: providerRefFor(orderId), outcome: answer.outcome, reason: answer.reason };
    }
  }

  try {
    await forwardSteps.run(async () => {
      const priced = await forward('priceOrder', () => inventory.priceOrder(input.lines));
      state.lines = priced;
      state.totalCents = totalCents(priced);
      // The order record itself is not undone: closeOrder below records how the saga ended.
      const created = await forward('createOrder', () =>
        orders.createOrder({ orderId, customerId, lines: priced, ...origin, approvalThresholdCents: policy.approvalThresholdCents }),
      );
      // A saga started again for an order that ended long ago (Temporal had forgotten the first): its record answers.
      if (created.closedByAnotherSaga && patched(PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA)) {
        endedBefore = created.closedByAnotherSaga;
        return;
      }
      stepDone('ORDER_CREATED');

      if (state.totalCents > policy.approvalThresholdCents) {
        state.approvalRequired = true;
        setStatus('AWAITING_APPROVAL');
        // The decision, not the wait's result, decides: one accepted as the deadline fires still counts.
        await condition(() => decision !== undefined, policy.approvalTimeout);
        if (!decision) throw refusal(Refusal.ApprovalTimedOut, `no manager decision within ${policy.approvalTimeout}`);
        if (patched(PATCH_RECORD_APPROVAL_DECISION)) {
          const { approved, manager, note } = decision;
          await forward('recordApproval', () => orders.recordApproval({ orderId, approved, manager, ...(note ? { note } : {}) }));
        }
        if (!decision.approved) {
          throw refusal(Refusal.ApprovalRejected, `rejected by ${decision.manager}${decision.note ? `: ${decision.note}` : ''}`);
        }
        stepDone('APPROVED');
      }

      setStatus('RESERVING_STOCK');
      registerCompensation('STOCK_RELEASED', 'releaseStock', () => inventory.releaseStock({ orderId }));
      await forward('reserveStock', () => inventory.reserveStock({ orderId, lines: input.lines }));
      stepDone('STOCK_RESERVED');

      setStatus('AUTHORIZING_PAYMENT');
      registerCompensation('PAYMENT_VOIDED', 'voidPayment', () => payments.voidPayment({ orderId, customerId }));
      await forward('authorizePayment', () => payments.authorizePayment({ orderId, customerId, amountCents: state.totalCents! }));
      stepDone('PAYMENT_AUTHORIZED');

      setStatus('AWAITING_PAYMENT_CONFIRMATION');
      await awaitPaymentConfirmation();
      if (!confirmation) {
        throw refusal(Refusal.PaymentConfirmationTimedOut, `the payment provider did not confirm within ${policy.paymentConfirmationTimeout}`);
      }
      if (confirmation.outcome === 'DECLINED') {
        throw refusal(Refusal.PaymentDeclined, `payment declined by the provider${confirmation.reason ? `: ${confirmation.reason}` : ''}`);
      }
      stepDone('PAYMENT_CONFIRMED');

      setStatus('SCHEDULING_SHIPMENT');
      registerCompensation('SHIPMENT_CANCELLED', 'cancelShipment', () => shipping.cancelShipment({ orderId }));
      await forward('scheduleShipment', () => shipping.scheduleShipment({ orderId, lines: input.lines }));
      stepDone('SHIPMENT_SCHEDULED');

      setStatus('AWAITING_DISPATCH');
      await sleep(policy.dispatchDelay);

      // A cancellation accepted in the same workflow task as the timer firing was accepted before the point of
      // no return (its validator ran while it was still ahead): it must win. Checked in the same synchronous
      // stretch that passes the point, so no update can be accepted between the check and the passing.
      if (cancellation !== undefined || forwardSteps.consideredCancelled) throw new CancelledFailure(cancellation ?? 'cancelled');
      // The point of no return: from here on the saga only moves forward, and cancellation is refused.
      pastPointOfNoReturn = true;
      // No compensation runs from here on, so none is shown as pending.
      state.pendingCompensations = [];
      setStatus('DISPATCHING');
      await CancellationScope.nonCancellable(async () => {
        await finalStep('dispatchShipment', 'SHIPMENT_DISPATCHED', () => shipping.dispatchShipment({ orderId }));
        await finalStep('capturePayment', 'PAYMENT_CAPTURED', () => payments.capturePayment({ orderId }));
        await finalStep('consumeReservation', 'STOCK_CONSUMED', () => inventory.consumeReservation({ orderId }));
      });
    });
  } catch (error) {
    if (isCancellation(error)) {
      outcome = 'CANCELLED';
      state.failureReason = cancellation ?? 'cancelled';
    } else if (error instanceof AbortedByOperator) {
      outcome = 'REJECTED';
      state.failureReason = error.message;
    } else {
      const reason = refusalReason(error);
      // Anything else is a bug in this workflow: fail the workflow task (Temporal retries it) rather than guess.
      if (reason === undefined) throw error;
      outcome = 'REJECTED';
      state.failureReason = reason;
    }
    if (state.attention) {
      // A cancellation ended a wait for an operator: the compensations below take over.
      state.attention = null;
      sagaMetrics.attentionLeft('cancelled');
      await recordAttention(null);
    }
    compensating = true;
    setStatus('COMPENSATING');
    await compensations.runAll({
      onDone: (name, how) => {
        state.compensations.push(how === 'ran' ? name : `${name}_MANUALLY`);
        sagaMetrics.compensated(name, how);
        state.pendingCompensations = compensations.pending();
      },
      onStuck: async (activity, failure) => (await waitForOperator('COMPENSATION', activity, failure, ['retry', 'resolved-manually'])) as 'retry' | 'resolved-manually',
    });
  }

  if (!endedBefore) {
    // Recording the end can be retried or done by hand, never aborted: the outcome is already decided.
    const closing = await CancellationScope.nonCancellable(() =>
      step(
        'closeOrder',
        () =>
          orders.closeOrder({
            orderId,
            customerId,
            lines: state.lines,
            ...origin,
            status: outcome,
            failureReason: state.failureReason ?? undefined,
            completedSteps: state.completedSteps,
            compensations: state.compensations,
          }),
        ['retry', 'resolved-manually'],
      ),
    );
    // The order may turn out to have ended under another saga only now (this saga stopped before createOrder, say
    // refused at pricing): the record kept its end, and is the answer. (Sagas before the patch got nothing back.)
    const kept = closing === 'resolved-manually' ? undefined : closing?.closedByAnotherSaga;
    if (kept && patched(PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA)) endedBefore = kept;
  }
  if (endedBefore) {
    // Nothing more is recorded: the answer is how the order ended, as its record says.
    const { status, failureReason, completedSteps, compensations, totalCents, lines } = endedBefore;
    outcome = status;
    Object.assign(state, { failureReason, completedSteps, compensations, totalCents, lines });
  }
  state.pendingCompensations = [];
  setStatus(outcome);
  // An order that ended before was counted then.
  if (!endedBefore) sagaMetrics.ended(outcome);
  // A caller waiting for the decision is answered before the saga closes (no command: safe for older histories).
  // Not cancellable: a saga cancelled through Temporal itself has compensated and must still return its state.
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  return state;
}
