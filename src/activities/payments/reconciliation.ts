// Reconciliation of the payment provider's records with the payments database, as a pure function: the auditor
// reads both sides (listAllAuthorizations(provider) and the payments table) and reports what disagrees.
//
// Matched by providerRef. Once a payment has settled (its saga is not running), the two sides must agree:
//
//   payments DB                     provider
//   AUTHORIZED                      AUTHORIZED
//   CAPTURED                        CAPTURED
//   VOIDED (amount > 0)             VOIDED, REFUNDED or DECLINED (nothing held)
//   REFUNDED                        REFUNDED or VOIDED
//   VOIDED tombstone (amount 0)     a VOIDED tombstone, or nothing
//   (no row)                        a VOIDED tombstone, or nothing
//
// and, where both sides hold a real authorization, the amounts and order ids are equal. For payments whose saga
// is still running (options.inFlightOrderIds), the two sides may be between two steps, so only the amount and
// order id are compared.
import type { ProviderAuthorization, ProviderStatus } from './provider';

/** The columns of a payments row that reconciliation reads. */
export interface PaymentRow {
  orderId: string;
  providerRef: string;
  status: 'AUTHORIZED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';
  amountCents: number;
}

export type ProviderRecord = Pick<ProviderAuthorization, 'providerRef' | 'orderId' | 'amountCents' | 'status' | 'tombstone'>;

export interface ReconciliationOptions {
  /** Orders whose saga is still running: their state may legitimately differ for a moment. */
  inFlightOrderIds?: Iterable<string>;
}

const ACCEPTED: Record<PaymentRow['status'], readonly ProviderStatus[]> = {
  AUTHORIZED: ['AUTHORIZED'],
  CAPTURED: ['CAPTURED'],
  VOIDED: ['VOIDED', 'REFUNDED', 'DECLINED'],
  REFUNDED: ['REFUNDED', 'VOIDED'],
};

function describeRow(row: PaymentRow): string {
  return row.status === 'VOIDED' && row.amountCents === 0 ? 'a VOIDED tombstone' : `${row.status} ${row.amountCents}`;
}

function describeRecord(record: ProviderRecord): string {
  return record.tombstone ? 'a VOIDED tombstone' : `${record.status} ${record.amountCents}`;
}

/** Returns one human-readable line per disagreement; an empty list means the two sides agree. */
export function reconcilePayments(
  providerRecords: readonly ProviderRecord[],
  payments: readonly PaymentRow[],
  options: ReconciliationOptions = {},
): string[] {
  const inFlight = new Set(options.inFlightOrderIds ?? []);
  const records = new Map<string, ProviderRecord>();
  const mismatches: string[] = [];
  for (const record of providerRecords) {
    if (records.has(record.providerRef)) mismatches.push(`${record.providerRef}: the provider listed it twice`);
    records.set(record.providerRef, record);
  }
  const rowRefs = new Set<string>();

  for (const row of payments) {
    rowRefs.add(row.providerRef);
    const where = `${row.providerRef} (order ${row.orderId})`;
    const record = records.get(row.providerRef);
    const rowIsTombstone = row.status === 'VOIDED' && row.amountCents === 0;

    if (record && record.orderId !== null && record.orderId !== row.orderId) {
      mismatches.push(`${where}: the provider has it for order ${record.orderId}`);
    }
    if (record && !rowIsTombstone && !record.tombstone && record.amountCents !== row.amountCents) {
      mismatches.push(`${where}: amounts differ: payments DB ${row.amountCents}, provider ${record.amountCents}`);
    }
    if (inFlight.has(row.orderId)) continue;

    if (rowIsTombstone) {
      if (record && !record.tombstone) {
        mismatches.push(`${where}: payments DB has a VOIDED tombstone (never authorized), but the provider has ${describeRecord(record)}`);
      }
      continue;
    }
    if (!record) {
      mismatches.push(`${where}: payments DB has ${describeRow(row)}, the provider has no record of it`);
      continue;
    }
    if (record.tombstone) {
      mismatches.push(`${where}: payments DB has ${describeRow(row)}, but the provider has only a VOIDED tombstone`);
      continue;
    }
    if (!ACCEPTED[row.status].includes(record.status)) {
      mismatches.push(`${where}: payments DB has ${describeRow(row)}, the provider has ${describeRecord(record)}`);
    }
  }

  for (const record of records.values()) {
    if (rowRefs.has(record.providerRef) || record.tombstone) continue;
    if (record.orderId !== null && inFlight.has(record.orderId)) continue;
    mismatches.push(
      `${record.providerRef}${record.orderId ? ` (order ${record.orderId})` : ''}: the provider has ${describeRecord(record)}, the payments DB has no payment`,
    );
  }
  return mismatches;
}
