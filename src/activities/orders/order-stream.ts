// The order as its event list (event sourcing). Each order is an append-only stream in `order_events`
// (id, root_id = the order id, sequence 1, 2, 3…, type, payload): what the orders service decided (created and
// priced, approval requested and decided, needs attention, resumed, closed) and what the other services told it
// through their streams (stock reserved, payment authorized, shipment dispatched, and their compensations).
// The order's state is the fold of its stream (foldOrder); the `orders` row is a snapshot of that state, written
// in the same transaction as every append, so that reads need not fold and the two can be checked against each
// other (test/activities/order-stream.test.ts, the chaos run, `npm run audit`).
//
// Appends are optimistic: a writer reads the order's version, appends the events that follow it, and moves the
// version on only if nobody else did meanwhile (compare-and-set on the row; the unique (root_id, sequence) key
// backs it). A writer that lost the race gets OrderStreamConflict and starts its transaction over.
import { randomUUID } from 'node:crypto';
import type { Attention } from '../../workflows/definitions';
import type { OrderRecord } from './read-model';

/** Who said it: the orders service itself, or the service whose event the order recorded. */
export type EventSource = 'orders' | 'inventory' | 'payments' | 'shipping';

export type ReservationStatus = 'RESERVED' | 'RELEASED' | 'CONSUMED';
export type PaymentStatus = 'AUTHORIZED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';
export type ShipmentStatus = 'SCHEDULED' | 'CANCELLED' | 'DISPATCHED';
export type ApprovalStatus = 'REQUESTED' | 'APPROVED' | 'REJECTED';

/** An event about to be appended to an order's stream. */
export interface NewOrderEvent {
  type: string;
  payload: Record<string, unknown>;
  source: EventSource;
  /** For an event learnt from another service: that event's id. */
  sourceEventId?: string;
}

/** An event of an order's stream, as stored. */
export interface OrderStreamEvent extends NewOrderEvent {
  id: string;
  orderId: string;
  sequence: number;
  occurredAt: string;
}

/** An order's state: what folding its events gives, and what its snapshot row holds. */
export interface OrderState {
  orderId: string;
  /** The sequence of the last event applied. */
  version: number;
  customerId: string;
  clientId: string | null;
  status: OrderRecord['status'];
  totalCents: number;
  /** Sorted by SKU. */
  lines: { sku: string; quantity: number; unitPriceCents: number }[];
  failureReason: string | null;
  completedSteps: string[];
  compensations: string[];
  attention: Attention | null;
  approval: ApprovalStatus | null;
  reservation: ReservationStatus | null;
  payment: PaymentStatus | null;
  shipment: ShipmentStatus | null;
}

/** What the other services' events tell an order: its reservation, payment and shipment. */
export type OrderProgress = Pick<OrderState, 'reservation' | 'payment' | 'shipment'>;

/** What another service's event means for the order, by event type. */
export const FACTS_FROM_OTHER_SERVICES: Record<string, { source: Exclude<EventSource, 'orders'>; set: Partial<OrderProgress> }> = {
  StockReserved: { source: 'inventory', set: { reservation: 'RESERVED' } },
  StockReleased: { source: 'inventory', set: { reservation: 'RELEASED' } },
  ReservationConsumed: { source: 'inventory', set: { reservation: 'CONSUMED' } },
  PaymentAuthorized: { source: 'payments', set: { payment: 'AUTHORIZED' } },
  PaymentCaptured: { source: 'payments', set: { payment: 'CAPTURED' } },
  PaymentVoided: { source: 'payments', set: { payment: 'VOIDED' } },
  PaymentRefunded: { source: 'payments', set: { payment: 'REFUNDED' } },
  ShipmentScheduled: { source: 'shipping', set: { shipment: 'SCHEDULED' } },
  ShipmentCancelled: { source: 'shipping', set: { shipment: 'CANCELLED' } },
  ShipmentDispatched: { source: 'shipping', set: { shipment: 'DISPATCHED' } },
};

type Payload = Record<string, unknown>;

/** The state an order's first event creates. */
function created(orderId: string, p: Payload): OrderState {
  const lines = ((p.lines ?? []) as OrderState['lines']).map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents }));
  return {
    orderId,
    version: 0,
    customerId: p.customerId as string,
    clientId: (p.clientId as string | null | undefined) ?? null,
    status: 'PENDING',
    totalCents: p.totalCents as number,
    lines: lines.sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)),
    failureReason: null,
    completedSteps: [],
    compensations: [],
    attention: null,
    approval: null,
    reservation: null,
    payment: null,
    shipment: null,
  };
}

