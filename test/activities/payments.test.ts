// Payment activities against a real PostgreSQL and a real sandbox payment provider (in this process, over HTTP):
// an authorization holds credit exactly once however often (or however concurrently) it runs and creates one
// record at the provider; a void or refund gives it back exactly once and releases it at the provider too; a
// void that comes first leaves a tombstone in both places; a capture takes the money at the provider and here;
// checkPaymentConfirmation answers from the provider and re-sends a lost authorization; refusals are
// non-retryable and leave nothing behind; reconciliation finds a planted mismatch.
import assert from 'node:assert/strict';
import { Refusal, providerRefFor } from '../../src/domain';
import { createPaymentsActivities, PaymentFailure, type PaymentResult, type PaymentsActivities } from '../../src/activities/payments/activities';
import { getCustomer } from '../../src/activities/payments/customers';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import { httpPaymentProvider, listAllAuthorizations, type PaymentProvider } from '../../src/activities/payments/provider';
import { reconcilePayments } from '../../src/activities/payments/reconciliation';
import type { RunningPaymentProvider } from '../../src/payment-provider/start';
import { API_KEY, decide, startReceiver, startTestProvider, tempDataDir, type Receiver } from '../payment-provider/support';
import { createServiceDatabases } from '../support/postgres';
import { assertNonRetryable, concurrently } from './refusals';

