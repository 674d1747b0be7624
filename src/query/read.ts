// Reads from the query database, for the API: orders listed and filtered, the catalog, customer credit, and
// how far the views are behind the streams. Everything here is as of the last event applied.
import type { NatsConnection } from '@nats-io/nats-core';
import { consumerLag } from '../events/consumer';
import type { QueryDb } from './db';
import { PROJECTOR_CONSUMERS } from './projector';

export const ORDER_STATUSES = ['PENDING', 'NEEDS_ATTENTION', 'COMPLETED', 'REJECTED', 'CANCELLED'] as const;

export interface OrderFilter {
  status?: (typeof ORDER_STATUSES)[number];
  customerId?: string;
  /** Only this client's orders (a client application sees its own only). */
  clientId?: string;
  /** Created at or after / before (ISO 8601). */
  from?: Date;
  to?: Date;
  /** From a previous page's nextCursor. */
  cursor?: string;
  limit: number;
}

/** An order as the query side shows it. */
export interface OrderSummary {
  orderId: string;
  customerId: string;
  status: string;
  totalCents: number;
  lines: { sku: string; quantity: number; unitPriceCents: number }[];
  failureReason: string | null;
  reservation: string | null;
  payment: { status: string; amountCents: number | null } | null;
  shipment: { status: string; trackingCode: string | null } | null;
  createdAt: string;
  closedAt: string | null;
  updatedAt: string;
  lastEvent: { id: string; type: string };
}

/** A page position: the last order shown (newest first, ties broken by id). Opaque to callers. */
export function encodeCursor(createdAt: Date, orderId: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), orderId])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; orderId: string } | undefined {
  try {
    const [at, orderId] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    if (typeof orderId !== 'string' || Number.isNaN(createdAt.getTime())) return undefined;
    return { createdAt, orderId };
  } catch {
    return undefined;
  }
}

/** Newest first. Orders whose OrderCreated has not been applied yet are not listed. */
export async function listOrders(db: QueryDb, filter: OrderFilter): Promise<{ orders: OrderSummary[]; nextCursor: string | null }> {
  const after = filter.cursor ? decodeCursor(filter.cursor) : undefined;
  const rows = await db.orderView.findMany({
    where: {
      createdAt: { not: null, ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) },
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.customerId ? { customerId: filter.customerId } : {}),
      ...(filter.clientId ? { clientId: filter.clientId } : {}),
      ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, orderId: { lt: after.orderId } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { orderId: 'desc' }],
    take: filter.limit + 1,
  });
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return { orders: page.map(summary), nextCursor: rows.length > filter.limit && last ? encodeCursor(last.createdAt!, last.orderId) : null };
}

type OrderViewRow = NonNullable<Awaited<ReturnType<QueryDb['orderView']['findUnique']>>>;

function summary(row: OrderViewRow): OrderSummary {
  return {
    orderId: row.orderId,
    customerId: row.customerId!,
    status: row.status!,
    totalCents: row.totalCents!,
    lines: row.lines as OrderSummary['lines'],
    failureReason: row.failureReason,
    reservation: row.reservationStatus,
    payment: row.paymentStatus ? { status: row.paymentStatus, amountCents: row.paymentAmountCents } : null,
    shipment: row.shipmentStatus ? { status: row.shipmentStatus, trackingCode: row.trackingCode } : null,
    createdAt: row.createdAt!.toISOString(),
    closedAt: row.closedAt?.toISOString() ?? null,
    updatedAt: row.updatedAt.toISOString(),
    lastEvent: { id: row.lastEventId, type: row.lastEventType },
  };
}

export async function listProducts(db: QueryDb) {
  const rows = await db.productView.findMany({ orderBy: { sku: 'asc' } });
  return rows.map(({ sku, name, priceCents, onHand }) => ({ sku, name, priceCents, onHand }));
}

export async function getProduct(db: QueryDb, sku: string) {
  const row = await db.productView.findUnique({ where: { sku } });
  return row ? { sku: row.sku, name: row.name, priceCents: row.priceCents, onHand: row.onHand } : undefined;
}

const customer = ({ id, name, creditLimitCents, creditUsedCents }: { id: string; name: string; creditLimitCents: number; creditUsedCents: number }) => ({
  id,
  name,
  creditLimitCents,
  creditUsedCents,
  creditAvailableCents: creditLimitCents - creditUsedCents,
});

export async function listCustomers(db: QueryDb) {
  return (await db.customerView.findMany({ orderBy: { id: 'asc' } })).map(customer);
}

export async function getCustomer(db: QueryDb, id: string) {
  const row = await db.customerView.findUnique({ where: { id } });
  return row ? customer(row) : undefined;
}

/**
 * How far the views are behind the streams: events published but not yet applied (null when NATS cannot be
 * asked), and when the last event was applied.
 */
export async function viewsLag(db: QueryDb, nats: NatsConnection | undefined): Promise<{ pendingEvents: number | null; lastAppliedAt: string | null }> {
  const [pending, last] = await Promise.all([
    nats
      ? Promise.all(PROJECTOR_CONSUMERS.map(({ stream, name }) => consumerLag(nats, stream, name))).then(
          (lags) => lags.reduce((sum, lag) => sum + lag, 0),
          () => null,
        )
      : Promise.resolve(null),
    db.inboxEntry.aggregate({ _max: { appliedAt: true }, where: { consumer: { in: PROJECTOR_CONSUMERS.map(({ name }) => name) } } }),
  ]);
  return { pendingEvents: pending, lastAppliedAt: last._max.appliedAt?.toISOString() ?? null };
}
