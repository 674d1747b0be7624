// The transactional outbox: a service records each domain event in its own `outbox` table, in the same local
// transaction as the state change it describes, so that a change without its event (or an event without its
// change) cannot exist. A relay publishes the rows to JetStream afterwards (src/events/relay.ts).
//
// Every service database has the same table (prisma/<service>/schema.prisma, model OutboxEvent):
//   id              the event id, sent as Nats-Msg-Id (the broker drops a republished duplicate)
//   position        the order in which events were written in this database (the polling relay reads by it)
//   aggregate_type  e.g. Reservation; aggregate_id e.g. the order id
//   sequence        1, 2, 3… per aggregate: two writers cannot both append the same one (unique key)
//   type, payload, correlation_id (the order id), occurred_at, published_at (set by the polling relay)
//   trace_context   the W3C trace context (traceparent) of the span that wrote the event, an activity's: the relay
//                   continues that trace when it publishes the event (NULL when tracing is off)
import { randomUUID } from 'node:crypto';
import { activeTraceCarrier } from '../observability/tracing';

/** What a service says happened. */
export interface DomainEvent {
  aggregateType: string;
  aggregateId: string;
  type: string;
  payload: Record<string, unknown>;
  /** The order the event belongs to, carried end to end. */
  correlationId: string;
}

/** A stored event, as the relay reads it and a consumer receives it. */
export interface StoredEvent extends DomainEvent {
  id: string;
  sequence: number;
  occurredAt: string;
}

/** An event of any aggregate, e.g. a Product keyed by its SKU, correlated with the order that caused it. */
export function aggregateEvent(aggregateType: string, aggregateId: string, type: string, payload: Record<string, unknown>, correlationId: string): DomainEvent {
  return { aggregateType, aggregateId, type, payload, correlationId };
}

/**
 * The event of one of an order's aggregates (its Order, Reservation, Payment or Shipment, each keyed by the order
 * id): the order id is the aggregate id, the correlation id and part of the payload.
 */
export function orderEvent(aggregateType: string, orderId: string, type: string, payload: Record<string, unknown>): DomainEvent {
  return { aggregateType, aggregateId: orderId, type, payload: { orderId, ...payload }, correlationId: orderId };
}

/** The part of a Prisma transaction client the outbox needs (every service's client has it). */
export interface RawExecutor {
  $executeRaw(query: TemplateStringsArray, ...values: unknown[]): Promise<number>;
}

/**
 * Appends events to the outbox inside the caller's transaction. The per-aggregate sequence is the next after the
 * aggregate's last; callers hold the aggregate's row lock, and the unique key refuses a concurrent duplicate.
 */
export async function appendEvents(tx: RawExecutor, events: DomainEvent[]): Promise<void> {
  const trace = activeTraceCarrier();
  const traceContext = trace ? JSON.stringify(trace) : null;
  for (const event of events) {
    await tx.$executeRaw`
      INSERT INTO outbox (id, aggregate_type, aggregate_id, sequence, type, payload, correlation_id, trace_context)
      SELECT ${randomUUID()}::uuid, ${event.aggregateType}, ${event.aggregateId},
             COALESCE(MAX(sequence), 0) + 1, ${event.type}, ${JSON.stringify(event.payload)}::jsonb, ${event.correlationId}, ${traceContext}::jsonb
      FROM outbox WHERE aggregate_type = ${event.aggregateType} AND aggregate_id = ${event.aggregateId}`;
  }
}
