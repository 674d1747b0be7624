import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../../generated/prisma/orders';
import { poolConfig } from '../pool';

export type OrdersDb = PrismaClient;

/** The orders service's own database; no other service connects to it. */
export function connectOrdersDb(url: string, poolSize?: number): OrdersDb {
  return new PrismaClient({ adapter: new PrismaPg(poolConfig(url, poolSize)) });
}
