// Orders activities: the order record, where its saga ended, whether a manager decided on it, and whether it
// waits for an operator. Idempotent, keyed by the order id. Every change appends its event (OrderCreated,
// ApprovalRequested, ApprovalDecided, OrderNeedsAttention, OrderResumed, OrderClosed) to the order's own stream
// (order-stream.ts) and to the outbox, and updates the order's snapshot row, all in one transaction; a call
// that changes nothing records nothing.
import { appendEvents, orderEvent, type DomainEvent } from '../../events/outbox';
import { totalCents, type OrderLine, type PricedLine } from '../../domain';
import { TERMINAL_STATUSES, type Attention } from '../../workflows/definitions';
import { Prisma } from '../../../generated/prisma/orders';
import { sameJson } from '../../same-json';
import type { OrdersDb } from './db';
import { appendToOrderStream, withOrderStream, type StreamTx } from './order-stream';

export type ClosedStatus = 'COMPLETED' | 'REJECTED' | 'CANCELLED';

/** Who placed the order and with what request; recorded with the order so the API can check later calls. */
export interface OrderOrigin {
  clientId?: string;
  requestFingerprint?: string;
  /**
   * The saga's workflow's first run id, which a reset of the workflow keeps: tells the saga that placed the order
   * from a saga started again for the same order id after Temporal forgot the first (see closedByAnotherSaga).
   */
  sagaRunId?: string;
}

/** How an order ended, as its record holds it: what a saga started again for it answers (createOrder). */
export interface ClosedOrderRecord {
  status: ClosedStatus;
  failureReason: string | null;
  completedSteps: string[];
  compensations: string[];
  totalCents: number;
  /** Sorted by SKU. */
  lines: PricedLine[];
}

