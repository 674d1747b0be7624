// The payments service's customers and their credit: read functions, the seed, and the Customer aggregate's events.
import { aggregateEvent, appendEvents } from '../../events/outbox';
import type { PaymentsDb } from './db';

export interface CustomerView {
  id: string;
  name: string;
  creditLimitCents: number;
  creditUsedCents: number;
  creditAvailableCents: number;
}

type CustomerRow = { id: string; name: string; creditLimitCents: number; creditUsedCents: number };

function view(customer: CustomerRow): CustomerView {
  const { id, name, creditLimitCents, creditUsedCents } = customer;
  return { id, name, creditLimitCents, creditUsedCents, creditAvailableCents: creditLimitCents - creditUsedCents };
}

export async function listCustomers(db: PaymentsDb): Promise<CustomerView[]> {
  return (await db.customer.findMany({ orderBy: { id: 'asc' } })).map(view);
}

export async function getCustomer(db: PaymentsDb, id: string): Promise<CustomerView | undefined> {
  const customer = await db.customer.findUnique({ where: { id } });
  return customer ? view(customer) : undefined;
}

/** The seeded customers, with credit limits from generous to none. Loading them twice changes nothing. */
export const SEED_CUSTOMERS: CustomerRow[] = [
  { id: 'cust-alice', name: 'Alice (generous limit)', creditLimitCents: 1_000_000, creditUsedCents: 0 },
  { id: 'cust-bob', name: 'Bob (small limit)', creditLimitCents: 20_000, creditUsedCents: 0 },
  { id: 'cust-carol', name: 'Carol (no credit)', creditLimitCents: 0, creditUsedCents: 0 },
  { id: 'cust-dave', name: 'Dave (business account)', creditLimitCents: 10_000_000, creditUsedCents: 0 },
];

/** A customer becoming known to payments: the query side's credit view starts from it. */
export function customerRegistered(customer: CustomerRow) {
  return aggregateEvent('Customer', customer.id, 'CustomerRegistered', { customerId: customer.id, ...pick(customer) }, customer.id);
}

/** A customer's credit after a change, correlated with the order that caused it. */
export function customerCreditChanged(customer: CustomerRow, orderId: string) {
  return aggregateEvent('Customer', customer.id, 'CustomerCreditChanged', { customerId: customer.id, ...pick(customer) }, orderId);
}

const pick = ({ name, creditLimitCents, creditUsedCents }: CustomerRow) => ({ name, creditLimitCents, creditUsedCents });

/** Sets a customer's credit limit, with the CustomerCreditChanged event in the same transaction. */
export async function setCreditLimit(db: PaymentsDb, customerId: string, creditLimitCents: number): Promise<void> {
  await db.$transaction(async (tx) => {
    const changed = await tx.customer.updateMany({ where: { id: customerId, creditLimitCents: { not: creditLimitCents } }, data: { creditLimitCents } });
    if (changed.count === 1) await appendEvents(tx, [customerCreditChanged(await tx.customer.findUniqueOrThrow({ where: { id: customerId } }), customerId)]);
  });
}

/** Adds the seed customers that are missing, each with its CustomerRegistered event in the same transaction. */
export async function seedCustomers(db: PaymentsDb): Promise<number> {
  let added = 0;
  for (const customer of SEED_CUSTOMERS) {
    await db.$transaction(async (tx) => {
      const { count } = await tx.customer.createMany({ data: [customer], skipDuplicates: true });
      if (count === 1) await appendEvents(tx, [customerRegistered(customer)]);
      added += count;
    });
  }
  return added;
}
