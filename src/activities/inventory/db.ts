import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../../generated/prisma/inventory';
import { poolConfig } from '../pool';

export type InventoryDb = PrismaClient;

/** The inventory service's own database; no other service connects to it. */
export function connectInventoryDb(url: string, poolSize?: number): InventoryDb {
  return new PrismaClient({ adapter: new PrismaPg(poolConfig(url, poolSize)) });
}
