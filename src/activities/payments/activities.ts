// Payment activities. Each is idempotent, keyed by the order id: the payments table's primary key decides
// whether the work was already done here, and the providerRef (pay_<orderId>) is the idempotency key at the
// payment provider. Credit is held by an authorization and given back by a void or refund.
//
// Order of effects, which is what makes every interleaving safe (each activity may run twice, a timed-out
// attempt may still commit, a void may run before the authorization it undoes):
// - authorizePayment holds the credit in the database first, and only asks the provider while the payment
//   row is AUTHORIZED. checkPaymentConfirmation re-sends that request only under the same condition.
// - voidPayment changes the database first (or leaves a tombstone), then voids at the provider (a tombstone
//   there too when the provider has never seen the payment, or a refund if it was captured there). Once the
//   provider holds a VOIDED record, no later authorize under that key can create anything: an authorization
//   can never dangle at the provider after its compensation.
// - capturePayment captures at the provider first, then in the database: a CAPTURED row always means the
//   money was taken at the provider. If a void overtook it, the void refunds at the provider.
// Cases that cannot happen in a correct saga (capturing a voided payment, a provider that contradicts its
// own idempotency) are non-retryable ApplicationFailures with their own types, never retried forever.
// Every change here records its events in the outbox in the same transaction (the Payment's PaymentAuthorized,
// PaymentVoided, PaymentRefunded, PaymentCaptured; the Customer's CustomerCreditChanged when credit moves); a
// call that changes nothing records nothing.
import { ApplicationFailure } from '@temporalio/activity';
import { appendEvents, orderEvent } from '../../events/outbox';
import { refuse } from '../refuse';
import { Refusal, providerRefFor } from '../../domain';
import { customerCreditChanged } from './customers';
import type { PaymentsDb } from './db';
import {
  ProviderConflictError,
  ProviderNotFoundError,
  type PaymentProvider,
  type ProviderAuthorization,
} from './provider';

export interface PaymentResult {
  orderId: string;
  providerRef: string;
  status: 'AUTHORIZED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';
  amountCents: number;
}

export interface PaymentConfirmationCheck {
  outcome: 'CONFIRMED' | 'DECLINED' | 'PENDING';
  reason?: string;
}

/** Types of the non-retryable failures for states a correct saga never reaches. They are not business refusals. */
export const PaymentFailure = {
  /** capturePayment of a payment that is not (or no longer) authorized, here or at the provider. */
  NotCapturable: 'PaymentNotCapturable',
  /** voidPayment found the provider in a state it cannot be released from. */
  NotVoidable: 'PaymentNotVoidable',
  /** checkPaymentConfirmation for an order that has no payment. */
  NotFound: 'PaymentNotFound',
  /** The provider refused our own idempotent request as a different one (key reused with another body). */
  ProviderConflict: 'PaymentProviderConflict',
} as const;

function cannotHappen(type: (typeof PaymentFailure)[keyof typeof PaymentFailure], message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details ? [details] : undefined });
}

/** How the provider's record answers "has the payment been confirmed?". */
function outcomeOf(record: ProviderAuthorization): PaymentConfirmationCheck {
  switch (record.status) {
    case 'PENDING':
      return { outcome: 'PENDING' };
    case 'AUTHORIZED':
    case 'CAPTURED':
      return { outcome: 'CONFIRMED' };
    case 'DECLINED':
      return { outcome: 'DECLINED', ...(record.declineReason ? { reason: record.declineReason } : {}) };
    case 'VOIDED':
    case 'REFUNDED':
      return { outcome: 'DECLINED', reason: `the authorization is ${record.status} at the payment provider` };
  }
}

