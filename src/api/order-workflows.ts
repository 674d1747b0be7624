// The API's side of the saga: starting it, reading its state, and sending it messages, through the
// Temporal client. Every call has a deadline, so an unreachable server becomes a prompt answer, not a hang.
// A read that fails is simply unavailable (503). A write (start, update, signal) that fails is only "nothing
// happened" when no attempt of it reached the server (src/api/temporal-delivery.ts); otherwise it may have taken
// effect, and it fails with an OutcomeUnknownError (504) that names the order to check.
import { createHash } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type UpdateDefinition,
  type WorkflowHandle,
} from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { TASK_QUEUES, type SagaPolicy } from '../config';
import {
  AWAIT_DECISION_UPDATE_ID,
  awaitDecision,
  CustomerIdAttribute,
  decisionOf,
  getStatus,
  OrderStatusAttribute,
  paymentConfirmed,
  WORKFLOW_TYPE,
  type DecisionAnswer,
  type OrderSagaInput,
  type OrderState,
  type PaymentConfirmation,
} from '../workflows/definitions';
import type { OrderSaga } from '../workflows/order-saga';
import { conflict, GRPC_NOT_FOUND, grpcCode, isTemporalUnavailable, OutcomeUnknownError } from './errors';
import { trackDelivery } from './temporal-delivery';

export interface PlaceOrder {
  orderId: string;
  customerId: string;
  lines: { sku: string; quantity: number }[];
  /** The API client (principal of a `client` key) placing the order. */
  clientId: string;
}

export interface StartResult {
  orderId: string;
  /** False when the order already existed (a replayed Idempotency-Key). */
  started: boolean;
}

export type ExecutionState = 'RUNNING' | 'CLOSED' | 'NOT_FOUND';

/** An activity of a running saga that has failed more than once and is being retried (from describe()). */
export interface RetryingActivity {
  activityType: string;
  /** The attempt running or scheduled next: attempt N follows N-1 failures. */
  attempt: number;
  lastFailure: string | null;
  /** SCHEDULED (waiting for its next attempt or a worker), STARTED or CANCEL_REQUESTED. */
  state: string;
  nextAttemptAt: string | null;
}

export interface Execution {
  state: ExecutionState;
  /** The client that placed the order, as recorded when its saga started (null for older sagas, or NOT_FOUND). */
  clientId: string | null;
  requestFingerprint: string | null;
  /** Activities that have failed more than once: a saga stuck retrying a step shows here. */
  retryingActivities: RetryingActivity[];
}

/** An activity has failed more than once when it is at its third attempt or later. */
const RETRYING_FROM_ATTEMPT = 3;

/**
 * A stable fingerprint of what was asked, to tell a genuine retry from a different order under the same key.
 * The order of the lines does not matter: the same lines in another order are the same order.
 */
