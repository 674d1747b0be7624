// In-memory stand-ins for the four services, for workflow tests: the workflow is the thing under test, so
// its activities are replaced by small fakes that record every call and can be told to refuse, to fail
// transiently for a few attempts, or to wait. The real activities are tested against PostgreSQL elsewhere.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { providerRefFor, type OrderLine, type PricedLine, type RefusalType } from '../../src/domain';
import type { InventoryActivities } from '../../src/activities/inventory/activities';
import type { ClosedOrderRecord, OrdersActivities } from '../../src/activities/orders/activities';
import type { PaymentsActivities } from '../../src/activities/payments/activities';
import type { ShippingActivities } from '../../src/activities/shipping/activities';
import { paymentConfirmed } from '../../src/workflows/definitions';

type Behaviour = (attempt: number) => Promise<void> | void;

export const PRICES: Record<string, number> = { CHEAP: 1_000, PRICEY: 500_000 };

export function refusal(type: RefusalType, message = `${type} (test)`): Behaviour {
  return () => {
    throw ApplicationFailure.create({ type, message, nonRetryable: true });
  };
}

/**
 * Fails for good (a non-retryable error that is no business refusal, as a bug or a broken invariant raises)
 * on the first `times` calls, counted across retries and new schedules, then lets the call through.
 */
export function failuresForGood(times: number, type = 'BrokenInvariant'): Behaviour {
  let calls = 0;
  return () => {
    if (++calls <= times) throw ApplicationFailure.create({ type, message: `failure for good ${calls} of ${times} (test)`, nonRetryable: true });
  };
}

/** Fails with a retryable error on the first `times` attempts, then lets the call through. */
export function transientFailures(times: number): Behaviour {
  return (attempt) => {
    if (attempt <= times) throw new Error(`transient failure ${attempt} of ${times} (test)`);
  };
}

export class FakeServices {
  /** Every activity attempt, in order, as `name` (attempts after the first as `name#attempt`). */
  readonly calls: string[] = [];
  readonly behaviours = new Map<string, Behaviour>();
  /** What the payment provider answers after an authorization: a confirmation, a decline, or nothing. */
  providerAnswer: 'CONFIRMED' | 'DECLINED' | 'NONE' = 'CONFIRMED';
  /** Whether the provider's callback reaches the saga; when lost, only asking the provider finds the answer. */
  callbackLost = false;
  closed?: Parameters<OrdersActivities['closeOrder']>[0];
  /** What createOrder was last given. */
  created?: Parameters<OrdersActivities['createOrder']>[0];
  /** When set, the order had ended under another saga: createOrder and closeOrder answer with this record. */
  endedBefore?: ClosedOrderRecord;
  /** What recordAttention was told, in order (null: the saga was resumed). */
  readonly approvals: Parameters<OrdersActivities['recordApproval']>[0][] = [];
  readonly attentionRecords: (Parameters<OrdersActivities['recordAttention']>[0]['attention'])[] = [];

  constructor(private readonly client: Client) {}

  private async enter(name: string): Promise<void> {
    const { attempt } = Context.current().info;
    this.calls.push(attempt > 1 ? `${name}#${attempt}` : name);
    await this.behaviours.get(name)?.(attempt);
  }

  /** The calls without retries, to compare against the expected sequence of steps. */
  steps(): string[] {
    return this.calls.filter((call) => !call.includes('#'));
  }

  attempts(name: string): number {
    return this.calls.filter((call) => call === name || call.startsWith(`${name}#`)).length;
  }

  orders(): OrdersActivities {
    return {
      createOrder: async (input) => {
        await this.enter('createOrder');
        this.created = input;
        const total = input.lines.reduce((s, l) => s + l.quantity * l.unitPriceCents, 0);
        return this.endedBefore ? { orderId: input.orderId, totalCents: this.endedBefore.totalCents, closedByAnotherSaga: this.endedBefore } : { orderId: input.orderId, totalCents: total };
      },
      recordAttention: async (input) => {
        await this.enter('recordAttention');
        this.attentionRecords.push(input.attention);
      },
      recordApproval: async (input) => {
        await this.enter('recordApproval');
        this.approvals.push(input);
      },
      closeOrder: async (input) => {
        await this.enter('closeOrder');
        if (this.endedBefore) return { closedByAnotherSaga: this.endedBefore };
        this.closed = input;
        return {};
      },
    };
  }

  inventory(): InventoryActivities {
    return {
      priceOrder: async (lines: OrderLine[]): Promise<PricedLine[]> => {
        await this.enter('priceOrder');
        return lines.map((line) => ({ ...line, unitPriceCents: PRICES[line.sku] ?? 100 }));
      },
      reserveStock: async ({ orderId }) => {
        await this.enter('reserveStock');
        return { orderId, status: 'RESERVED' };
      },
      releaseStock: async ({ orderId }) => {
        await this.enter('releaseStock');
        return { orderId, status: 'RELEASED' };
      },
      consumeReservation: async ({ orderId }) => {
        await this.enter('consumeReservation');
        return { orderId, status: 'CONSUMED' };
      },
    };
  }

  payments(): PaymentsActivities {
    return {
      authorizePayment: async ({ orderId, amountCents }) => {
        await this.enter('authorizePayment');
        const providerRef = providerRefFor(orderId);
        if (this.providerAnswer !== 'NONE' && !this.callbackLost) {
          // The provider's callback, delivered before the activity returns: while an activity runs the test
          // server does not skip time, so the confirmation deadline cannot overtake it.
          const outcome = this.providerAnswer;
          await this.client.workflow
            .getHandle(orderId)
            .signal(paymentConfirmed, { providerRef, outcome, reason: outcome === 'DECLINED' ? 'card blocked (test)' : undefined });
        }
        return { orderId, providerRef, status: 'AUTHORIZED', amountCents };
      },
      checkPaymentConfirmation: async () => {
        await this.enter('checkPaymentConfirmation');
        return { outcome: this.providerAnswer === 'NONE' ? 'PENDING' : this.providerAnswer };
      },
      voidPayment: async ({ orderId }) => {
        await this.enter('voidPayment');
        return { orderId, providerRef: providerRefFor(orderId), status: 'VOIDED', amountCents: 0 };
      },
      capturePayment: async ({ orderId }) => {
        await this.enter('capturePayment');
        return { orderId, providerRef: providerRefFor(orderId), status: 'CAPTURED', amountCents: 0 };
      },
    };
  }

  shipping(): ShippingActivities {
    return {
      scheduleShipment: async ({ orderId }) => {
        await this.enter('scheduleShipment');
        return { orderId, status: 'SCHEDULED', trackingCode: null };
      },
      cancelShipment: async ({ orderId }) => {
        await this.enter('cancelShipment');
        return { orderId, status: 'CANCELLED', trackingCode: null };
      },
      dispatchShipment: async ({ orderId }) => {
        await this.enter('dispatchShipment');
        return { orderId, status: 'DISPATCHED', trackingCode: `TRK-${orderId}` };
      },
    };
  }
}