export function createPaymentsActivities(db: PaymentsDb, provider: PaymentProvider) {
  async function current(orderId: string): Promise<PaymentResult> {
    const payment = await db.payment.findUniqueOrThrow({ where: { orderId } });
    return { orderId, providerRef: payment.providerRef, status: payment.status, amountCents: payment.amountCents };
  }

  /** provider.authorize, with a key-reuse conflict (a bug, never a transient state) made non-retryable. */
  async function authorizeAtProvider(orderId: string, providerRef: string, amountCents: number): Promise<ProviderAuthorization> {
    try {
      return await provider.authorize({ providerRef, orderId, amountCents });
    } catch (error) {
      if (error instanceof ProviderConflictError) {
        throw cannotHappen(PaymentFailure.ProviderConflict, `payment of order ${orderId}: ${error.message}`, { providerRef, code: error.code });
      }
      throw error;
    }
  }

  /** Makes sure the provider holds nothing for this payment: void (a tombstone if unknown), or refund once captured. */
  async function releaseAtProvider(orderId: string, providerRef: string): Promise<ProviderAuthorization> {
    let refused: ProviderConflictError;
    try {
      return await provider.void(providerRef, { orderId });
    } catch (error) {
      if (!(error instanceof ProviderConflictError)) throw error;
      refused = error;
    }
    if (refused.currentStatus === 'CAPTURED' || refused.currentStatus === 'REFUNDED') {
      try {
        return await provider.refund(providerRef); // CAPTURED → REFUNDED; REFUNDED stays
      } catch (error) {
        if (!(error instanceof ProviderConflictError)) throw error;
        refused = error;
      }
    }
    throw cannotHappen(PaymentFailure.NotVoidable, `payment of order ${orderId} cannot be released at the provider: ${refused.message}`, {
      providerRef,
      providerStatus: refused.currentStatus,
    });
  }

  return {
    /**
     * Holds the amount against the customer's credit, then asks the provider to authorize it (PENDING until the
     * bank decides; the provider's webhook, or checkPaymentConfirmation, tells the saga the outcome).
     */
    async authorizePayment(input: { orderId: string; customerId: string; amountCents: number }): Promise<PaymentResult> {
      const providerRef = providerRefFor(input.orderId);
      await db.$transaction(async (tx) => {
        const customer = await tx.customer.findUnique({ where: { id: input.customerId } });
        if (!customer) throw refuse(Refusal.UnknownCustomer, `unknown customer: ${input.customerId}`);
        const claim = await tx.payment.createMany({
          data: [{ orderId: input.orderId, customerId: input.customerId, amountCents: input.amountCents, status: 'AUTHORIZED', providerRef }],
          skipDuplicates: true,
        });
        if (claim.count === 0) return; // authorized (or voided) before: nothing more to do here
        const held = await tx.$executeRaw`
          UPDATE customers SET credit_used_cents = credit_used_cents + ${input.amountCents}
          WHERE id = ${input.customerId} AND credit_used_cents + ${input.amountCents} <= credit_limit_cents`;
        if (held === 0) {
          const available = customer.creditLimitCents - customer.creditUsedCents;
          throw refuse(Refusal.PaymentDeclined, `payment declined: insufficient credit (needs ${input.amountCents}, ${available} available)`, {
            requestedCents: input.amountCents,
            availableCents: available,
          });
        }
        await appendEvents(tx, [
          orderEvent('Payment', input.orderId, 'PaymentAuthorized', { customerId: input.customerId, amountCents: input.amountCents, providerRef }),
          customerCreditChanged(await tx.customer.findUniqueOrThrow({ where: { id: input.customerId } }), input.orderId),
        ]);
      });
      const payment = await current(input.orderId);
      // Sent again on every retry: the provider deduplicates by providerRef, and a lost request is re-sent. Only
      // while AUTHORIZED here: once voided, the provider holds a VOIDED record that refuses this key anyway.
      if (payment.status === 'AUTHORIZED') await authorizeAtProvider(input.orderId, providerRef, payment.amountCents);
      return payment;
    },

    /**
     * Asks the provider whether it has decided, for a saga waiting for the confirmation webhook. If the provider
     * has never heard of the payment (its authorize was lost), re-sends it and answers PENDING. A payment already
     * voided here answers DECLINED (only a stale check can see that: the saga is compensating).
     */
    async checkPaymentConfirmation(input: { orderId: string }): Promise<PaymentConfirmationCheck> {
      const payment = await db.payment.findUnique({ where: { orderId: input.orderId } });
      if (!payment) throw cannotHappen(PaymentFailure.NotFound, `order ${input.orderId} has no payment to confirm`);
      if (payment.status === 'CAPTURED') return { outcome: 'CONFIRMED' };
      if (payment.status !== 'AUTHORIZED') return { outcome: 'DECLINED', reason: `the payment is ${payment.status}` };
      const record = (await provider.get(payment.providerRef)) ?? (await authorizeAtProvider(input.orderId, payment.providerRef, payment.amountCents));
      return outcomeOf(record);
    },

    /**
     * Compensation of authorizePayment: gives the credit back (void, or refund if already captured), then
     * releases the payment at the provider. If no payment exists yet it leaves a tombstone here and at the
     * provider, so that an authorization still in flight can neither hold credit nor be authorized later.
     */
    async voidPayment(input: { orderId: string; customerId: string }): Promise<PaymentResult> {
      const providerRef = providerRefFor(input.orderId);
      const customerKnown = await db.$transaction(async (tx) => {
        const customer = await tx.customer.findUnique({ where: { id: input.customerId } });
        if (!customer) return false; // an unknown customer never had a payment, and cannot have one later
        const tombstone = await tx.payment.createMany({
          data: [{ orderId: input.orderId, customerId: input.customerId, amountCents: 0, status: 'VOIDED', providerRef }],
          skipDuplicates: true,
        });
        if (tombstone.count === 1) {
          await appendEvents(tx, [
            orderEvent('Payment', input.orderId, 'PaymentVoided', { customerId: input.customerId, amountCents: 0, providerRef, beforeAuthorization: true }),
          ]);
          return true;
        }
        const payment = await tx.payment.findUniqueOrThrow({ where: { orderId: input.orderId } });
        for (const [from, to, type] of [['AUTHORIZED', 'VOIDED', 'PaymentVoided'], ['CAPTURED', 'REFUNDED', 'PaymentRefunded']] as const) {
          // The conditional update locks the row: of two concurrent voids, only one gives the credit back.
          const changed = await tx.payment.updateMany({ where: { orderId: input.orderId, status: from }, data: { status: to } });
          if (changed.count === 1) {
            const customer = await tx.customer.update({ where: { id: payment.customerId }, data: { creditUsedCents: { decrement: payment.amountCents } } });
            await appendEvents(tx, [
              orderEvent('Payment', input.orderId, type, { customerId: payment.customerId, amountCents: payment.amountCents, providerRef, beforeAuthorization: false }),
              customerCreditChanged(customer, input.orderId),
            ]);
          }
        }
        return true;
      });
      if (!customerKnown) return { orderId: input.orderId, providerRef, status: 'VOIDED', amountCents: 0 };
      const payment = await current(input.orderId);
      // Every attempt, also after a tombstone: the provider's void is idempotent and must come after ours.
      await releaseAtProvider(input.orderId, payment.providerRef);
      return payment;
    },

    /** Takes the money: the order has shipped. Captured at the provider first, then here. The credit stays used. */
    async capturePayment(input: { orderId: string }): Promise<PaymentResult> {
      const before = await db.payment.findUnique({ where: { orderId: input.orderId } });
      if (!before) throw cannotHappen(PaymentFailure.NotCapturable, `payment of order ${input.orderId} cannot be captured: there is none`);
      if (before.status === 'CAPTURED') return current(input.orderId);
      if (before.status !== 'AUTHORIZED') {
        throw cannotHappen(PaymentFailure.NotCapturable, `payment of order ${input.orderId} cannot be captured: it is ${before.status}`, { status: before.status });
      }
      try {
        await provider.capture(before.providerRef);
      } catch (error) {
        if (error instanceof ProviderConflictError || error instanceof ProviderNotFoundError) {
          throw cannotHappen(PaymentFailure.NotCapturable, `payment of order ${input.orderId} cannot be captured at the provider: ${error.message}`, {
            providerStatus: error instanceof ProviderConflictError ? error.currentStatus : 'UNKNOWN',
          });
        }
        throw error;
      }
      await db.$transaction(async (tx) => {
        const captured = await tx.payment.updateMany({ where: { orderId: input.orderId, status: 'AUTHORIZED' }, data: { status: 'CAPTURED' } });
        if (captured.count === 1) {
          await appendEvents(tx, [
            orderEvent('Payment', input.orderId, 'PaymentCaptured', { customerId: before.customerId, amountCents: before.amountCents, providerRef: before.providerRef }),
          ]);
        }
      });
      const payment = await current(input.orderId);
      if (payment.status !== 'CAPTURED') {
        // A void overtook this capture here; that void refunds at the provider (see releaseAtProvider).
        throw cannotHappen(PaymentFailure.NotCapturable, `payment of order ${input.orderId} cannot be captured: it is ${payment.status}`, { status: payment.status });
      }
      return payment;
    },
  };
}

export type PaymentsActivities = ReturnType<typeof createPaymentsActivities>;
