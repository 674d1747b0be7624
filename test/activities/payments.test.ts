// Payment activities against a real PostgreSQL: an authorization holds credit exactly once however often (or
// however concurrently) it runs, a void or refund gives it back exactly once, a void that comes first leaves a
// tombstone, and refusals are non-retryable and leave nothing behind.
import assert from 'node:assert/strict';
import { Refusal, providerRefFor } from '../../src/domain';
import { createPaymentsActivities, type PaymentResult, type PaymentsActivities } from '../../src/activities/payments/activities';
import { getCustomer } from '../../src/activities/payments/customers';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import type { ConfirmationRequest, PaymentProvider } from '../../src/activities/payments/provider';
import { createServiceDatabases } from '../support/postgres';
import { assertNonRetryable, concurrently } from './refusals';

/** A payment provider that records what it is asked, and can be told to be unreachable for a while. */
class RecordingProvider implements PaymentProvider {
  readonly requests: ConfirmationRequest[] = [];
  unreachableTimes = 0;

  async requestConfirmation(request: ConfirmationRequest): Promise<void> {
    if (this.unreachableTimes > 0) {
      this.unreachableTimes--;
      throw new Error('payment provider unreachable (test)');
    }
    this.requests.push(request);
  }

  requestsFor(orderId: string): ConfirmationRequest[] {
    return this.requests.filter((request) => request.orderId === orderId);
  }
}

