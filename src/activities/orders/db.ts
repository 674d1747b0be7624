import { PrismaClient } from '../../../generated/prisma/orders';
import { PoolAdapter } from '../pool';

export type OrdersDb = PrismaClient;

/** The orders service's own database; no other service connects to it. */
export function connectOrdersDb(url: string, poolSize?: number): OrdersDb {
  return new PrismaClient({ adapter: new PoolAdapter(url, poolSize) });
}
