// Read side of the payments service, used by the API (customer credit) and by the tests.
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

export async function seedCustomers(db: PaymentsDb): Promise<number> {
  const { count } = await db.customer.createMany({ data: SEED_CUSTOMERS, skipDuplicates: true });
  return count;
}
