// Inventory activities. Each is idempotent, keyed by the order id: the reservations table's primary key,
// not memory, decides whether the work was already done, so a retried or duplicated call changes nothing.
// Every change records its events in the outbox in the same transaction (the Reservation's StockReserved,
// StockReleased, ReservationConsumed; each changed Product's StockLevelChanged); a call that changes nothing
// records nothing.
import { appendEvents, orderEvent } from '../../events/outbox';
import { refuse } from '../refuse';
import { MAX_ORDER_TOTAL_CENTS, Refusal, totalCents, type OrderLine, type PricedLine } from '../../domain';
import type { Prisma } from '../../../generated/prisma/inventory';
import { stockLevelChanged } from './catalog';
import type { InventoryDb } from './db';

export interface ReservationResult {
  orderId: string;
  /** RESERVED, or RELEASED when a release got there first (a late retry after compensation). */
  status: 'RESERVED' | 'RELEASED' | 'CONSUMED';
}

export function createInventoryActivities(db: InventoryDb) {
  return {
    /** Prices the lines from the catalog, refusing a total above MAX_ORDER_TOTAL_CENTS. Read-only, so trivially idempotent. */
    async priceOrder(lines: OrderLine[]): Promise<PricedLine[]> {
      const products = await db.product.findMany({ where: { sku: { in: lines.map((line) => line.sku) } } });
      const prices = new Map(products.map((product) => [product.sku, product.priceCents]));
      const unknown = lines.filter((line) => !prices.has(line.sku)).map((line) => line.sku);
      if (unknown.length > 0) throw refuse(Refusal.UnknownSku, `unknown SKU: ${unknown.join(', ')}`, { skus: unknown });
      const priced = lines.map((line) => ({ ...line, unitPriceCents: prices.get(line.sku)! }));
      // The API bounds the total at the prices it saw; a price raised since then (or a saga started directly
      // through Temporal) must not carry a total past what the amount columns can hold.
      const total = totalCents(priced);
      if (total > MAX_ORDER_TOTAL_CENTS) {
        throw refuse(Refusal.OrderTooLarge, `the order's total, ${total} cents, is above the maximum of ${MAX_ORDER_TOTAL_CENTS} cents`, {
          totalCents: total,
          maxCents: MAX_ORDER_TOTAL_CENTS,
        });
      }
      return priced;
    },

    /** Takes the order's units out of stock, all lines or none. */
    async reserveStock(input: { orderId: string; lines: OrderLine[] }): Promise<ReservationResult> {
      return db.$transaction(async (tx) => {
        // Claiming the order id first makes a concurrent duplicate wait on the primary key, then find the row.
        const claim = await tx.reservation.createMany({
          data: [{ orderId: input.orderId, status: 'RESERVED' }],
          skipDuplicates: true,
        });
        if (claim.count === 0) {
          const existing = await tx.reservation.findUniqueOrThrow({ where: { orderId: input.orderId } });
          return { orderId: input.orderId, status: existing.status };
        }
        // A fixed lock order (by SKU) keeps concurrent reservations from deadlocking.
        const lines = [...input.lines].sort((a, b) => a.sku.localeCompare(b.sku));
        for (const line of lines) {
          const taken = await tx.product.updateMany({
            where: { sku: line.sku, onHand: { gte: line.quantity } },
            data: { onHand: { decrement: line.quantity } },
          });
          if (taken.count === 0) {
            const product = await tx.product.findUnique({ where: { sku: line.sku } });
            // Throwing rolls back the whole transaction, the claim included.
            if (!product) throw refuse(Refusal.UnknownSku, `unknown SKU: ${line.sku}`, { skus: [line.sku] });
            throw refuse(Refusal.OutOfStock, `out of stock: ${line.sku} (wanted ${line.quantity}, ${product.onHand} available)`, {
              sku: line.sku,
              requested: line.quantity,
              available: product.onHand,
            });
          }
        }
        await tx.reservationLine.createMany({ data: lines.map((line) => ({ orderId: input.orderId, ...line })) });
        await appendEvents(tx, [orderEvent('Reservation', input.orderId, 'StockReserved', { lines }), ...(await stockLevels(tx, lines, input.orderId))]);
        return { orderId: input.orderId, status: 'RESERVED' };
      });
    },

    /**
     * Compensation of reserveStock: puts the units back. If nothing was reserved yet it leaves a tombstone,
     * so that a reservation still in flight (a timed-out attempt) cannot take stock afterwards.
     */
    async releaseStock(input: { orderId: string }): Promise<ReservationResult> {
      return db.$transaction(async (tx) => {
        const tombstone = await tx.reservation.createMany({
          data: [{ orderId: input.orderId, status: 'RELEASED' }],
          skipDuplicates: true,
        });
        if (tombstone.count === 1) {
          await appendEvents(tx, [orderEvent('Reservation', input.orderId, 'StockReleased', { lines: [], beforeReservation: true })]);
          return { orderId: input.orderId, status: 'RELEASED' };
        }
        // The conditional update locks the row: of two concurrent releases, only one sees RESERVED.
        const released = await tx.reservation.updateMany({
          where: { orderId: input.orderId, status: 'RESERVED' },
          data: { status: 'RELEASED' },
        });
        if (released.count === 1) {
          const lines = await tx.reservationLine.findMany({ where: { orderId: input.orderId }, orderBy: { sku: 'asc' } });
          for (const line of lines) {
            await tx.product.update({ where: { sku: line.sku }, data: { onHand: { increment: line.quantity } } });
          }
          await appendEvents(tx, [
            orderEvent('Reservation', input.orderId, 'StockReleased', { lines: lines.map(({ sku, quantity }) => ({ sku, quantity })), beforeReservation: false }),
            ...(await stockLevels(tx, lines, input.orderId)),
          ]);
        }
        const current = await tx.reservation.findUniqueOrThrow({ where: { orderId: input.orderId } });
        return { orderId: input.orderId, status: current.status };
      });
    },

    /** The order shipped: its reserved units leave stock for good. */
    async consumeReservation(input: { orderId: string }): Promise<ReservationResult> {
      const current = await db.$transaction(async (tx) => {
        const consumed = await tx.reservation.updateMany({ where: { orderId: input.orderId, status: 'RESERVED' }, data: { status: 'CONSUMED' } });
        if (consumed.count === 1) await appendEvents(tx, [orderEvent('Reservation', input.orderId, 'ReservationConsumed', {})]);
        return tx.reservation.findUnique({ where: { orderId: input.orderId } });
      });
      if (current?.status !== 'CONSUMED') {
        throw new Error(`reservation of order ${input.orderId} cannot be consumed: it is ${current?.status ?? 'missing'}`);
      }
      return { orderId: input.orderId, status: current.status };
    },
  };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;

/** The StockLevelChanged events of the products a transaction changed (it holds their row locks). */
async function stockLevels(tx: Prisma.TransactionClient, lines: { sku: string }[], orderId: string) {
  const products = await tx.product.findMany({ where: { sku: { in: lines.map((line) => line.sku) } }, orderBy: { sku: 'asc' } });
  return products.map((product) => stockLevelChanged(product.sku, product.onHand, orderId));
}
