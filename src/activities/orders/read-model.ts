// Read side of the orders service: what the API answers for an order whose workflow is closed, and the order's
// event stream with the state its fold gives.
import type { Attention } from '../../workflows/definitions';
import type { OrdersDb } from './db';
import { foldOrder, readOrderStream, type ApprovalStatus, type OrderState, type OrderStreamEvent, type PaymentStatus, type ReservationStatus, type ShipmentStatus } from './order-stream';

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
  /** The snapshot's place in the order's event stream, and what the other services' events said. */
  version: number;
  approval: ApprovalStatus | null;
  reservation: ReservationStatus | null;
  payment: PaymentStatus | null;
  shipment: ShipmentStatus | null;
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
    version: order.version,
    approval: order.approvalStatus as ApprovalStatus | null,
    reservation: order.reservationStatus as ReservationStatus | null,
    payment: order.paymentStatus as PaymentStatus | null,
    shipment: order.shipmentStatus as ShipmentStatus | null,
  };
}

/** The order's state as its snapshot row reports it, in the shape the fold of its events gives. */
export function stateOfRecord(record: OrderRecord): OrderState {
  const { orderId, version, customerId, clientId, status, totalCents, lines, failureReason, completedSteps, compensations, attention } = record;
  const { approval, reservation, payment, shipment } = record;
  return { orderId, version, customerId, clientId, status, totalCents, lines, failureReason, completedSteps, compensations, attention, approval, reservation, payment, shipment };
}

export interface OrderHistory {
  orderId: string;
  events: OrderStreamEvent[];
  /** The fold of the events. */
  state: OrderState | undefined;
}

/** The order's event stream and its fold; undefined for an unknown order. */
export async function readOrderHistory(db: OrdersDb, orderId: string): Promise<OrderHistory | undefined> {
  const events = await readOrderStream(db, orderId);
  if (events.length === 0) return undefined;
  return { orderId, events, state: foldOrder(events) };
}
