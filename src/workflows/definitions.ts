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
}

export interface OrderState {
  orderId: string;
  customerId: string;
  status: OrderStatus;
  lines: (OrderLine & { unitPriceCents?: number })[];
  totalCents: number | null;
  approvalRequired: boolean;
  /** Forward steps done, in order (e.g. STOCK_RESERVED). */
  completedSteps: string[];
  /** Compensations run, in the order they ran (the reverse of the steps they undo). */
  compensations: string[];
  failureReason: string | null;
  /** False once the shipment is being dispatched (the point of no return) or the saga has ended. */
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
/** A signal: the provider may call back before the saga starts waiting, and the saga keeps it until then. */
export const paymentConfirmed = defineSignal<[PaymentConfirmation]>('paymentConfirmed');
