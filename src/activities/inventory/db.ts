import { PrismaClient } from '../../../generated/prisma/inventory';
import { PoolAdapter } from '../pool';

export type InventoryDb = PrismaClient;

/** The inventory service's own database; no other service connects to it. */
export function connectInventoryDb(url: string, poolSize?: number): InventoryDb {
  return new PrismaClient({ adapter: new PoolAdapter(url, poolSize) });
}
