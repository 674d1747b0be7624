// Read side of the orders service: what the API answers for an order whose workflow is closed.
import type { Attention } from '../../workflows/definitions';
import type { OrdersDb } from './db';

export interface OrderRecord {
  orderId: string;
  customerId: string;
  /** The API client that placed the order; null for orders placed before clients were recorded. */
  clientId: string | null;
  /** Fingerprint of the placing request (see src/api/order-workflows.ts), to check a replayed Idempotency-Key. */
  requestFingerprint: string | null;
  status: 'PENDING' | 'NEEDS_ATTENTION' | 'COMPLETED' | 'REJECTED' | 'CANCELLED';
  totalCents: number;
  failureReason: string | null;
  completedSteps: string[];
  compensations: string[];
  attention: Attention | null;
  lines: { sku: string; quantity: number; unitPriceCents: number }[];
  createdAt: string;
  closedAt: string | null;
}

export async function findOrder(db: OrdersDb, orderId: string): Promise<OrderRecord | undefined> {
  const order = await db.order.findUnique({ where: { id: orderId }, include: { lines: { orderBy: { sku: 'asc' } } } });
  if (!order) return undefined;
  return {
    orderId: order.id,
    customerId: order.customerId,
    clientId: order.clientId,
    requestFingerprint: order.requestFingerprint,
    status: order.status,
    totalCents: order.totalCents,
    failureReason: order.failureReason,
    completedSteps: order.completedSteps,
    compensations: order.compensations,
    attention: (order.attention as Attention | null) ?? null,
    lines: order.lines.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
    createdAt: order.createdAt.toISOString(),
    closedAt: order.closedAt?.toISOString() ?? null,
  };
}
