// Read side of the orders service: what the API answers for an order whose workflow is closed.
import type { OrdersDb } from './db';

export interface OrderRecord {
  orderId: string;
  customerId: string;
  status: 'PENDING' | 'COMPLETED' | 'REJECTED' | 'CANCELLED';
  totalCents: number;
  failureReason: string | null;
  completedSteps: string[];
  compensations: string[];
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
    status: order.status,
    totalCents: order.totalCents,
    failureReason: order.failureReason,
    completedSteps: order.completedSteps,
    compensations: order.compensations,
    lines: order.lines.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
    createdAt: order.createdAt.toISOString(),
    closedAt: order.closedAt?.toISOString() ?? null,
  };
}
