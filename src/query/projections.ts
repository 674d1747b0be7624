// How each event changes the views (prisma/query/schema.prisma). Every projection is guarded by the
// aggregate's sequence: an event older than (or equal to) what a view already shows changes nothing, so a
// replay, a redelivery or a rebuild can only move a view forward. Event types the views do not use are
// recorded in the inbox and otherwise ignored (a new event type is no poison).
import type { EventEnvelope } from '../events/relay';
import type { InboxTx } from '../events/consumer';

/** What a projection needs of its transaction: the inbox's raw SQL, and SQL built from the column names below. */
export interface ProjectionTx extends InboxTx {
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
}

type Payload = Record<string, unknown>;

/** The order view's columns each event of an order's aggregates sets (the values come from the event). */
const ORDER_VIEW_CHANGES: Record<string, { version: string; set: (p: Payload, at: string) => Record<string, unknown> }> = {
  OrderCreated: {
    version: 'order_version',
    set: (p, at) => ({
      customer_id: p.customerId,
      client_id: p.clientId ?? null,
      lines: JSON.stringify(p.lines ?? []),
      total_cents: p.totalCents,
      status: 'PENDING',
      created_at: at,
    }),
  },
  OrderNeedsAttention: { version: 'order_version', set: (p) => ({ status: 'NEEDS_ATTENTION', attention: JSON.stringify(p.attention ?? null) }) },
  OrderResumed: { version: 'order_version', set: () => ({ status: 'PENDING', attention: null }) },
  OrderClosed: {
    version: 'order_version',
    set: (p, at) => ({ status: p.status, failure_reason: p.failureReason ?? null, attention: null, closed_at: at }),
  },
  StockReserved: { version: 'reservation_version', set: () => ({ reservation_status: 'RESERVED' }) },
  StockReleased: { version: 'reservation_version', set: () => ({ reservation_status: 'RELEASED' }) },
  ReservationConsumed: { version: 'reservation_version', set: () => ({ reservation_status: 'CONSUMED' }) },
  PaymentAuthorized: { version: 'payment_version', set: (p) => ({ payment_status: 'AUTHORIZED', payment_amount_cents: p.amountCents }) },
  PaymentVoided: { version: 'payment_version', set: () => ({ payment_status: 'VOIDED' }) },
  PaymentRefunded: { version: 'payment_version', set: () => ({ payment_status: 'REFUNDED' }) },
  PaymentCaptured: { version: 'payment_version', set: () => ({ payment_status: 'CAPTURED' }) },
  ShipmentScheduled: { version: 'shipment_version', set: () => ({ shipment_status: 'SCHEDULED' }) },
  ShipmentCancelled: { version: 'shipment_version', set: () => ({ shipment_status: 'CANCELLED' }) },
  ShipmentDispatched: { version: 'shipment_version', set: (p) => ({ shipment_status: 'DISPATCHED', tracking_code: p.trackingCode ?? null }) },
};

/** Columns stored as jsonb. */
const JSON_COLUMNS = new Set(['lines', 'attention']);
const TIME_COLUMNS = new Set(['created_at', 'closed_at']);

/** Applies one event to the views, inside the consumer's transaction. Answers whether a view changed. */
export async function project(tx: ProjectionTx, event: EventEnvelope): Promise<boolean> {
  const change = ORDER_VIEW_CHANGES[event.type];
  if (change) return (await upsertOrderView(tx, event, change.version, change.set(event.payload, event.occurredAt))) > 0;
  switch (event.type) {
    case 'ProductCatalogued': {
      const p = event.payload;
      return (
        (await tx.$executeRaw`
          INSERT INTO product_view (sku, name, price_cents, on_hand, version, updated_at)
          VALUES (${p.sku as string}, ${p.name as string}, ${p.priceCents as number}, ${p.onHand as number}, ${event.sequence}, ${event.occurredAt}::timestamptz)
          ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents, on_hand = EXCLUDED.on_hand,
            version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
          WHERE product_view.version < EXCLUDED.version`) > 0
      );
    }
    case 'StockLevelChanged':
      // The product was catalogued before its stock or price could change (same stream, earlier sequence).
      return (
        (await tx.$executeRaw`
          UPDATE product_view SET on_hand = ${event.payload.onHand as number}, version = ${event.sequence}, updated_at = ${event.occurredAt}::timestamptz
          WHERE sku = ${event.aggregateId} AND version < ${event.sequence}`) > 0
      );
    case 'ProductRepriced':
      return (
        (await tx.$executeRaw`
          UPDATE product_view SET price_cents = ${event.payload.priceCents as number}, version = ${event.sequence}, updated_at = ${event.occurredAt}::timestamptz
          WHERE sku = ${event.aggregateId} AND version < ${event.sequence}`) > 0
      );
    case 'CustomerRegistered':
    case 'CustomerCreditChanged': {
      // Both carry the customer's whole credit state.
      const p = event.payload;
      return (
        (await tx.$executeRaw`
          INSERT INTO customer_view (id, name, credit_limit_cents, credit_used_cents, version, updated_at)
          VALUES (${event.aggregateId}, ${p.name as string}, ${p.creditLimitCents as number}, ${p.creditUsedCents as number}, ${event.sequence}, ${event.occurredAt}::timestamptz)
          ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, credit_limit_cents = EXCLUDED.credit_limit_cents,
            credit_used_cents = EXCLUDED.credit_used_cents, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
          WHERE customer_view.version < EXCLUDED.version`) > 0
      );
    }
    default:
      return false;
  }
}

/**
 * Inserts the order's row or updates it with `values`, only if this event is newer than the last one applied
 * from its aggregate (`versionColumn`). Column names come from ORDER_VIEW_CHANGES, never from an event.
 */
async function upsertOrderView(tx: ProjectionTx, event: EventEnvelope, versionColumn: string, values: Record<string, unknown>): Promise<number> {
  const columns = Object.keys(values);
  const params: unknown[] = [event.aggregateId, event.occurredAt, event.id, event.type, event.sequence, ...columns.map((column) => values[column])];
  const cast = (column: string) => (JSON_COLUMNS.has(column) ? '::jsonb' : TIME_COLUMNS.has(column) ? '::timestamptz' : '');
  const placeholders = columns.map((column, i) => `$${i + 6}${cast(column)}`);
  const sql = `
    INSERT INTO order_view (order_id, updated_at, last_event_id, last_event_type, ${versionColumn}${columns.map((c) => `, ${c}`).join('')})
    VALUES ($1, $2::timestamptz, $3::uuid, $4, $5${placeholders.map((p) => `, ${p}`).join('')})
    ON CONFLICT (order_id) DO UPDATE SET
      updated_at = GREATEST(order_view.updated_at, EXCLUDED.updated_at), last_event_id = EXCLUDED.last_event_id, last_event_type = EXCLUDED.last_event_type,
      ${versionColumn} = EXCLUDED.${versionColumn}${columns.map((c) => `, ${c} = EXCLUDED.${c}`).join('')}
    WHERE order_view.${versionColumn} < EXCLUDED.${versionColumn}`;
  return tx.$executeRawUnsafe(sql, ...params);
}
