import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../../generated/prisma/shipping';

export type ShippingDb = PrismaClient;

/** The shipping service's own database; no other service connects to it. */
export function connectShippingDb(url: string): ShippingDb {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
}
