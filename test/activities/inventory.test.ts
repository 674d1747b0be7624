// Inventory activities against a real PostgreSQL: pricing, reservations that take stock exactly once however
// often (or however concurrently) they run, releases that give it back exactly once, and tombstones that stop
// a late reservation after its compensation already ran.
import assert from 'node:assert/strict';
import { MAX_ORDER_TOTAL_CENTS, Refusal, type OrderLine } from '../../src/domain';
import { createInventoryActivities, type InventoryActivities } from '../../src/activities/inventory/activities';
import { getProduct, listProducts, SEED_PRODUCTS } from '../../src/activities/inventory/catalog';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { createServiceDatabases } from '../support/postgres';
import { assertNonRetryable, concurrently } from './refusals';

describe('inventory activities (PostgreSQL)', function () {
  let db: InventoryDb;
  let inventory: InventoryActivities;
  let sequence = 0;
  const newOrderId = () => `ord_test_${++sequence}`;

  before(async function () {
    const urls = await createServiceDatabases('act_inventory');
    db = connectInventoryDb(urls.inventory);
    inventory = createInventoryActivities(db);
  });

  after(async function () {
    await db?.$disconnect();
  });

  /** Units on hand of every product, by SKU. */
  async function stock(): Promise<Record<string, number>> {
    return Object.fromEntries((await listProducts(db)).map((product) => [product.sku, product.onHand]));
  }

  async function onHand(sku: string): Promise<number> {
    const product = await getProduct(db, sku);
    assert.ok(product, `product ${sku} is seeded`);
    return product.onHand;
  }

  /** The stock `before` with the lines' units taken out. */
  function minus(before: Record<string, number>, lines: OrderLine[]): Record<string, number> {
    const after = { ...before };
    for (const line of lines) after[line.sku] -= line.quantity;
    return after;
  }

  async function reservation(orderId: string) {
    return db.reservation.findUnique({ where: { orderId }, include: { lines: { orderBy: { sku: 'asc' } } } });
  }

  describe('priceOrder', function () {
    it('prices every line from the catalog, in the order given, and gives the same answer twice', async function () {
      const lines = [
        { sku: 'MN-003', quantity: 2 },
        { sku: 'CB-005', quantity: 7 },
      ];
      const priced = await inventory.priceOrder(lines);
      const price = (sku: string) => SEED_PRODUCTS.find((product) => product.sku === sku)!.priceCents;
      assert.deepEqual(priced, [
        { sku: 'MN-003', quantity: 2, unitPriceCents: price('MN-003') },
        { sku: 'CB-005', quantity: 7, unitPriceCents: price('CB-005') },
      ]);
      assert.deepEqual(await inventory.priceOrder(lines), priced);
    });

    it('refuses an unknown SKU with a non-retryable UnknownSku naming only the unknown SKUs', async function () {
      const failure = await assertNonRetryable(
        inventory.priceOrder([
          { sku: 'KB-001', quantity: 1 },
          { sku: 'NOPE-404', quantity: 1 },
        ]),
        Refusal.UnknownSku,
      );
      assert.match(failure.message, /NOPE-404/);
      assert.deepEqual(failure.details, [{ skus: ['NOPE-404'] }]);
    });

    it('refuses a total above MAX_ORDER_TOTAL_CENTS with a non-retryable OrderTooLarge', async function () {
      const laptop = SEED_PRODUCTS.find((product) => product.sku === 'LT-004')!.priceCents;
      const quantity = Math.floor(MAX_ORDER_TOTAL_CENTS / laptop) + 1;
      const failure = await assertNonRetryable(inventory.priceOrder([{ sku: 'LT-004', quantity }]), Refusal.OrderTooLarge);
      assert.deepEqual(failure.details, [{ totalCents: quantity * laptop, maxCents: MAX_ORDER_TOTAL_CENTS }]);
      // One unit fewer is exactly within the bound's reach and is priced.
      const priced = await inventory.priceOrder([{ sku: 'LT-004', quantity: quantity - 1 }]);
      assert.equal(priced[0].quantity * priced[0].unitPriceCents <= MAX_ORDER_TOTAL_CENTS, true);
    });
  });

  describe('reserveStock', function () {
    it('takes the units of every line out of stock and records them', async function () {
      const orderId = newOrderId();
      const lines = [
        { sku: 'MS-002', quantity: 3 },
        { sku: 'KB-001', quantity: 2 },
      ];
      const before = await stock();

      assert.deepEqual(await inventory.reserveStock({ orderId, lines }), { orderId, status: 'RESERVED' });

      assert.deepEqual(await stock(), minus(before, lines));
      const row = await reservation(orderId);
      assert.equal(row?.status, 'RESERVED');
      assert.deepEqual(
        row.lines.map(({ sku, quantity }) => ({ sku, quantity })),
        [
          { sku: 'KB-001', quantity: 2 },
          { sku: 'MS-002', quantity: 3 },
        ],
      );
    });

    it('run twice takes the stock once and returns the same result', async function () {
      const orderId = newOrderId();
      const lines = [
        { sku: 'CB-005', quantity: 4 },
        { sku: 'MS-002', quantity: 1 },
      ];
      const before = await stock();

      const first = await inventory.reserveStock({ orderId, lines });
      const second = await inventory.reserveStock({ orderId, lines });

      assert.deepEqual(second, first);
      assert.deepEqual(first, { orderId, status: 'RESERVED' });
      assert.deepEqual(await stock(), minus(before, lines));
      assert.equal((await reservation(orderId))?.lines.length, 2);
    });

    it('run 5 times concurrently takes the stock once, and every attempt reports the reservation', async function () {
      const orderId = newOrderId();
      const lines = [
        { sku: 'KB-001', quantity: 1 },
        { sku: 'CB-005', quantity: 10 },
      ];
      const before = await stock();

      const results = await concurrently(5, () => inventory.reserveStock({ orderId, lines }));

      assert.deepEqual(results, Array(5).fill({ orderId, status: 'RESERVED' }));
      assert.deepEqual(await stock(), minus(before, lines));
      assert.equal(await db.reservation.count({ where: { orderId } }), 1);
      assert.equal(await db.reservationLine.count({ where: { orderId } }), 2);
    });

    it('is all or nothing: out of stock on one line refuses non-retryably and changes no stock at all', async function () {
      const orderId = newOrderId();
      const available = await onHand('MN-003');
      // CB-005 sorts first, so its units are taken before MN-003 runs short: the refusal must roll them back.
      const lines = [
        { sku: 'MN-003', quantity: available + 1 },
        { sku: 'CB-005', quantity: 5 },
      ];
      const before = await stock();

      const failure = await assertNonRetryable(inventory.reserveStock({ orderId, lines }), Refusal.OutOfStock);

      assert.deepEqual(failure.details, [{ sku: 'MN-003', requested: available + 1, available }]);
      assert.deepEqual(await stock(), before);
      assert.equal(await reservation(orderId), null, 'a refused reservation leaves no reservation row');
      assert.equal(await db.reservationLine.count({ where: { orderId } }), 0);

      // Nothing of the refused attempt is left behind, so the same order can still reserve what there is.
      const smaller = [{ sku: 'MN-003', quantity: available }];
      assert.deepEqual(await inventory.reserveStock({ orderId, lines: smaller }), { orderId, status: 'RESERVED' });
      assert.deepEqual(await stock(), minus(before, smaller));
    });

    it('refuses an unknown SKU non-retryably and changes no stock', async function () {
      const orderId = newOrderId();
      const before = await stock();

      await assertNonRetryable(
        inventory.reserveStock({
          orderId,
          lines: [
            { sku: 'KB-001', quantity: 1 },
            { sku: 'ZZ-999', quantity: 1 },
          ],
        }),
        Refusal.UnknownSku,
      );

      assert.deepEqual(await stock(), before);
      assert.equal(await reservation(orderId), null);
    });

    it('never oversells: of many orders competing for the last units, only as many as there are units succeed', async function () {
      const sku = 'GPU-006';
      const available = await onHand(sku);
      assert.ok(available > 0, 'the test needs some GPU-006 units');
      const orderIds = Array.from({ length: available + 3 }, newOrderId);

      const outcomes = await Promise.allSettled(orderIds.map((orderId) => inventory.reserveStock({ orderId, lines: [{ sku, quantity: 1 }] })));

      const reserved = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      assert.equal(reserved.length, available);
      assert.equal(refused.length, 3);
      for (const { reason } of refused) assert.equal(reason.type, Refusal.OutOfStock);
      assert.equal(await onHand(sku), 0);
      assert.equal(await db.reservation.count({ where: { orderId: { in: orderIds } } }), available);
    });
  });

  describe('releaseStock (compensation of reserveStock)', function () {
    it('puts the reserved units back, and run twice puts them back once with the same result', async function () {
      const orderId = newOrderId();
      const lines = [
        { sku: 'KB-001', quantity: 2 },
        { sku: 'LT-004', quantity: 1 },
      ];
      const before = await stock();
      await inventory.reserveStock({ orderId, lines });
      assert.deepEqual(await stock(), minus(before, lines));

      const first = await inventory.releaseStock({ orderId });
      const second = await inventory.releaseStock({ orderId });

      assert.deepEqual(first, { orderId, status: 'RELEASED' });
      assert.deepEqual(second, first);
      assert.deepEqual(await stock(), before);
      assert.equal((await reservation(orderId))?.status, 'RELEASED');
    });

    it('run 5 times concurrently after a reservation puts the units back once', async function () {
      const orderId = newOrderId();
      const lines = [
        { sku: 'MS-002', quantity: 6 },
        { sku: 'CB-005', quantity: 2 },
      ];
      const before = await stock();
      await inventory.reserveStock({ orderId, lines });

      const results = await concurrently(5, () => inventory.releaseStock({ orderId }));

      assert.deepEqual(results, Array(5).fill({ orderId, status: 'RELEASED' }));
      assert.deepEqual(await stock(), before);
    });

    it('before any reservation leaves a tombstone, and the late reservation then takes no stock', async function () {
      const orderId = newOrderId();
      const lines = [{ sku: 'KB-001', quantity: 3 }];
      const before = await stock();

      assert.deepEqual(await inventory.releaseStock({ orderId }), { orderId, status: 'RELEASED' });
      const tombstone = await reservation(orderId);
      assert.equal(tombstone?.status, 'RELEASED');
      assert.deepEqual(tombstone.lines, []);
      assert.deepEqual(await stock(), before, 'releasing nothing must not add stock');

      // The timed-out reservation attempt commits late: it must find the tombstone and do nothing.
      assert.deepEqual(await inventory.reserveStock({ orderId, lines }), { orderId, status: 'RELEASED' });
      assert.deepEqual(await inventory.reserveStock({ orderId, lines }), { orderId, status: 'RELEASED' });
      assert.deepEqual(await inventory.releaseStock({ orderId }), { orderId, status: 'RELEASED' });

      assert.deepEqual(await stock(), before);
      assert.deepEqual((await reservation(orderId))?.lines, []);
    });

    it('racing a reservation of the same order always ends released with the stock as it was', async function () {
      const lines = [
        { sku: 'CB-005', quantity: 1 },
        { sku: 'MS-002', quantity: 2 },
      ];
      const orderIds = Array.from({ length: 4 }, newOrderId);
      const before = await stock();

      // Whichever commits first, reservation then release or tombstone then refused reservation, no stock moves.
      await Promise.all(orderIds.flatMap((orderId) => [inventory.reserveStock({ orderId, lines }), inventory.releaseStock({ orderId })]));

      assert.deepEqual(await stock(), before);
      for (const orderId of orderIds) assert.equal((await reservation(orderId))?.status, 'RELEASED');
    });
  });

  describe('consumeReservation', function () {
    it('moves RESERVED to CONSUMED without touching stock; twice is fine, and a later release gives nothing back', async function () {
      const orderId = newOrderId();
      const lines = [{ sku: 'LT-004', quantity: 1 }];
      const before = await stock();
      await inventory.reserveStock({ orderId, lines });
      const reservedStock = await stock();
      assert.deepEqual(reservedStock, minus(before, lines));

      assert.deepEqual(await inventory.consumeReservation({ orderId }), { orderId, status: 'CONSUMED' });
      assert.deepEqual(await inventory.consumeReservation({ orderId }), { orderId, status: 'CONSUMED' });

      assert.deepEqual(await stock(), reservedStock);
      assert.equal((await reservation(orderId))?.status, 'CONSUMED');

      // The units left with the parcel: neither a stray compensation nor a late reservation may move stock now.
      assert.deepEqual(await inventory.releaseStock({ orderId }), { orderId, status: 'CONSUMED' });
      assert.deepEqual(await inventory.reserveStock({ orderId, lines }), { orderId, status: 'CONSUMED' });
      assert.deepEqual(await stock(), reservedStock);
    });

    it('refuses to consume a released reservation, and changes nothing', async function () {
      const orderId = newOrderId();
      const before = await stock();
      await inventory.reserveStock({ orderId, lines: [{ sku: 'KB-001', quantity: 1 }] });
      await inventory.releaseStock({ orderId });

      await assert.rejects(inventory.consumeReservation({ orderId }), /cannot be consumed: it is RELEASED/);

      assert.equal((await reservation(orderId))?.status, 'RELEASED');
      assert.deepEqual(await stock(), before);
    });
  });
});
