// reconcilePayments, the pure comparison of the provider's records with the payments database's rows.
import assert from 'node:assert/strict';
import { reconcilePayments, type PaymentRow, type ProviderRecord } from '../../src/activities/payments/reconciliation';

const row = (orderId: string, status: PaymentRow['status'], amountCents: number): PaymentRow => ({ orderId, providerRef: `pay_${orderId}`, status, amountCents });
const record = (orderId: string | null, status: ProviderRecord['status'], amountCents: number, tombstone = false, ref?: string): ProviderRecord => ({
  providerRef: ref ?? `pay_${orderId}`,
  orderId,
  status,
  amountCents,
  tombstone,
});

describe('reconcilePayments', function () {
  it('finds nothing when every settled payment agrees with the provider', function () {
    const rows = [
      row('a', 'AUTHORIZED', 100),
      row('b', 'CAPTURED', 200),
      row('c', 'VOIDED', 300),
      row('d', 'VOIDED', 400),
      row('e', 'REFUNDED', 500),
      row('f', 'VOIDED', 0), // tombstone, provider has one too
      row('g', 'VOIDED', 0), // tombstone, the provider never heard of it
    ];
    const records = [
      record('a', 'AUTHORIZED', 100),
      record('b', 'CAPTURED', 200),
      record('c', 'VOIDED', 300),
      record('d', 'DECLINED', 400),
      record('e', 'REFUNDED', 500),
      record('f', 'VOIDED', 0, true),
      record(null, 'VOIDED', 0, true, 'pay_h'), // a tombstone with no row (unknown customer)
    ];
    assert.deepEqual(reconcilePayments(records, rows), []);
  });

  it('reports every kind of disagreement, naming the payment', function () {
    const rows = [
      row('a', 'AUTHORIZED', 100), // provider: PENDING
      row('b', 'CAPTURED', 200), // provider: AUTHORIZED
      row('c', 'VOIDED', 300), // provider: AUTHORIZED (dangling)
      row('d', 'CAPTURED', 400), // provider: CAPTURED 401
      row('e', 'AUTHORIZED', 500), // provider: nothing
      row('f', 'VOIDED', 0), // tombstone here, a live authorization there
      row('g', 'REFUNDED', 700), // provider: only a tombstone
    ];
    const records = [
      record('a', 'PENDING', 100),
      record('b', 'AUTHORIZED', 200),
      record('c', 'AUTHORIZED', 300),
      record('d', 'CAPTURED', 401),
      record('f', 'AUTHORIZED', 600),
      record('g', 'VOIDED', 0, true),
      record('x', 'CAPTURED', 900), // no row at all
    ];
    const mismatches = reconcilePayments(records, rows);
    const expected = [
      /^pay_a \(order a\): payments DB has AUTHORIZED 100, the provider has PENDING 100$/,
      /^pay_b \(order b\): payments DB has CAPTURED 200, the provider has AUTHORIZED 200$/,
      /^pay_c \(order c\): payments DB has VOIDED 300, the provider has AUTHORIZED 300$/,
      /^pay_d \(order d\): amounts differ: payments DB 400, provider 401$/,
      /^pay_e \(order e\): payments DB has AUTHORIZED 500, the provider has no record of it$/,
      /^pay_f \(order f\): payments DB has a VOIDED tombstone .*, but the provider has AUTHORIZED 600$/,
      /^pay_g \(order g\): payments DB has REFUNDED 700, but the provider has only a VOIDED tombstone$/,
      /^pay_x \(order x\): the provider has CAPTURED 900, the payments DB has no payment$/,
    ];
    assert.equal(mismatches.length, expected.length, mismatches.join('\n'));
    for (const pattern of expected) assert.ok(mismatches.some((line) => pattern.test(line)), `${pattern} in:\n${mismatches.join('\n')}`);
  });

  it('reports an order id that differs between the two sides', function () {
    const mismatches = reconcilePayments([record('other', 'AUTHORIZED', 100, false, 'pay_a')], [row('a', 'AUTHORIZED', 100)]);
    assert.deepEqual(mismatches, ['pay_a (order a): the provider has it for order other']);
  });

  it('for orders still in flight, compares only amounts and order ids', function () {
    const rows = [row('a', 'AUTHORIZED', 100), row('b', 'VOIDED', 200), row('c', 'AUTHORIZED', 300)];
    const records = [record('a', 'PENDING', 100), record('b', 'AUTHORIZED', 200), record('c', 'PENDING', 301), record('d', 'PENDING', 5)];
    assert.deepEqual(reconcilePayments(records, rows, { inFlightOrderIds: ['a', 'b', 'c', 'd'] }), [
      'pay_c (order c): amounts differ: payments DB 300, provider 301',
    ]);
  });
});