export function requestFingerprint(order: Pick<PlaceOrder, 'customerId' | 'lines'>): string {
  const lines = order.lines.map(({ sku, quantity }) => [sku, quantity] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = JSON.stringify({ customerId: order.customerId, lines });
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * The order id an Idempotency-Key maps to. Keys are scoped to the client that sends them and the customer the
 * order is for: two clients (or one client for two customers) using the same key get two orders.
 */
export function orderIdForKey(scope: { clientId: string; customerId: string }, idempotencyKey: string): string {
  const scoped = JSON.stringify(['order-key/v2', scope.clientId, scope.customerId, idempotencyKey]);
  return `ord_${createHash('sha256').update(scoped).digest('hex').slice(0, 32)}`;
}

const PENDING_ACTIVITY_STATE = temporal.api.enums.v1.PendingActivityState;

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

  /**
   * A write to Temporal. If it fails without an answer, it is "nothing happened" (the error as it is, a 503)
   * only when no attempt reached the server; otherwise an OutcomeUnknownError.
   */
  private async write<T>(orderId: string, operation: string, call: () => Promise<T>): Promise<T> {
    const delivery = trackDelivery();
    try {
      return await this.client.withMetadata(delivery.metadata, () => this.withDeadline(call));
    } catch (error) {
      if (isTemporalUnavailable(error) && !delivery.certainlyUnsent()) throw new OutcomeUnknownError(orderId, operation, { cause: error });
      throw error;
    } finally {
      delivery.done();
    }
  }

  /** Starts the saga; for an order id already in use, checks that it is the same request. */
  async start(order: PlaceOrder): Promise<StartResult> {
    const fingerprint = requestFingerprint(order);
    const input: OrderSagaInput = {
      orderId: order.orderId,
      customerId: order.customerId,
      lines: order.lines,
      policy: this.policy,
      clientId: order.clientId,
      requestFingerprint: fingerprint,
    };
    try {
      await this.write(order.orderId, 'start of the order saga', () =>
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
          memo: { requestFingerprint: fingerprint, clientId: order.clientId },
        }),
      );
      return { orderId: order.orderId, started: true };
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      const existing = await this.inspect(order.orderId);
      if (existing.requestFingerprint !== fingerprint || existing.clientId !== order.clientId) {
        throw conflict('this Idempotency-Key was already used for a different order');
      }
      return { orderId: order.orderId, started: false };
    }
  }

  /** Whether the saga runs, who placed it, and which of its activities keep failing: one describe() call. */
  async inspect(orderId: string): Promise<Execution> {
    let description;
    try {
      description = await this.withDeadline(() => this.handle(orderId).describe());
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return { state: 'NOT_FOUND', clientId: null, requestFingerprint: null, retryingActivities: [] };
      throw error;
    }
    const memo = description.memo ?? {};
    const running = description.status.name === 'RUNNING';
    return {
      state: running ? 'RUNNING' : 'CLOSED',
      clientId: typeof memo.clientId === 'string' ? memo.clientId : null,
      requestFingerprint: typeof memo.requestFingerprint === 'string' ? memo.requestFingerprint : null,
      retryingActivities: running
        ? (description.raw.pendingActivities ?? [])
            .filter((activity) => (activity.attempt ?? 1) >= RETRYING_FROM_ATTEMPT)
            .map((activity) => {
              const next = optionalTsToMs(activity.nextAttemptScheduleTime);
              return {
                activityType: activity.activityType?.name ?? 'unknown',
                attempt: activity.attempt ?? 0,
                lastFailure: activity.lastFailure?.message ?? null,
                state: (PENDING_ACTIVITY_STATE[activity.state ?? 0] ?? 'UNSPECIFIED').replace(/^PENDING_ACTIVITY_STATE_/, ''),
                nextAttemptAt: next === undefined ? null : new Date(next).toISOString(),
              };
            })
        : [],
    };
  }

  async executionState(orderId: string): Promise<ExecutionState> {
    return (await this.inspect(orderId)).state;
  }

  async status(orderId: string): Promise<OrderState> {
    return this.withDeadline(() => this.handle(orderId).query(getStatus));
  }

  /**
   * Waits up to `seconds` for the saga to end; undefined if it is still running then, or if its outcome cannot
   * be read now (the order was accepted either way: the caller reads it later).
   */
  async waitForOutcome(orderId: string, seconds: number): Promise<OrderState | undefined> {
    return this.waitUpTo(seconds, () => this.handle(orderId).result(), (error) => {
      if (error instanceof WorkflowFailedError) return undefined;
      throw error;
    });
  }

  /**
   * `call`, given up after `seconds`: undefined then, or when Temporal cannot answer now (the order was accepted
   * either way: the caller reads it later). Any other error goes to `otherwise`, which answers or throws.
   */
  private async waitUpTo<T>(seconds: number, call: () => Promise<T>, otherwise: (error: unknown) => T | undefined | Promise<T | undefined>): Promise<T | undefined> {
    if (seconds <= 0) return undefined;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), seconds * 1000);
    try {
      return await this.client.withAbortSignal(abort.signal, call);
    } catch (error) {
      if (abort.signal.aborted || isTemporalUnavailable(error)) return undefined;
      return await otherwise(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Waits up to `seconds` for the order's decision (accepted, refused, cancelled, or waiting for a person):
   * undefined if it has none by then, or if it cannot be read now (the caller reads it later).
   */
  async waitForDecision(orderId: string, seconds: number): Promise<DecisionAnswer | undefined> {
    const started = Date.now();
    return this.waitUpTo(
      seconds,
      // One update per saga, shared by every caller (same update id): it changes nothing, so asking twice is safe.
      () => this.handle(orderId).executeUpdate(awaitDecision, { updateId: AWAIT_DECISION_UPDATE_ID }),
      async (error) => {
        // The saga has closed (its decision is its end), or it started before it knew this update.
        if (!(error instanceof WorkflowNotFoundError || error instanceof WorkflowUpdateFailedError || grpcCode(error) === GRPC_NOT_FOUND)) throw error;
        const end = await this.waitForOutcome(orderId, seconds - (Date.now() - started) / 1000);
        const decision = end && decisionOf(end, end.status === 'CANCELLED');
        return end && decision ? { decision, state: end } : undefined;
      },
    );
  }

  /**
   * Runs a workflow update; a refusal by the workflow's validator becomes a 409 with its reason. A saga that has
   * ended meanwhile surfaces as WorkflowNotFoundError (the caller tells 409 from 404).
   */
  async update<Arg>(orderId: string, update: UpdateDefinition<OrderState, [Arg]>, arg: Arg): Promise<OrderState> {
    try {
      return await this.write(orderId, `${update.name} update`, () => this.handle(orderId).executeUpdate(update, { args: [arg] }));
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw conflict(error.cause?.message ?? error.message);
      throw error;
    }
  }

  async confirmPayment(orderId: string, confirmation: PaymentConfirmation): Promise<void> {
    await this.write(orderId, 'payment confirmation signal', () => this.handle(orderId).signal(paymentConfirmed, confirmation));
  }

  /** Cheap round trip for /health. */
  async ping(): Promise<void> {
    await this.withDeadline(() => this.client.workflowService.getSystemInfo({}));
  }
}