describe('payment activities (PostgreSQL + sandbox provider)', function () {
  let db: PaymentsDb;
  let receiver: Receiver;
  let data: ReturnType<typeof tempDataDir>;
  let sandbox: RunningPaymentProvider;
  let provider: PaymentProvider;
  let payments: PaymentsActivities;
  let sequence = 0;
  const newOrderId = () => `ord_test_${++sequence}`;

  before(async function () {
    const urls = await createServiceDatabases('act_payments');
    db = connectPaymentsDb(urls.payments);
    receiver = await startReceiver();
    data = tempDataDir();
    sandbox = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url });
    provider = httpPaymentProvider({ url: sandbox.url, apiKey: API_KEY, timeoutMs: 3_000 });
    payments = createPaymentsActivities(db, provider);
  });

  after(async function () {
    await sandbox?.stop();
    await receiver?.close();
    data?.remove();
    await db?.$disconnect();
  });

  /** Runs `during` with the provider down (its process gone), then brings it back on the same port and data. */
  async function withProviderDown<T>(during: () => Promise<T>): Promise<T> {
    const port = sandbox.port;
    await sandbox.stop();
    try {
      return await during();
    } finally {
      sandbox = await startTestProvider({ dataDir: data.dir, callbackUrl: receiver.url, port });
    }
  }

  const atProvider = (orderId: string) => provider.get(providerRefFor(orderId));

  async function creditUsed(customerId: string): Promise<number> {
    const customer = await getCustomer(db, customerId);
    assert.ok(customer, `customer ${customerId} is seeded`);
    return customer.creditUsedCents;
  }

  function result(orderId: string, status: PaymentResult['status'], amountCents: number): PaymentResult {
    return { orderId, providerRef: providerRefFor(orderId), status, amountCents };
  }

  async function assertAtProvider(orderId: string, expected: { status: string; amountCents?: number; tombstone?: boolean } | undefined) {
    const record = await atProvider(orderId);
    if (expected === undefined) return assert.equal(record, undefined, `the provider has no record of ${orderId}`);
    assert.ok(record, `the provider has a record of ${orderId}`);
    assert.equal(record.status, expected.status, `provider status of ${orderId}`);
    assert.equal(record.orderId, orderId);
    if (expected.amountCents !== undefined) assert.equal(record.amountCents, expected.amountCents);
    assert.equal(record.tombstone, expected.tombstone ?? false);
  }

  /** Authorizes and has the sandbox bank confirm, as the saga would see before capturing. */
  async function authorizedAndConfirmed(orderId: string, customerId: string, amountCents: number): Promise<void> {
    await payments.authorizePayment({ orderId, customerId, amountCents });
    await decide(sandbox.url, providerRefFor(orderId), 'CONFIRMED');
  }

  describe('authorizePayment', function () {
    it('holds the amount against the credit, records the payment and authorizes it at the provider (PENDING)', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');

      const authorized = await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 12_345 });

      assert.deepEqual(authorized, result(orderId, 'AUTHORIZED', 12_345));
      assert.equal(await creditUsed('cust-alice'), before + 12_345);
      const row = await db.payment.findUnique({ where: { orderId } });
      assert.equal(row?.status, 'AUTHORIZED');
      assert.equal(row.customerId, 'cust-alice');
      assert.equal(row.amountCents, 12_345);
      await assertAtProvider(orderId, { status: 'PENDING', amountCents: 12_345 });
    });

    it('run twice holds the credit once, returns the same result, and leaves one record at the provider', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', amountCents: 5_000 };
      const before = await creditUsed('cust-alice');

      const first = await payments.authorizePayment(input);
      const recordAfterFirst = await atProvider(orderId);
      const second = await payments.authorizePayment(input);

      assert.deepEqual(second, first);
      assert.deepEqual(first, result(orderId, 'AUTHORIZED', 5_000));
      assert.equal(await creditUsed('cust-alice'), before + 5_000);
      assert.equal(await db.payment.count({ where: { orderId } }), 1);
      assert.deepEqual(await atProvider(orderId), recordAfterFirst, 'the second request replayed the first, it created nothing');
      const all = await listAllAuthorizations(provider);
      assert.equal(all.filter((record) => record.orderId === orderId).length, 1);
    });

    it('run 5 times concurrently holds the credit once, and every attempt reports the same authorization', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-dave', amountCents: 70_000 };
      const before = await creditUsed('cust-dave');

      const results = await concurrently(5, () => payments.authorizePayment(input));

      assert.deepEqual(results, Array(5).fill(result(orderId, 'AUTHORIZED', 70_000)));
      assert.equal(await creditUsed('cust-dave'), before + 70_000);
      assert.equal(await db.payment.count({ where: { orderId } }), 1);
      await assertAtProvider(orderId, { status: 'PENDING', amountCents: 70_000 });
    });

    it('fails retryably while the provider is down (the hold stays, once), and the retry authorizes at the provider', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', amountCents: 800 };
      const before = await creditUsed('cust-alice');

      await withProviderDown(async () => {
        // The hold committed before the provider call failed: the failure is retryable, not a refusal.
        await assert.rejects(payments.authorizePayment(input), (error: any) => error.nonRetryable !== true && /unreachable/.test(error.message));
        await assert.rejects(payments.authorizePayment(input), /unreachable/);
        assert.equal(await creditUsed('cust-alice'), before + 800);
      });
      await assertAtProvider(orderId, undefined);

      assert.deepEqual(await payments.authorizePayment(input), result(orderId, 'AUTHORIZED', 800));
      assert.equal(await creditUsed('cust-alice'), before + 800);
      await assertAtProvider(orderId, { status: 'PENDING', amountCents: 800 });
    });

    it('declines non-retryably for insufficient credit, using no credit and leaving no payment here or at the provider', async function () {
      const orderId = newOrderId();
      const bob = await getCustomer(db, 'cust-bob');
      assert.ok(bob);
      const amountCents = bob.creditAvailableCents + 1;

      const failure = await assertNonRetryable(payments.authorizePayment({ orderId, customerId: 'cust-bob', amountCents }), Refusal.PaymentDeclined);

      assert.deepEqual(failure.details, [{ requestedCents: amountCents, availableCents: bob.creditAvailableCents }]);
      assert.equal(await creditUsed('cust-bob'), bob.creditUsedCents);
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null, 'a declined payment leaves no payment row');
      await assertAtProvider(orderId, undefined);

      // Nothing of the declined attempt is left behind: the same order can still be authorized within the limit.
      assert.deepEqual(
        await payments.authorizePayment({ orderId, customerId: 'cust-bob', amountCents: bob.creditAvailableCents }),
        result(orderId, 'AUTHORIZED', bob.creditAvailableCents),
      );
      assert.equal(await creditUsed('cust-bob'), bob.creditLimitCents);
      await assertAtProvider(orderId, { status: 'PENDING', amountCents: bob.creditAvailableCents });
    });

    it('declines any amount for a customer without credit', async function () {
      const orderId = newOrderId();
      await assertNonRetryable(payments.authorizePayment({ orderId, customerId: 'cust-carol', amountCents: 1 }), Refusal.PaymentDeclined);
      assert.equal(await creditUsed('cust-carol'), 0);
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null);
      await assertAtProvider(orderId, undefined);
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
      const atTheProvider = (await listAllAuthorizations(provider)).filter((record) => orderIds.includes(record.orderId ?? ''));
      assert.equal(atTheProvider.length, 3, 'only the authorizations that fit reach the provider');
    });

    it('refuses an unknown customer non-retryably and records nothing', async function () {
      const orderId = newOrderId();
      const failure = await assertNonRetryable(
        payments.authorizePayment({ orderId, customerId: 'cust-nobody', amountCents: 100 }),
        Refusal.UnknownCustomer,
      );
      assert.match(failure.message, /cust-nobody/);
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null);
      await assertAtProvider(orderId, undefined);
    });
  });

  describe('checkPaymentConfirmation', function () {
    it('answers PENDING until the bank decides, then CONFIRMED', async function () {
      const orderId = newOrderId();
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 1_100 });
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'PENDING' });
      await decide(sandbox.url, providerRefFor(orderId), 'CONFIRMED');
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'CONFIRMED' });
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'CONFIRMED' });
    });

    it("answers DECLINED with the bank's reason", async function () {
      const orderId = newOrderId();
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 1_200 });
      await decide(sandbox.url, providerRefFor(orderId), 'DECLINED', 'suspected fraud');
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'DECLINED', reason: 'suspected fraud' });
    });

    it('re-sends an authorization the provider never received, and answers PENDING', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      // The authorization's request to the provider is lost (the provider is down); the activity is not retried
      // in time, but the hold is committed and the saga waits for a confirmation that cannot come.
      await withProviderDown(() => assert.rejects(payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 1_300 })));
      await assertAtProvider(orderId, undefined);

      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'PENDING' });
      await assertAtProvider(orderId, { status: 'PENDING', amountCents: 1_300 });
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'PENDING' });
      assert.equal((await listAllAuthorizations(provider)).filter((record) => record.orderId === orderId).length, 1);

      await decide(sandbox.url, providerRefFor(orderId), 'CONFIRMED');
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'CONFIRMED' });
      assert.equal(await creditUsed('cust-alice'), before + 1_300, 'the credit was held once');
    });

    it('fails retryably while the provider is down', async function () {
      const orderId = newOrderId();
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 1_400 });
      await withProviderDown(() => assert.rejects(payments.checkPaymentConfirmation({ orderId }), (error: any) => error.nonRetryable !== true && /unreachable/.test(error.message)));
      assert.deepEqual(await payments.checkPaymentConfirmation({ orderId }), { outcome: 'PENDING' });
    });

    it('answers DECLINED for a payment voided meanwhile, without re-sending it to the provider', async function () {
      const orderId = newOrderId();
      await withProviderDown(() => assert.rejects(payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 1_500 })));
      await payments.voidPayment({ orderId, customerId: 'cust-alice' });
      const check = await payments.checkPaymentConfirmation({ orderId });
      assert.equal(check.outcome, 'DECLINED');
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 0, tombstone: true });
    });

    it('fails non-retryably for an order without a payment', async function () {
      await assertNonRetryable(payments.checkPaymentConfirmation({ orderId: newOrderId() }), PaymentFailure.NotFound);
    });
  });

  describe('voidPayment (compensation of authorizePayment)', function () {
    it('gives the credit back and voids at the provider; run twice gives it back once with the same result', async function () {
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
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 9_900 });
    });

    it('voids a confirmed (AUTHORIZED) authorization at the provider too', async function () {
      const orderId = newOrderId();
      await authorizedAndConfirmed(orderId, 'cust-alice', 3_300);
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 3_300));
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 3_300 });
    });

    it('after the provider declined: gives the credit back, and the DECLINED record holds nothing', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 3_400 });
      await decide(sandbox.url, providerRefFor(orderId), 'DECLINED');
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 3_400));
      assert.equal(await creditUsed('cust-alice'), before);
      await assertAtProvider(orderId, { status: 'DECLINED', amountCents: 3_400 });
    });

    it('run 5 times concurrently after an authorization gives the credit back once', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-dave');
      await payments.authorizePayment({ orderId, customerId: 'cust-dave', amountCents: 31_000 });

      const results = await concurrently(5, () => payments.voidPayment({ orderId, customerId: 'cust-dave' }));

      assert.deepEqual(results, Array(5).fill(result(orderId, 'VOIDED', 31_000)));
      assert.equal(await creditUsed('cust-dave'), before);
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 31_000 });
    });

    it('before any authorization leaves a tombstone here and at the provider; the late authorization then holds nothing anywhere', async function () {
      const orderId = newOrderId();
      const input = { orderId, customerId: 'cust-alice', amountCents: 4_200 };
      const before = await creditUsed('cust-alice');

      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 0));
      const tombstone = await db.payment.findUnique({ where: { orderId } });
      assert.equal(tombstone?.status, 'VOIDED');
      assert.equal(tombstone.amountCents, 0);
      assert.equal(await creditUsed('cust-alice'), before, 'voiding nothing must not give credit');
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 0, tombstone: true });

      // The timed-out authorization attempt commits late: it must find the tombstone and do nothing.
      assert.deepEqual(await payments.authorizePayment(input), result(orderId, 'VOIDED', 0));
      assert.deepEqual(await payments.authorizePayment(input), result(orderId, 'VOIDED', 0));
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 0));

      assert.equal(await creditUsed('cust-alice'), before);
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 0, tombstone: true });
      // Even a stale request that reached the provider now (sent before the void) cannot authorize anything.
      const stale = await provider.authorize({ providerRef: providerRefFor(orderId), orderId, amountCents: 4_200 });
      assert.equal(stale.status, 'VOIDED');
      assert.equal(stale.tombstone, true);
    });

    it('a void between the hold and the provider call: the provider ends with a tombstone, never a live authorization', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      // Attempt 1 holds the credit, then cannot reach the provider (or its request is still on the way).
      await withProviderDown(() => assert.rejects(payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 4_300 })));
      // The saga gives up and compensates.
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 4_300));
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 0, tombstone: true });
      // Attempt 1's request to the provider arrives late: refused by the tombstone.
      assert.equal((await provider.authorize({ providerRef: providerRefFor(orderId), orderId, amountCents: 4_300 })).status, 'VOIDED');
      // A retry of the activity sees the void here and does not go to the provider.
      assert.deepEqual(await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 4_300 }), result(orderId, 'VOIDED', 4_300));
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 0, tombstone: true });
      assert.equal(await creditUsed('cust-alice'), before);
    });

    it('fails retryably while the provider is down, after giving the credit back; the retry voids at the provider', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 4_400 });
      await withProviderDown(async () => {
        await assert.rejects(payments.voidPayment({ orderId, customerId: 'cust-alice' }), (error: any) => error.nonRetryable !== true && /unreachable/.test(error.message));
        assert.equal(await creditUsed('cust-alice'), before);
      });
      await assertAtProvider(orderId, { status: 'PENDING', amountCents: 4_400 });
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 4_400));
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 4_400 });
      assert.equal(await creditUsed('cust-alice'), before);
    });

    it('racing an authorization of the same order always ends voided here and at the provider, with the credit as it was', async function () {
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
      for (const orderId of orderIds) {
        assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'VOIDED');
        assert.equal((await atProvider(orderId))?.status, 'VOIDED', `${orderId} holds nothing at the provider`);
      }
    });

    it('for an unknown customer does nothing and reports VOIDED', async function () {
      const orderId = newOrderId();
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-nobody' }), result(orderId, 'VOIDED', 0));
      assert.equal(await db.payment.findUnique({ where: { orderId } }), null);
    });
  });

  describe('capturePayment', function () {
    it('captures at the provider and here, keeping the credit used; run twice returns the same result', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await authorizedAndConfirmed(orderId, 'cust-alice', 2_500);

      const first = await payments.capturePayment({ orderId });
      const second = await payments.capturePayment({ orderId });

      assert.deepEqual(first, result(orderId, 'CAPTURED', 2_500));
      assert.deepEqual(second, first);
      assert.equal(await creditUsed('cust-alice'), before + 2_500);
      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'CAPTURED');
      await assertAtProvider(orderId, { status: 'CAPTURED', amountCents: 2_500 });
    });

    it('finishes a capture whose earlier attempt captured at the provider but not here (a timed-out attempt)', async function () {
      const orderId = newOrderId();
      await authorizedAndConfirmed(orderId, 'cust-alice', 2_600);
      await provider.capture(providerRefFor(orderId)); // attempt 1 got this far, then its worker died

      assert.deepEqual(await payments.capturePayment({ orderId }), result(orderId, 'CAPTURED', 2_600));
      await assertAtProvider(orderId, { status: 'CAPTURED', amountCents: 2_600 });
    });

    it('fails retryably while the provider is down, changing nothing; the retry captures', async function () {
      const orderId = newOrderId();
      await authorizedAndConfirmed(orderId, 'cust-alice', 2_700);
      await withProviderDown(() => assert.rejects(payments.capturePayment({ orderId }), (error: any) => error.nonRetryable !== true && /unreachable/.test(error.message)));
      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'AUTHORIZED');
      assert.deepEqual(await payments.capturePayment({ orderId }), result(orderId, 'CAPTURED', 2_700));
    });

    it('does not capture a voided payment: a non-retryable PaymentNotCapturable, nothing changed', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await authorizedAndConfirmed(orderId, 'cust-alice', 700);
      await payments.voidPayment({ orderId, customerId: 'cust-alice' });

      const failure = await assertNonRetryable(payments.capturePayment({ orderId }), PaymentFailure.NotCapturable);
      assert.match(failure.message, /cannot be captured: it is VOIDED/);

      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'VOIDED');
      assert.equal(await creditUsed('cust-alice'), before);
      await assertAtProvider(orderId, { status: 'VOIDED', amountCents: 700 });
    });

    it('does not capture what the provider has not confirmed (PENDING or DECLINED there), nor a payment that does not exist', async function () {
      const pending = newOrderId();
      await payments.authorizePayment({ orderId: pending, customerId: 'cust-alice', amountCents: 710 });
      const failure = await assertNonRetryable(payments.capturePayment({ orderId: pending }), PaymentFailure.NotCapturable);
      assert.match(failure.message, /PENDING/);
      assert.equal((await db.payment.findUnique({ where: { orderId: pending } }))?.status, 'AUTHORIZED');

      const declined = newOrderId();
      await payments.authorizePayment({ orderId: declined, customerId: 'cust-alice', amountCents: 720 });
      await decide(sandbox.url, providerRefFor(declined), 'DECLINED');
      await assertNonRetryable(payments.capturePayment({ orderId: declined }), PaymentFailure.NotCapturable);
      assert.equal((await db.payment.findUnique({ where: { orderId: declined } }))?.status, 'AUTHORIZED');

      await assertNonRetryable(payments.capturePayment({ orderId: newOrderId() }), PaymentFailure.NotCapturable);
    });

    it('voiding after the capture refunds here and at the provider: the credit back, once', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-dave');
      await authorizedAndConfirmed(orderId, 'cust-dave', 15_000);
      await payments.capturePayment({ orderId });
      assert.equal(await creditUsed('cust-dave'), before + 15_000);

      const first = await payments.voidPayment({ orderId, customerId: 'cust-dave' });
      const second = await payments.voidPayment({ orderId, customerId: 'cust-dave' });

      assert.deepEqual(first, result(orderId, 'REFUNDED', 15_000));
      assert.deepEqual(second, first);
      assert.equal(await creditUsed('cust-dave'), before);
      assert.equal((await db.payment.findUnique({ where: { orderId } }))?.status, 'REFUNDED');
      await assertAtProvider(orderId, { status: 'REFUNDED', amountCents: 15_000 });
    });

    it('a void that overtakes a capture between its provider call and its database update refunds at the provider', async function () {
      const orderId = newOrderId();
      const before = await creditUsed('cust-alice');
      await authorizedAndConfirmed(orderId, 'cust-alice', 1_600);
      await provider.capture(providerRefFor(orderId)); // the capture's provider call…
      assert.deepEqual(await payments.voidPayment({ orderId, customerId: 'cust-alice' }), result(orderId, 'VOIDED', 1_600)); // …the void…
      await assertNonRetryable(payments.capturePayment({ orderId }), PaymentFailure.NotCapturable); // …then the capture's database update

      assert.equal(await creditUsed('cust-alice'), before);
      await assertAtProvider(orderId, { status: 'REFUNDED', amountCents: 1_600 });
    });
  });

  describe('reconciliation with the provider', function () {
    it('finds nothing to report after every kind of outcome, and reports a planted mismatch', async function () {
      // A provider and databases of its own, so that only these payments are compared.
      const urls = await createServiceDatabases('act_payments_recon');
      const reconDb = connectPaymentsDb(urls.payments);
      const reconData = tempDataDir();
      const reconSandbox = await startTestProvider({ dataDir: reconData.dir, callbackUrl: receiver.url });
      try {
        const reconProvider = httpPaymentProvider({ url: reconSandbox.url, apiKey: API_KEY });
        const activities = createPaymentsActivities(reconDb, reconProvider);
        const customerId = 'cust-dave';
        const confirm = (orderId: string, outcome: 'CONFIRMED' | 'DECLINED' = 'CONFIRMED') => decide(reconSandbox.url, providerRefFor(orderId), outcome);

        await activities.authorizePayment({ orderId: 'ord_captured', customerId, amountCents: 1_000 });
        await confirm('ord_captured');
        await activities.capturePayment({ orderId: 'ord_captured' });
        await activities.authorizePayment({ orderId: 'ord_voided', customerId, amountCents: 2_000 });
        await activities.voidPayment({ orderId: 'ord_voided', customerId });
        await activities.voidPayment({ orderId: 'ord_tombstone', customerId });
        await activities.authorizePayment({ orderId: 'ord_declined', customerId, amountCents: 3_000 });
        await confirm('ord_declined', 'DECLINED');
        await activities.voidPayment({ orderId: 'ord_declined', customerId });
        await activities.authorizePayment({ orderId: 'ord_refunded', customerId, amountCents: 4_000 });
        await confirm('ord_refunded');
        await activities.capturePayment({ orderId: 'ord_refunded' });
        await activities.voidPayment({ orderId: 'ord_refunded', customerId });
        await activities.authorizePayment({ orderId: 'ord_authorized', customerId, amountCents: 5_000 });
        await confirm('ord_authorized');
        await activities.authorizePayment({ orderId: 'ord_waiting', customerId, amountCents: 6_000 });

        const reconcile = async (options = {}) => reconcilePayments(await listAllAuthorizations(reconProvider, 2), await reconDb.payment.findMany(), options);

        assert.deepEqual(await reconcile({ inFlightOrderIds: ['ord_waiting'] }), []);
        const strict = await reconcile();
        assert.equal(strict.length, 1, strict.join('\n'));
        assert.match(strict[0], /pay_ord_waiting .*AUTHORIZED 6000.*PENDING 6000/);

        // Planted: the provider captured a payment the database still has as authorized, and an amount differs.
        await reconProvider.capture(providerRefFor('ord_authorized'));
        await reconDb.payment.update({ where: { orderId: 'ord_voided' }, data: { amountCents: 2_001 } });
        const mismatches = await reconcile({ inFlightOrderIds: ['ord_waiting'] });
        assert.equal(mismatches.length, 2, mismatches.join('\n'));
        assert.ok(mismatches.some((line) => /pay_ord_authorized .*payments DB has AUTHORIZED 5000, the provider has CAPTURED 5000/.test(line)), mismatches.join('\n'));
        assert.ok(mismatches.some((line) => /pay_ord_voided .*amounts differ: payments DB 2001, provider 2000/.test(line)), mismatches.join('\n'));
      } finally {
        await reconSandbox.stop();
        reconData.remove();
        await reconDb.$disconnect();
      }
    });
  });
});
