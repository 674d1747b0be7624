// Brings the four service databases and the query database to the current schema and loads the seed data.
// Safe to run on every start: migrations already applied and seed rows already present are left alone.
import type { DatabaseUrls } from '../config';
import { seedCatalog } from '../activities/inventory/catalog';
import { connectInventoryDb } from '../activities/inventory/db';
import { seedCustomers } from '../activities/payments/customers';
import { connectPaymentsDb } from '../activities/payments/db';
import { migrateAll, migrateService } from './migrate';

export async function seedAll(urls: DatabaseUrls): Promise<{ products: number; customers: number }> {
  const inventory = connectInventoryDb(urls.inventory);
  const payments = connectPaymentsDb(urls.payments);
  try {
    const [products, customers] = await Promise.all([seedCatalog(inventory), seedCustomers(payments)]);
    return { products, customers };
  } finally {
    await Promise.all([inventory.$disconnect(), payments.$disconnect()]);
  }
}

/** Migrates and seeds the service databases, and migrates the query database when given. */
export async function provisionDatabases(urls: DatabaseUrls, queryUrl?: string): Promise<void> {
  await Promise.all([migrateAll(urls), queryUrl ? migrateService('query', queryUrl) : undefined]);
  await seedAll(urls);
}
