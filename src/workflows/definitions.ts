// The saga's public contract: its input, its state, and the messages it accepts. Defined once, typed, and
// imported by both the workflow and the API.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { SagaPolicy } from '../config';
import type { OrderLine } from '../domain';

export const WORKFLOW_TYPE = 'OrderSaga';

/** Custom search attributes: find orders by status or customer in the Temporal Web UI. */
export const OrderStatusAttribute = defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD);
export const CustomerIdAttribute = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [OrderStatusAttribute, CustomerIdAttribute];

export const ORDER_STATUSES = [
  'PENDING',
  'AWAITING_APPROVAL',
  'RESERVING_STOCK',
  'AUTHORIZING_PAYMENT',
  'AWAITING_PAYMENT_CONFIRMATION',
  'SCHEDULING_SHIPMENT',
  'AWAITING_DISPATCH',
  'DISPATCHING',
  'COMPENSATING',
  /** A step failed in a way no retry will fix: the saga waits, its remaining compensations kept, for an operator. */
  'NEEDS_ATTENTION',
  'COMPLETED',
  'REJECTED',
  'CANCELLED',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const TERMINAL_STATUSES: readonly OrderStatus[] = ['COMPLETED', 'REJECTED', 'CANCELLED'];

export interface OrderSagaInput {
  orderId: string;
  customerId: string;
  lines: OrderLine[];
  /** Fixed when the order is placed, so a configuration change never alters a running saga. */
  policy: SagaPolicy;
  /** The API client that placed the order (absent in sagas started before clients were recorded). */
  clientId?: string;
  /** Fingerprint of the placing request, kept with the order so that a replayed Idempotency-Key can be checked. */
  requestFingerprint?: string;
}

/** Where the saga was when a step failed for good: forward (a step of the order) or compensating. */
export type AttentionPhase = 'FORWARD' | 'COMPENSATION';

/**
 * What an operator may do with a saga in NEEDS_ATTENTION:
 * - `retry`: run the failed step again (e.g. after a fix was deployed or data was repaired);
 * - `resolved-manually`: the operator did the step's work by hand; the saga records that and moves on
 *   (a compensation, or a step past the point of no return);
 * - `abort`: give up a forward step before the point of no return; the saga compensates and ends REJECTED.
 */
export type AttentionAction = 'retry' | 'resolved-manually' | 'abort';

export interface Attention {
  phase: AttentionPhase;
  /** The activity that failed, e.g. `releaseStock`. */
  step: string;
  error: string;
  errorType: string | null;
  /** Workflow time (ISO 8601) when the saga stopped for an operator. */
  since: string;
  allowedActions: AttentionAction[];
}

export interface AttentionResolution {
  action: AttentionAction;
  operator: string;
  note?: string;
}

export interface OrderState {
  orderId: string;
  customerId: string;
  clientId: string | null;
  status: OrderStatus;
  lines: (OrderLine & { unitPriceCents?: number })[];
  totalCents: number | null;
  approvalRequired: boolean;
  /** Forward steps done, in order (e.g. STOCK_RESERVED). */
  completedSteps: string[];
  /** Compensations run, in the order they ran (the reverse of the steps they undo). */
  compensations: string[];
  /** Compensations registered and not run yet, next to run first (non-empty while compensating or stuck). */
  pendingCompensations: string[];
  failureReason: string | null;
  /** Set while the saga waits for an operator (status NEEDS_ATTENTION). */
  attention: Attention | null;
  /** Operator decisions taken on this saga, in order, e.g. `releaseStock: resolved-manually by ops-anna (restocked by hand)`. */
  operatorActions: string[];
  /** False once the shipment is being dispatched (the point of no return), while compensating, or once the saga has ended. */
  cancellable: boolean;
}

export interface ManagerDecision {
  manager: string;
  note?: string;
}

export interface CancelRequest {
  reason: string;
}

export interface PaymentConfirmation {
  providerRef: string;
  outcome: 'CONFIRMED' | 'DECLINED';
  reason?: string;
}

export const getStatus = defineQuery<OrderState>('getStatus');
/** Updates, so the caller learns at once whether the order was in a state that allows the action. */
export const approveOrder = defineUpdate<OrderState, [ManagerDecision]>('approveOrder');
export const rejectOrder = defineUpdate<OrderState, [ManagerDecision]>('rejectOrder');
export const cancelOrder = defineUpdate<OrderState, [CancelRequest]>('cancelOrder');
/** An operator's decision for a saga in NEEDS_ATTENTION; refused (409) in any other state or for an action not allowed there. */
export const resolveAttention = defineUpdate<OrderState, [AttentionResolution]>('resolveAttention');
/**
 * Where an order stands for a caller who wants an answer before the end: accepted (everything before the
 * dispatch window is done), refused or cancelled (compensating or ended so), or waiting for a person (a manager's
 * approval, an operator). Undefined while the saga has not got that far.
 */
export type OrderDecision = 'ACCEPTED' | 'REFUSED' | 'CANCELLED' | 'AWAITING_APPROVAL' | 'NEEDS_ATTENTION';

export function decisionOf(state: Pick<OrderState, 'status'>, cancelled: boolean): OrderDecision | undefined {
  switch (state.status) {
    case 'AWAITING_DISPATCH':
    case 'DISPATCHING':
    case 'COMPLETED':
      return 'ACCEPTED';
    case 'COMPENSATING':
      return cancelled ? 'CANCELLED' : 'REFUSED';
    case 'REJECTED':
      return 'REFUSED';
    case 'CANCELLED':
      return 'CANCELLED';
    case 'AWAITING_APPROVAL':
    case 'NEEDS_ATTENTION':
      return state.status;
    default:
      return undefined;
  }
}

export interface DecisionAnswer {
  decision: OrderDecision;
  state: OrderState;
}

/**
 * Completes once the order has a decision (see OrderDecision), at once if it already has one. It changes nothing,
 * so every caller uses the same update id and they all share one update per saga.
 */
export const awaitDecision = defineUpdate<DecisionAnswer, []>('awaitDecision');
export const AWAIT_DECISION_UPDATE_ID = 'await-decision';
/** A signal: the provider may call back before the saga starts waiting, and the saga keeps it until then. */
export const paymentConfirmed = defineSignal<[PaymentConfirmation]>('paymentConfirmed');
