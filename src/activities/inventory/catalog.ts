// The inventory service's catalog: its read functions, the seed, and the Product aggregate's events.
import { aggregateEvent, appendEvents } from '../../events/outbox';
import type { InventoryDb } from './db';

export interface ProductView {
  sku: string;
  name: string;
  priceCents: number;
  onHand: number;
}

export async function listProducts(db: InventoryDb): Promise<ProductView[]> {
  const products = await db.product.findMany({ orderBy: { sku: 'asc' } });
  return products.map(({ sku, name, priceCents, onHand }) => ({ sku, name, priceCents, onHand }));
}

export async function getProduct(db: InventoryDb, sku: string): Promise<ProductView | undefined> {
  const product = await db.product.findUnique({ where: { sku } });
  return product ? { sku: product.sku, name: product.name, priceCents: product.priceCents, onHand: product.onHand } : undefined;
}

/** The seeded catalog. Loading it twice changes nothing: existing products (and their stock) are kept. */
export const SEED_PRODUCTS: ProductView[] = [
  { sku: 'KB-001', name: 'Mechanical keyboard', priceCents: 8_900, onHand: 50 },
  { sku: 'MS-002', name: 'Wireless mouse', priceCents: 2_900, onHand: 100 },
  { sku: 'MN-003', name: '27-inch monitor', priceCents: 32_900, onHand: 20 },
  { sku: 'LT-004', name: 'Laptop', priceCents: 149_900, onHand: 5 },
  { sku: 'CB-005', name: 'USB-C cable', priceCents: 900, onHand: 500 },
  { sku: 'GPU-006', name: 'Graphics card (limited stock)', priceCents: 79_900, onHand: 2 },
];

/** A product entering the catalog: the query side's catalog view starts from it. */
export function productCatalogued(product: ProductView) {
  return aggregateEvent('Product', product.sku, 'ProductCatalogued', { ...product }, product.sku);
}

/** A product's stock after a change, correlated with the order that caused it. */
export function stockLevelChanged(sku: string, onHand: number, orderId: string) {
  return aggregateEvent('Product', sku, 'StockLevelChanged', { sku, onHand }, orderId);
}

/** Changes a product's price, with its ProductRepriced event in the same transaction. Orders already priced keep theirs. */
export async function repriceProduct(db: InventoryDb, sku: string, priceCents: number): Promise<void> {
  await db.$transaction(async (tx) => {
    const changed = await tx.product.updateMany({ where: { sku, priceCents: { not: priceCents } }, data: { priceCents } });
    if (changed.count === 1) await appendEvents(tx, [aggregateEvent('Product', sku, 'ProductRepriced', { sku, priceCents }, sku)]);
  });
}

/** Receives units into stock, with the product's StockLevelChanged event in the same transaction. */
export async function restockProduct(db: InventoryDb, sku: string, units: number): Promise<void> {
  await db.$transaction(async (tx) => {
    const product = await tx.product.update({ where: { sku }, data: { onHand: { increment: units }, received: { increment: units } } });
    await appendEvents(tx, [stockLevelChanged(sku, product.onHand, sku)]);
  });
}

/** Adds the seed products that are missing, each with its ProductCatalogued event in the same transaction. */
export async function seedCatalog(db: InventoryDb): Promise<number> {
  let added = 0;
  for (const product of SEED_PRODUCTS) {
    await db.$transaction(async (tx) => {
      const { count } = await tx.product.createMany({ data: [{ ...product, received: product.onHand }], skipDuplicates: true });
      if (count === 1) await appendEvents(tx, [productCatalogued(product)]);
      added += count;
    });
  }
  return added;
}
