// The API's side of the saga: starting it, reading its state, and sending it messages, through the
// Temporal client. Every call has a deadline, so an unreachable server becomes a prompt 503, not a hang.
import { createHash } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type UpdateDefinition,
  type WorkflowHandle,
} from '@temporalio/client';
import { TASK_QUEUES, type SagaPolicy } from '../config';
import {
  CustomerIdAttribute,
  getStatus,
  OrderStatusAttribute,
  paymentConfirmed,
  WORKFLOW_TYPE,
  type OrderSagaInput,
  type OrderState,
  type PaymentConfirmation,
} from '../workflows/definitions';
import type { OrderSaga } from '../workflows/order-saga';
import { conflict } from './errors';

export interface PlaceOrder {
  orderId: string;
  customerId: string;
  lines: { sku: string; quantity: number }[];
}

export interface StartResult {
  orderId: string;
  /** False when the order already existed (a replayed Idempotency-Key). */
  started: boolean;
}

export type ExecutionState = 'RUNNING' | 'CLOSED' | 'NOT_FOUND';

/** A stable fingerprint of what was asked, to tell a genuine retry from a different order under the same key. */
export function requestFingerprint(order: Omit<PlaceOrder, 'orderId'>): string {
  const canonical = JSON.stringify({ customerId: order.customerId, lines: order.lines.map(({ sku, quantity }) => [sku, quantity]) });
  return createHash('sha256').update(canonical).digest('hex');
}

/** The order id a given Idempotency-Key maps to: the same key always names the same workflow. */
export function orderIdForKey(idempotencyKey: string): string {
  return `ord_${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`;
}

export class OrderWorkflows {
  constructor(
    private readonly client: Client,
    private readonly policy: SagaPolicy,
    private readonly rpcTimeoutMs = 5_000,
  ) {}

  private withDeadline<T>(fn: () => Promise<T>): Promise<T> {
    return this.client.withDeadline(Date.now() + this.rpcTimeoutMs, fn);
  }

  private handle(orderId: string): WorkflowHandle<typeof OrderSaga> {
    return this.client.workflow.getHandle<typeof OrderSaga>(orderId);
  }

  /** Starts the saga; for an order id already in use, checks that it is the same request. */
  async start(order: PlaceOrder): Promise<StartResult> {
    const fingerprint = requestFingerprint(order);
    const input: OrderSagaInput = { orderId: order.orderId, customerId: order.customerId, lines: order.lines, policy: this.policy };
    try {
      await this.withDeadline(() =>
        this.client.workflow.start<typeof OrderSaga>(WORKFLOW_TYPE, {
          workflowId: order.orderId,
          taskQueue: TASK_QUEUES.saga,
          args: [input],
          // An order id names one saga forever: a closed order is never started again.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: [
            { key: OrderStatusAttribute, value: 'PENDING' },
            { key: CustomerIdAttribute, value: order.customerId },
          ],
          memo: { requestFingerprint: fingerprint },
        }),
      );
      return { orderId: order.orderId, started: true };
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      const description = await this.withDeadline(() => this.handle(order.orderId).describe());
      if (description.memo?.requestFingerprint !== fingerprint) {
        throw conflict('this Idempotency-Key was already used for a different order');
      }
      return { orderId: order.orderId, started: false };
    }
  }

  async executionState(orderId: string): Promise<ExecutionState> {
    try {
      const description = await this.withDeadline(() => this.handle(orderId).describe());
      return description.status.name === 'RUNNING' ? 'RUNNING' : 'CLOSED';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return 'NOT_FOUND';
      throw error;
    }
  }

  async status(orderId: string): Promise<OrderState> {
    return this.withDeadline(() => this.handle(orderId).query(getStatus));
  }

  /** Waits up to `seconds` for the saga to end; undefined if it is still running then. */
  async waitForOutcome(orderId: string, seconds: number): Promise<OrderState | undefined> {
    if (seconds <= 0) return undefined;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), seconds * 1000);
    try {
      return await this.client.withAbortSignal(abort.signal, () => this.handle(orderId).result());
    } catch (error) {
      if (abort.signal.aborted) return undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a workflow update; a refusal by the workflow's validator becomes a 409 with its reason. */
  async update<Arg>(orderId: string, update: UpdateDefinition<OrderState, [Arg]>, arg: Arg): Promise<OrderState> {
    try {
      return await this.withDeadline(() => this.handle(orderId).executeUpdate(update, { args: [arg] }));
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw conflict(error.cause?.message ?? error.message);
      throw error;
    }
  }

  async confirmPayment(orderId: string, confirmation: PaymentConfirmation): Promise<void> {
    await this.withDeadline(() => this.handle(orderId).signal(paymentConfirmed, confirmation));
  }

  /** Cheap round trip for /health. */
  async ping(): Promise<void> {
    await this.withDeadline(() => this.client.workflowService.getSystemInfo({}));
  }
}
