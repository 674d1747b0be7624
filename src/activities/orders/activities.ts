// Orders activities: the order record and where its saga ended. Idempotent, keyed by the order id.
import { totalCents, type OrderLine, type PricedLine } from '../../domain';
import type { OrdersDb } from './db';

export type ClosedStatus = 'COMPLETED' | 'REJECTED' | 'CANCELLED';

export interface CloseOrderInput {
  orderId: string;
  customerId: string;
  /** Priced lines, or plain lines when the saga ended before pricing succeeded. */
  lines: (OrderLine & { unitPriceCents?: number })[];
  status: ClosedStatus;
  failureReason?: string;
  completedSteps: string[];
  compensations: string[];
}

export function createOrdersActivities(db: OrdersDb) {
  return {
    async createOrder(input: { orderId: string; customerId: string; lines: PricedLine[] }): Promise<{ orderId: string; totalCents: number }> {
      const total = totalCents(input.lines);
      await db.$transaction(async (tx) => {
        const created = await tx.order.createMany({
          data: [{ id: input.orderId, customerId: input.customerId, totalCents: total, status: 'PENDING' }],
          skipDuplicates: true,
        });
        if (created.count === 1) {
          await tx.orderLine.createMany({ data: input.lines.map((line) => ({ orderId: input.orderId, ...line })) });
        }
      });
      return { orderId: input.orderId, totalCents: total };
    },

    /** Records the saga's end. Creates the order if the saga ended before createOrder (e.g. an unknown SKU). */
    async closeOrder(input: CloseOrderInput): Promise<void> {
      const outcome = {
        status: input.status,
        failureReason: input.failureReason ?? null,
        completedSteps: input.completedSteps,
        compensations: input.compensations,
        closedAt: new Date(),
      };
      await db.$transaction(async (tx) => {
        const existing = await tx.order.findUnique({ where: { id: input.orderId } });
        if (existing) {
          // A retry of the same close finds it recorded and leaves the record (closedAt included) as it is.
          const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((item, i) => item === b[i]);
          const alreadyClosed =
            existing.closedAt !== null &&
            existing.status === outcome.status &&
            existing.failureReason === outcome.failureReason &&
            sameList(existing.completedSteps, outcome.completedSteps) &&
            sameList(existing.compensations, outcome.compensations);
          if (!alreadyClosed) await tx.order.update({ where: { id: input.orderId }, data: outcome });
          return;
        }
        const lines = input.lines.map((line) => ({ sku: line.sku, quantity: line.quantity, unitPriceCents: line.unitPriceCents ?? 0 }));
        await tx.order.create({
          data: { id: input.orderId, customerId: input.customerId, totalCents: totalCents(lines), ...outcome, lines: { create: lines } },
        });
      });
    },
  };
}

export type OrdersActivities = ReturnType<typeof createOrdersActivities>;