export interface CreatedOrder {
  orderId: string;
  totalCents: number;
  /**
   * Set when the order had already ended under another saga: Temporal forgets a closed workflow after the namespace's
   * retention, and a request replayed after that (while the API could not ask the orders service) starts a saga
   * again. That saga must not run the order's steps a second time; it answers with this record.
   */
  closedByAnotherSaga?: ClosedOrderRecord;
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

export interface RecordApprovalInput {
  orderId: string;
  approved: boolean;
  manager: string;
  note?: string;
}

/**
 * Whether a closed order was placed by a saga other than the caller's. Unknown (false) when either side carries no
 * saga run id: orders placed before the column existed, and callers that do not say. A reset of the workflow keeps
 * its first run id, so a reset saga is the same saga and may record a new end.
 */
function closedByAnotherSaga(existing: { closedAt: Date | null; sagaRunId: string | null }, sagaRunId: string | undefined): boolean {
  return existing.closedAt !== null && existing.sagaRunId !== null && sagaRunId !== undefined && existing.sagaRunId !== sagaRunId;
}

/** The record of a closed order, as a saga started again for it is answered (its lines read only then). */
async function closedRecord(
  tx: Prisma.TransactionClient,
  order: { id: string; status: string; failureReason: string | null; completedSteps: string[]; compensations: string[]; totalCents: number },
): Promise<ClosedOrderRecord> {
  if (!(TERMINAL_STATUSES as readonly string[]).includes(order.status)) throw new Error(`order ${order.id} is closed with status ${order.status}`);
  const { failureReason, completedSteps, compensations, totalCents } = order;
  const lines = await tx.orderLine.findMany({ where: { orderId: order.id }, orderBy: { sku: 'asc' }, select: { sku: true, quantity: true, unitPriceCents: true } });
  return { status: order.status as ClosedStatus, failureReason, completedSteps, compensations, totalCents, lines };
}

/**
 * Appends the orders service's own events to the order's stream (after `version`) and to the outbox, in the
 * caller's transaction; the caller updates the rest of the snapshot row in the same transaction.
 */
async function recordOrderEvents(tx: StreamTx, orderId: string, version: number, events: DomainEvent[]): Promise<void> {
  await appendToOrderStream(tx, orderId, version, events.map(({ type, payload }) => ({ type, payload, source: 'orders' as const })));
  await appendEvents(tx, events);
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
      sagaRunId: input.sagaRunId ?? null,
      totalCents: totalCents(lines),
      lines: { create: lines },
    };
  };

  return {
    /**
     * Records the priced order. With `approvalThresholdCents` (the saga's policy), an order above it also records
     * that it waits for a manager (ApprovalRequested). An order that already ended under another saga is left as it
     * is, and its record returned (CreatedOrder.closedByAnotherSaga).
     */
    async createOrder(
      input: { orderId: string; customerId: string; lines: PricedLine[]; approvalThresholdCents?: number } & OrderOrigin,
    ): Promise<CreatedOrder> {
      const total = totalCents(input.lines);
      const approvalRequired = input.approvalThresholdCents !== undefined && total > input.approvalThresholdCents;
      return db.$transaction(async (tx): Promise<CreatedOrder> => {
        const created = await tx.order.createMany({
          data: [
            {
              id: input.orderId,
              customerId: input.customerId,
              clientId: input.clientId ?? null,
              requestFingerprint: input.requestFingerprint ?? null,
              sagaRunId: input.sagaRunId ?? null,
              totalCents: total,
              status: 'PENDING',
              approvalStatus: approvalRequired ? 'REQUESTED' : null,
            },
          ],
          skipDuplicates: true,
        });
        if (created.count === 1) {
          await tx.orderLine.createMany({ data: input.lines.map((line) => ({ orderId: input.orderId, ...line })) });
          const requested = orderEvent('Order', input.orderId, 'ApprovalRequested', { totalCents: total, thresholdCents: input.approvalThresholdCents });
          await recordOrderEvents(tx, input.orderId, 0, [orderCreated(input, input.lines), ...(approvalRequired ? [requested] : [])]);
          return { orderId: input.orderId, totalCents: total };
        }
        // A retry of this saga's own call (or a late attempt) finds its order: nothing to do.
        const existing = await tx.order.findUniqueOrThrow({ where: { id: input.orderId } });
        if (!closedByAnotherSaga(existing, input.sagaRunId)) return { orderId: input.orderId, totalCents: total };
        return { orderId: input.orderId, totalCents: existing.totalCents, closedByAnotherSaga: await closedRecord(tx, existing) };
      });
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
      await withOrderStream(db, async (tx) => {
        const existing = await tx.order.findUnique({ where: { id: input.orderId } });
        if (!existing) {
          await tx.order.create({ data: { ...newOrder(input), ...data } });
          await recordOrderEvents(tx, input.orderId, 0, [orderCreated(input, input.lines), event]);
        } else if (existing.closedAt === null) {
          const unchanged = existing.status === data.status && sameJson(existing.attention ?? null, input.attention);
          if (unchanged) return;
          await recordOrderEvents(tx, input.orderId, existing.version, [event]);
          await tx.order.update({ where: { id: input.orderId }, data });
        }
      });
    },

    /** Records a manager's decision on an order that waited for one; the first decision recorded stays. */
    async recordApproval(input: RecordApprovalInput): Promise<void> {
      const decided = orderEvent('Order', input.orderId, 'ApprovalDecided', { approved: input.approved, manager: input.manager, note: input.note ?? null });
      await withOrderStream(db, async (tx) => {
        const existing = await tx.order.findUnique({ where: { id: input.orderId } });
        // The saga records the order before it asks for approval; a closed or decided order keeps what it has.
        if (!existing || existing.closedAt !== null || existing.approvalStatus === 'APPROVED' || existing.approvalStatus === 'REJECTED') return;
        await recordOrderEvents(tx, input.orderId, existing.version, [decided]);
        await tx.order.update({ where: { id: input.orderId }, data: { approvalStatus: input.approved ? 'APPROVED' : 'REJECTED' } });
      });
    },

    /**
     * Records the saga's end. Creates the order if the saga ended before createOrder (e.g. an unknown SKU). An order
     * that ended under another saga keeps its end: a second saga for it (see CreatedOrder) changes nothing, and is
     * answered with the record (say, one that ended before createOrder could tell it: refused at pricing).
     */
    async closeOrder(input: CloseOrderInput): Promise<{ closedByAnotherSaga?: ClosedOrderRecord }> {
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
      return withOrderStream(db, async (tx) => {
        const existing = await tx.order.findUnique({ where: { id: input.orderId } });
        if (existing) {
          if (closedByAnotherSaga(existing, input.sagaRunId)) return { closedByAnotherSaga: await closedRecord(tx, existing) };
          // A retry of the same close finds it recorded and leaves the record (closedAt included) as it is.
          const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((item, i) => item === b[i]);
          const alreadyClosed =
            existing.closedAt !== null &&
            existing.status === outcome.status &&
            existing.failureReason === outcome.failureReason &&
            sameList(existing.completedSteps, outcome.completedSteps) &&
            sameList(existing.compensations, outcome.compensations);
          if (alreadyClosed) return {};
          await recordOrderEvents(tx, input.orderId, existing.version, [closed]);
          await tx.order.update({ where: { id: input.orderId }, data: { ...outcome, attention: Prisma.DbNull } });
          return {};
        }
        await tx.order.create({ data: { ...newOrder(input), ...outcome } });
        await recordOrderEvents(tx, input.orderId, 0, [orderCreated(input, input.lines), closed]);
        return {};
      });
    },
  };
}

export type OrdersActivities = ReturnType<typeof createOrdersActivities>;

function orderCreated(input: { orderId: string; customerId: string } & OrderOrigin, lines: (OrderLine & { unitPriceCents?: number })[]) {
  const priced = lines.map((line) => ({ sku: line.sku, quantity: line.quantity, unitPriceCents: line.unitPriceCents ?? 0 }));
  return orderEvent('Order', input.orderId, 'OrderCreated', {
    customerId: input.customerId,
    clientId: input.clientId ?? null,
    lines: priced,
    totalCents: totalCents(priced),
  });
}
