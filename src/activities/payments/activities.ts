// Payment activities. Each is idempotent, keyed by the order id: the payments table's primary key decides
// whether the work was already done. Credit is held by an authorization and given back by a void or refund.
import { refuse } from '../refuse';
import { Refusal, providerRefFor } from '../../domain';
import type { PaymentsDb } from './db';
import type { PaymentProvider } from './provider';

export interface PaymentResult {
  orderId: string;
  providerRef: string;
  status: 'AUTHORIZED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';
  amountCents: number;
}

export function createPaymentsActivities(db: PaymentsDb, provider: PaymentProvider) {
  async function current(orderId: string): Promise<PaymentResult> {
    const payment = await db.payment.findUniqueOrThrow({ where: { orderId } });
    return { orderId, providerRef: payment.providerRef, status: payment.status, amountCents: payment.amountCents };
  }

  return {
    /** Holds the amount against the customer's credit, then asks the provider to confirm. */
    async authorizePayment(input: { orderId: string; customerId: string; amountCents: number }): Promise<PaymentResult> {
      const providerRef = providerRefFor(input.orderId);
      await db.$transaction(async (tx) => {
        const customer = await tx.customer.findUnique({ where: { id: input.customerId } });
        if (!customer) throw refuse(Refusal.UnknownCustomer, `unknown customer: ${input.customerId}`);
        const claim = await tx.payment.createMany({
          data: [{ orderId: input.orderId, customerId: input.customerId, amountCents: input.amountCents, status: 'AUTHORIZED', providerRef }],
          skipDuplicates: true,
        });
        if (claim.count === 0) return; // authorized (or voided) before: nothing more to do
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
      });
      const payment = await current(input.orderId);
      // Asked again on every retry: the provider deduplicates by providerRef, and a lost request is re-sent.
      if (payment.status === 'AUTHORIZED') await provider.requestConfirmation({ orderId: input.orderId, providerRef, amountCents: payment.amountCents });
      return payment;
    },

    /**
     * Compensation of authorizePayment: gives the credit back (void, or refund if already captured). If no
     * payment exists yet it leaves a tombstone, so that an authorization still in flight cannot hold credit later.
     */
    async voidPayment(input: { orderId: string; customerId: string }): Promise<PaymentResult> {
      await db.$transaction(async (tx) => {
        const customer = await tx.customer.findUnique({ where: { id: input.customerId } });
        if (!customer) return; // an unknown customer never had a payment, and cannot have one later
        const tombstone = await tx.payment.createMany({
          data: [{ orderId: input.orderId, customerId: input.customerId, amountCents: 0, status: 'VOIDED', providerRef: providerRefFor(input.orderId) }],
          skipDuplicates: true,
        });
        if (tombstone.count === 1) return;
        const payment = await tx.payment.findUniqueOrThrow({ where: { orderId: input.orderId } });
        for (const [from, to] of [['AUTHORIZED', 'VOIDED'], ['CAPTURED', 'REFUNDED']] as const) {
          // The conditional update locks the row: of two concurrent voids, only one gives the credit back.
          const changed = await tx.payment.updateMany({ where: { orderId: input.orderId, status: from }, data: { status: to } });
          if (changed.count === 1) {
            await tx.customer.update({ where: { id: payment.customerId }, data: { creditUsedCents: { decrement: payment.amountCents } } });
          }
        }
      });
      const payment = await db.payment.findUnique({ where: { orderId: input.orderId } });
      return payment
        ? { orderId: input.orderId, providerRef: payment.providerRef, status: payment.status, amountCents: payment.amountCents }
        : { orderId: input.orderId, providerRef: providerRefFor(input.orderId), status: 'VOIDED', amountCents: 0 };
    },

    /** Takes the money: the order has shipped. The credit stays used. */
    async capturePayment(input: { orderId: string }): Promise<PaymentResult> {
      await db.payment.updateMany({ where: { orderId: input.orderId, status: 'AUTHORIZED' }, data: { status: 'CAPTURED' } });
      const payment = await current(input.orderId);
      if (payment.status !== 'CAPTURED') throw new Error(`payment of order ${input.orderId} cannot be captured: it is ${payment.status}`);
      return payment;
    },
  };
}

export type PaymentsActivities = ReturnType<typeof createPaymentsActivities>;