/** One step of the fold: the state after `event`. An order's stream starts with OrderCreated. */
export function applyOrderEvent(state: OrderState | undefined, event: Pick<OrderStreamEvent, 'orderId' | 'sequence' | 'type' | 'payload'>): OrderState {
  const p = event.payload;
  if (event.type === 'OrderCreated') return { ...created(event.orderId, p), version: event.sequence };
  if (!state) throw new Error(`order ${event.orderId}: ${event.type} (sequence ${event.sequence}) before OrderCreated`);
  const next = ((): OrderState => {
    switch (event.type) {
      case 'ApprovalRequested':
        return { ...state, approval: 'REQUESTED' };
      case 'ApprovalDecided':
        return { ...state, approval: p.approved ? 'APPROVED' : 'REJECTED' };
      case 'OrderNeedsAttention':
        return { ...state, status: 'NEEDS_ATTENTION', attention: (p.attention as Attention) ?? null };
      case 'OrderResumed':
        return { ...state, status: 'PENDING', attention: null };
      case 'OrderClosed':
        return {
          ...state,
          status: p.status as OrderState['status'],
          failureReason: (p.failureReason as string | null) ?? null,
          completedSteps: (p.completedSteps as string[]) ?? [],
          compensations: (p.compensations as string[]) ?? [],
          attention: null,
        };
      default: {
        const fact = FACTS_FROM_OTHER_SERVICES[event.type];
        if (!fact) throw new Error(`order ${event.orderId}: unknown event type ${event.type} (sequence ${event.sequence})`);
        return { ...state, ...fact.set };
      }
    }
  })();
  return { ...next, version: event.sequence };
}

/** The order's state from its events alone; undefined for an empty stream. */
export function foldOrder(events: readonly Pick<OrderStreamEvent, 'orderId' | 'sequence' | 'type' | 'payload'>[]): OrderState | undefined {
  let state: OrderState | undefined;
  events.forEach((event, i) => {
    if (event.sequence !== i + 1) throw new Error(`order ${event.orderId}: event ${i + 1} has sequence ${event.sequence}`);
    state = applyOrderEvent(state, event);
  });
  return state;
}

/** Another writer appended to the order since this one read its version. */
export class OrderStreamConflict extends Error {
  constructor(orderId: string, expectedVersion: number) {
    super(`order ${orderId} moved past version ${expectedVersion} while this writer was appending`);
    this.name = 'OrderStreamConflict';
  }
}

/** The part of a Prisma transaction the stream needs. */
export interface StreamTx {
  $executeRaw(query: TemplateStringsArray, ...values: unknown[]): Promise<number>;
  $queryRaw<T = unknown>(query: TemplateStringsArray, ...values: unknown[]): Promise<T>;
}

/**
 * Appends `events` after `expectedVersion` and moves the snapshot's version to the last one, inside the caller's
 * transaction; the caller writes the rest of the snapshot in the same transaction. Throws OrderStreamConflict if
 * the order is no longer at `expectedVersion` (the row's compare-and-set runs first, so the loser waits for the
 * winner's commit and then finds the version moved). Answers the new version.
 */
export async function appendToOrderStream(tx: StreamTx, orderId: string, expectedVersion: number, events: NewOrderEvent[]): Promise<number> {
  const version = expectedVersion + events.length;
  const moved = await tx.$executeRaw`UPDATE orders SET version = ${version} WHERE id = ${orderId} AND version = ${expectedVersion}`;
  if (moved !== 1) throw new OrderStreamConflict(orderId, expectedVersion);
  for (const [i, event] of events.entries()) {
    await tx.$executeRaw`
      INSERT INTO order_events (id, root_id, sequence, type, payload, source, source_event_id)
      VALUES (${randomUUID()}::uuid, ${orderId}, ${expectedVersion + i + 1}, ${event.type}, ${JSON.stringify(event.payload)}::jsonb,
              ${event.source}, ${event.sourceEventId ?? null}::uuid)`;
  }
  return version;
}

/** An order's events in sequence order (none for an unknown order). */
export async function readOrderStream(db: Pick<StreamTx, '$queryRaw'>, orderId: string): Promise<OrderStreamEvent[]> {
  const rows = await db.$queryRaw<
    { id: string; root_id: string; sequence: number; type: string; payload: Payload; source: EventSource; source_event_id: string | null; occurred_at: Date }[]
  >`SELECT id::text, root_id, sequence, type, payload, source, source_event_id::text, occurred_at FROM order_events WHERE root_id = ${orderId} ORDER BY sequence`;
  return rows.map((row) => ({
    id: row.id,
    orderId: row.root_id,
    sequence: row.sequence,
    type: row.type,
    payload: row.payload,
    source: row.source,
    ...(row.source_event_id ? { sourceEventId: row.source_event_id } : {}),
    occurredAt: row.occurred_at.toISOString(),
  }));
}

/**
 * Runs `work` in a transaction, starting it over when it lost an append race (OrderStreamConflict): the next
 * attempt reads the new version. A handful of writers (the saga's activity, one consumer per other service) can
 * race on one order; each round one of them wins, and a short random pause keeps the losers from colliding again
 * in lockstep.
 */
export async function withOrderStream<T, Tx>(db: { $transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> }, work: (tx: Tx) => Promise<T>, attempts = 100): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.$transaction(work);
    } catch (error) {
      if (!(error instanceof OrderStreamConflict) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(5 * attempt, 50)));
    }
  }
}
