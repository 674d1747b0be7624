// Read side of the inventory service, used by the API (catalog and stock) and by the tests.
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

export async function seedCatalog(db: InventoryDb): Promise<number> {
  const { count } = await db.product.createMany({
    data: SEED_PRODUCTS.map((product) => ({ ...product, received: product.onHand })),
    skipDuplicates: true,
  });
  return count;
}
