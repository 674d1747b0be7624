import { PrismaClient } from '../../../generated/prisma/shipping';
import { PoolAdapter } from '../pool';

export type ShippingDb = PrismaClient;

/** The shipping service's own database; no other service connects to it. */
export function connectShippingDb(url: string, poolSize?: number): ShippingDb {
  return new PrismaClient({ adapter: new PoolAdapter(url, poolSize) });
}