describe('payment activities (PostgreSQL)', function () {
  let db: PaymentsDb;
  let provider: RecordingProvider;
  let payments: PaymentsActivities;
  let sequence = 0;
  const newOrderId = () => `ord_test_${++sequence}`;

  before(async function () {
    const urls = await createServiceDatabases('act_payments');
    db = connectPaymentsDb(urls.payments);
    provider = new RecordingProvider();
    payments = createPaymentsActivities(db, provider);
  });

  after(async function () {
    await db?.$disconnect();
  });

  async function creditUsed(customerId: string): Promise<number> {
    const customer = await getCustomer(db, customerId);
    assert.ok(customer, `customer ${customerId} is seeded`);
    return customer.creditUsedCents;
  }

  function result(orderId: string, status: PaymentResult['status'], amountCents: number): PaymentResult {
    return { orderId, providerRef: providerRefFor(orderId), status, amountCents };
  }

  describe('authorizePayment', function () {
    it('holds the amount against the credit, records the payment and asks the provider to confirm', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');

      const authorized = await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 12_345 });

      assert.deepEqual(authorized, result(orderId, 'AUTHORIZED', 12_345));
      assert.equal(await creditUsed('cust-alice'), before + 12_345);
      const row = await db.payment.findUnique({ where: { orderId } });
      assert.equal(row?.status, 'AUTHORIZED');
      assert.equal(row.customerId, 'cust-alice');
      assert.equal(row.amountCents, 12_345);
      assert.deepEqual(provider.requestsFor(orderId), [{ orderId, providerRef: providerRefFor(orderId), amountCents: 12_345 }]);
    });

    it('run twice holds the credit once and returns the same result (asking the provider again is fine)', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', amountCents: 5_000 };
      const before = await creditUsed('cust-alice');

      const first = await payments.authorizePayment(input);
      const second = await payments.authorizePayment(input);

      assert.deepEqual(second, first);
      assert.deepEqual(first, result(orderId, 'AUTHORIZED', 5_000));
      assert.equal(await creditUsed('cust-alice'), before + 5_000);
      assert.equal(await db.payment.count({ where: { orderId } }), 1);
      const asked = provider.requestsFor(orderId);
      assert.ok(asked.length >= 1, 'the provider is asked to confirm');
      for (const request of asked) assert.deepEqual(request, { orderId, providerRef: providerRefFor(orderId), amountCents: 5_000 });
    });

    it('run 5 times concurrently holds the credit once, and every attempt reports the same authorization', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-dave', amountCents: 70_000 };
      const before = await creditUsed('cust-dave');

      const results = await concurrently(5, () => payments.authorizePayment(input));

      assert.deepEqual(results, Array(5).fill(result(orderId, 'AUTHORIZED', 70_000)));
      assert.equal(await creditUsed('cust-dave'), before + 70_000);
      assert.equal(await db.payment.count({ where: { orderId } }), 1);
    });

    it('asks the provider again on the retry after it was unreachable, without holding more credit', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', amountCents: 800 };
      const before = await creditUsed('cust-alice');
      provider.unreachableTimes = 1;

      // The hold committed before the provider call failed: the failure is retryable, not a refusal.
      await assert.rejects(payments.authorizePayment(input), (error: any) => error.nonRetryable !== true && /unreachable/.test(error.message));
      assert.equal(await creditUsed('cust-alice'), before + 800);
      assert.deepEqual(provider.requestsFor(orderId), []);

      assert.deepEqual(await payments.authorizePayment(input), result(orderId, 'AUTHORIZED', 800));
      assert.equal(await creditUsed('cust-alice'), before + 800);
      assert.deepEqual(provider.requestsFor(orderId), [{ orderId, providerRef: providerRefFor(orderId), amountCents: 800 }]);
    });

    it('declines non-retryably for insufficient credit, using no credit and leaving no payment', async function () {
      const orderId = newOrderId();
      const bob = await getCustomer(db, 'cust-bob');
      assert.ok(bob);
      const amountCents = bob.creditAvailableCents + 1;

      const failure = await assertNonRetryable(payments.authorizePayment({ orderId, customerId: 'cust-bob', amountCents }), Refusal.PaymentDeclined);

      assert.deepEqual(failure.details, [{ requestedCents: amountCents, availableCents: bob.creditAvailableCents }]);
      assert.equal(await creditUsed('cust-bob'), bob.creditUsedCents);
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null, 'a declined payment leaves no payment row');
      assert.deepEqual(provider.requestsFor(orderId), [], 'a declined payment is not sent to the provider');

      // Nothing of the declined attempt is left behind: the same order can still be authorized within the limit.
      assert.deepEqual(
        await payments.authorizePayment({ orderId, customerId: 'cust-bob', amountCents: bob.creditAvailableCents }),
        result(orderId, 'AUTHORIZED', bob.creditAvailableCents),
      );
      assert.equal(await creditUsed('cust-bob'), bob.creditLimitCents);
    });

    it('declines any amount for a customer without credit', async function () {
      const orderId = newOrderId();
      await assertNonRetryable(payments.authorizePayment({ orderId, customerId: 'cust-carol', amountCents: 1 }), Refusal.PaymentDeclined);
      assert.equal(await creditUsed('cust-carol'), 0);
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null);
    });

    it('never exceeds the credit limit: of concurrent orders competing for the last credit, only those that fit succeed', async function () {
      const customerId = 'cust-test-limit';
      await db.customer.create({ data: { id: customerId, name: 'Limit test', creditLimitCents: 10_000 } });
      const orderIds = Array.from({ length: 6 }, newOrderId);

      const outcomes = await Promise.allSettled(orderIds.map((orderId) => payments.authorizePayment({ orderId, customerId, amountCents: 3_000 })));

      const authorized = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const declined = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      assert.equal(authorized.length, 3);
      for (const { reason } of declined) assert.equal(reason.type, Refusal.PaymentDeclined);
      assert.equal(await creditUsed(customerId), 9_000);
      assert.equal(await db.payment.count({ where: { customerId } }), 3);
    });

    it('refuses an unknown customer non-retryably and records nothing', async function () {
      const orderId = newOrderId();
      const failure = await assertNonRetryable(
        payments.authorizePayment({ orderId, customerId: 'cust-nobody', amountCents: 100 }),
        Refusal.UnknownCustomer,
      );
      assert.match(failure.message, /cust-nobody/);
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null);
      assert.deepEqual(provider.requestsFor(orderId), []);
    });
  });

  describe('voidPayment (compensation of authorizePayment)', function () {
    it('gives the credit back, and run twice gives it back once with the same result', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 9_900 });
      assert.equal(await creditUsed('cust-alice'), before + 9_900);

      const first = await payments.voidPayment({ orderId, customerId: 'cust-alice' });
      const second = await payments.voidPayment({ orderId, customerId: 'cust-alice' });

      assert.deepEqual(first, result(orderId, 'VOIDED', 9_900));
      assert.deepEqual(second, first);
      assert.equal(await creditUsed('cust-alice'), before);
      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'VOIDED');
    });

    it('run 5 times concurrently after an authorization gives the credit back once', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-dave');
      await payments.authorizePayment({ orderId, customerId: 'cust-dave', amountCents: 31_000 });

      const results = await concurrently(5, () => payments.voidPayment({ orderId, customerId: 'cust-dave' }));

      assert.deepEqual(results, Array(5).fill(result(orderId, 'VOIDED', 31_000)));
      assert.equal(await creditUsed('cust-dave'), before);
    });

    it('before any authorization leaves a tombstone, and the late authorization then holds no credit', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', amountCents: 4_200 };
      const before = await creditUsed('cust-alice');

      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 0));
      const tombstone = await db.payment.findUnique({ where: { orderId } });
      assert.equal(tombstone?.status, 'VOIDED');
      assert.equal(tombstone.amountCents, 0);
      assert.equal(await creditUsed('cust-alice'), before, 'voiding nothing must not give credit');

      // The timed-out authorization attempt commits late: it must find the tombstone and do nothing.
      assert.deepEqual(await payments.authorizePayment(input), result(orderId, 'VOIDED', 0));
      assert.deepEqual(await payments.authorizePayment(input), result(orderId, 'VOIDED', 0));
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 0));

      assert.equal(await creditUsed('cust-alice'), before);
      assert.deepEqual(provider.requestsFor(orderId), [], 'a voided payment is not sent to the provider');
    });

    it('racing an authorization of the same order always ends voided with the credit as it was', async function () {
      const orderIds = Array.from({ length: 4 }, newOrderId);
      const before = await creditUsed('cust-dave');

      // Whichever commits first, authorization then void or tombstone then ignored authorization, no credit moves.
      await Promise.all(
        orderIds.flatMap((orderId) => [
          payments.authorizePayment({ orderId, customerId: 'cust-dave', amountCents: 1_500 }),
          payments.voidPayment({ orderId, customerId: 'cust-dave' }),
        ]),
      );

      assert.equal(await creditUsed('cust-dave'), before);
      for (const orderId of orderIds) assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'VOIDED');
    });

    it('for an unknown customer does nothing and reports VOIDED', async function () {
      const orderId = newOrderId();
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-nobody' }), result(orderId, 'VOIDED', 0));
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null);
    });
  });

  describe('capturePayment', function () {
    it('captures an authorization, keeping the credit used; run twice returns the same result', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 2_500 });

      const first = await payments.capturePayment({ orderId });
      const second = await payments.capturePayment({ orderId });

      assert.deepEqual(first, result(orderId, 'CAPTURED', 2_500));
      assert.deepEqual(second, first);
      assert.equal(await creditUsed('cust-alice'), before + 2_500);
      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'CAPTURED');
    });

    it('does not capture a voided payment', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 700 });
      await payments.voidPayment({ orderId, customerId: 'cust-alice' });

      await assert.rejects(payments.capturePayment({ orderId }), /cannot be captured: it is VOIDED/);

      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'VOIDED');
      assert.equal(await creditUsed('cust-alice'), before);
    });

    it('voiding after the capture refunds: status REFUNDED and the credit back, once', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-dave');
      await payments.authorizePayment({ orderId, customerId: 'cust-dave', amountCents: 15_000 });
      await payments.capturePayment({ orderId });
      assert.equal(await creditUsed('cust-dave'), before + 15_000);

      const first = await payments.voidPayment({ orderId, customerId: 'cust-dave' });
      const second = await payments.voidPayment({ orderId, customerId: 'cust-dave' });

      assert.deepEqual(first, result(orderId, 'REFUNDED', 15_000));
      assert.deepEqual(second, first);
      assert.equal(await creditUsed('cust-dave'), before);
      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'REFUNDED');
    });
  });
});
