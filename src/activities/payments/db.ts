import { PrismaClient } from '../../../generated/prisma/payments';
import { PoolAdapter } from '../pool';

export type PaymentsDb = PrismaClient;

/** The payments service's own database; no other service connects to it. */
export function connectPaymentsDb(url: string, poolSize?: number): PaymentsDb {
  return new PrismaClient({ adapter: new PoolAdapter(url, poolSize) });
}
