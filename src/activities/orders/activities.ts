// Orders activities: the order record, where its saga ended, and whether it waits for an operator.
// Idempotent, keyed by the order id. Every change records its event (OrderCreated, OrderNeedsAttention,
// OrderResumed, OrderClosed) in the outbox in the same transaction; a call that changes nothing records nothing.
import { appendEvents, orderEvent } from '../../events/outbox';
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
          await appendEvents(tx, [orderCreated(input, input.lines)]);
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
      const event = input.attention
        ? orderEvent('Order', input.orderId, 'OrderNeedsAttention', { attention: input.attention })
        : orderEvent('Order', input.orderId, 'OrderResumed', {});
      await db.$transaction(async (tx) => {
        const existing = await tx.order.findUnique({ where: { id: input.orderId } });
        if (!existing) {
          await tx.order.create({ data: { ...newOrder(input), ...data } });
          await appendEvents(tx, [orderCreated(input, input.lines), event]);
        } else if (existing.closedAt === null) {
          const unchanged = existing.status === data.status && sameJson(existing.attention ?? null, input.attention);
          if (unchanged) return;
          await tx.order.update({ where: { id: input.orderId }, data });
          await appendEvents(tx, [event]);
        }
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
      const closed = orderEvent('Order', input.orderId, 'OrderClosed', {
        status: outcome.status,
        failureReason: outcome.failureReason,
        completedSteps: outcome.completedSteps,
        compensations: outcome.compensations,
      });
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
          if (alreadyClosed) return;
          await tx.order.update({ where: { id: input.orderId }, data: { ...outcome, attention: Prisma.DbNull } });
          await appendEvents(tx, [closed]);
          return;
        }
        await tx.order.create({ data: { ...newOrder(input), ...outcome } });
        await appendEvents(tx, [orderCreated(input, input.lines), closed]);
      });
    },
  };
}

export type OrdersActivities = ReturnType<typeof createOrdersActivities>;

/** Equal as JSON whatever the key order (jsonb stores keys in its own order). Flat objects only. */
function sameJson(a: unknown, b: unknown): boolean {
  const canonical = (value: unknown) => JSON.stringify(value, value && typeof value === 'object' ? Object.keys(value).sort() : undefined);
  return canonical(a) === canonical(b);
}


function orderCreated(input: { orderId: string; customerId: string } & OrderOrigin, lines: (OrderLine & { unitPriceCents?: number })[]) {
  const priced = lines.map((line) => ({ sku: line.sku, quantity: line.quantity, unitPriceCents: line.unitPriceCents ?? 0 }));
  return orderEvent('Order', input.orderId, 'OrderCreated', {
    customerId: input.customerId,
    clientId: input.clientId ?? null,
    lines: priced,
    totalCents: totalCents(priced),
  });
}
