// Orders activities: the order record, where its saga ended, and whether it waits for an operator.
// Idempotent, keyed by the order id.
import { totalCents, type OrderLine, type PricedLine } from '../../domain';
import type { Attention } from '../../workflows/definitions';
import { Prisma } from '../../../generated/prisma/orders';
import type { OrdersDb } from './db';

export type ClosedStatus = 'COMPLETED' | 'REJECTED' | 'CANCELLED';

/** Who placed the order and with what request; recorded with the order so the API can check later calls. */
export interface OrderOrigin {
  clientId?: string;
  requestFingerprint?: string;
}

export interface OrderIdentity extends OrderOrigin {
  orderId: string;
  customerId: string;
  /** Priced lines, or plain lines when the saga ended before pricing succeeded. */
  lines: (OrderLine & { unitPriceCents?: number })[];
}

export interface CloseOrderInput extends OrderIdentity {
  status: ClosedStatus;
  failureReason?: string;
  completedSteps: string[];
  compensations: string[];
}

export interface RecordAttentionInput extends OrderIdentity {
  /** The step that failed for good, or null once an operator has resumed the saga. */
  attention: Attention | null;
}

export function createOrdersActivities(db: OrdersDb) {
  /** The order row for a saga that ended (or stopped) before createOrder ran, e.g. at pricing. */
  const newOrder = (input: OrderIdentity) => {
    const lines = input.lines.map((line) => ({ sku: line.sku, quantity: line.quantity, unitPriceCents: line.unitPriceCents ?? 0 }));
    return {
      id: input.orderId,
      customerId: input.customerId,
      clientId: input.clientId ?? null,
      requestFingerprint: input.requestFingerprint ?? null,
      totalCents: totalCents(lines),
      lines: { create: lines },
    };
  };

  return {
    async createOrder(input: { orderId: string; customerId: string; lines: PricedLine[] } & OrderOrigin): Promise<{ orderId: string; totalCents: number }> {
      const total = totalCents(input.lines);
      await db.$transaction(async (tx) => {
        const created = await tx.order.createMany({
          data: [
            {
              id: input.orderId,
              customerId: input.customerId,
              clientId: input.clientId ?? null,
              requestFingerprint: input.requestFingerprint ?? null,
              totalCents: total,
              status: 'PENDING',
            },
          ],
          skipDuplicates: true,
        });
        if (created.count === 1) {
          await tx.orderLine.createMany({ data: input.lines.map((line) => ({ orderId: input.orderId, ...line })) });
        }
      });
      return { orderId: input.orderId, totalCents: total };
    },

    /**
     * Records that the saga stopped on a step that failed for good (status NEEDS_ATTENTION, with the step and
     * error), or, with `attention: null`, that an operator resumed it (back to PENDING). Never reopens a closed order.
     */
    async recordAttention(input: RecordAttentionInput): Promise<void> {
      const data = input.attention
        ? { status: 'NEEDS_ATTENTION' as const, attention: { ...input.attention } }
        : { status: 'PENDING' as const, attention: Prisma.DbNull };
      await db.$transaction(async (tx) => {
        const existing = await tx.order.findUnique({ where: { id: input.orderId } });
        if (!existing) await tx.order.create({ data: { ...newOrder(input), ...data } });
        else if (existing.closedAt === null) await tx.order.update({ where: { id: input.orderId }, data });
      });
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
          if (!alreadyClosed) await tx.order.update({ where: { id: input.orderId }, data: { ...outcome, attention: Prisma.DbNull } });
          return;
        }
        await tx.order.create({ data: { ...newOrder(input), ...outcome } });
      });
    },
  };
}

export type OrdersActivities = ReturnType<typeof createOrdersActivities>;
