// The orders service learns what the other services did for an order from their streams, never from their
// databases: stock reserved or released (inventory), payment authorized, captured, voided or refunded (payments),
// shipment scheduled, cancelled or dispatched (shipping). Each such event is appended to the order's own stream
// (order-stream.ts) and moves its snapshot row, in the same transaction as the consumer's inbox row: a
// redelivered event changes nothing. One durable consumer per stream (`orders-<service>`), filtered to those
// event types, runs in the process that runs the orders worker, on a pg pool of its own (connectFactsDb): a
// transaction there costs a fraction of Prisma's (src/events/sql-pool.ts).
import type { NatsConnection } from '@nats-io/nats-core';
import type { ServiceName } from '../../config';
import { DurableConsumer, recordInInbox, runConsumers, type ConsumedEvent, type InboxDb, type InboxTx, type RunningConsumers } from '../../events/consumer';
import { connectConsumerPool, type SqlPool } from '../../events/sql-pool';
import { streamOf, subjectOf } from '../../events/streams';
import type { Logger } from '../../observability/logging';
import { appendToOrderStream, FACTS_FROM_OTHER_SERVICES, withOrderStream, type EventSource, type StreamTx } from './order-stream';

/** The aggregate of an order each service's order events belong to. */
const ORDER_AGGREGATES: Record<Exclude<EventSource, 'orders'>, string> = { inventory: 'Reservation', payments: 'Payment', shipping: 'Shipment' };

export const factsConsumerName = (service: ServiceName) => `orders-${service}`;

/** The orders database as the consumers write it: raw SQL in transactions (a SqlPool; a Prisma client works too). */
export type FactsDb = InboxDb<InboxTx & StreamTx>;

/** The consumers, each with the subjects of the event types the order records. */
export const FACTS_CONSUMERS = (Object.keys(ORDER_AGGREGATES) as Exclude<EventSource, 'orders'>[]).map((service) => ({
  service,
  stream: streamOf(service),
  name: factsConsumerName(service),
  subjects: Object.entries(FACTS_FROM_OTHER_SERVICES)
    .filter(([, fact]) => fact.source === service)
    .map(([type]) => subjectOf(service, type)),
}));

/**
 * Records one event of another service in the order's stream, once. An event about an order this service does
 * not know (the saga always records the order before any other service acts on it, so only events written
 * outside a saga, by hand or by tests) is noted in the inbox and otherwise ignored. Answers whether the order
 * recorded it.
 */
export async function recordOrderFact(db: FactsDb, consumer: string, event: ConsumedEvent): Promise<boolean> {
  const { envelope } = event;
  const fact = FACTS_FROM_OTHER_SERVICES[envelope.type];
  return withOrderStream(db, async (tx) => {
    if (!(await recordInInbox(tx, consumer, event, null))) return false;
    if (!fact || envelope.aggregateType !== ORDER_AGGREGATES[fact.source]) return false;
    const [order] = await tx.$queryRaw<{ version: number }[]>`SELECT version FROM orders WHERE id = ${envelope.aggregateId}`;
    if (!order) return false;
    await appendToOrderStream(tx, envelope.aggregateId, order.version, [
      { type: envelope.type, payload: envelope.payload, source: fact.source, sourceEventId: envelope.id },
    ]);
    // The snapshot's column this fact moves (one of the three); the others keep their values. updated_at holds
    // UTC without a zone, as Prisma writes it.
    const { reservation = null, payment = null, shipment = null } = fact.set;
    await tx.$executeRaw`
      UPDATE orders SET reservation_status = COALESCE(${reservation}, reservation_status), payment_status = COALESCE(${payment}, payment_status),
        shipment_status = COALESCE(${shipment}, shipment_status), updated_at = now() AT TIME ZONE 'UTC'
      WHERE id = ${envelope.aggregateId}`;
    return true;
  });
}

/** The consumers' pool: a connection per consumer. */
export function connectFactsDb(url: string, logger?: Logger): SqlPool {
  return connectConsumerPool(url, FACTS_CONSUMERS.length, 'orders', logger);
}

export type FactsConsumers = RunningConsumers;

/** Starts the orders service's consumers of the other services' streams. */
export function startFactsConsumers({ nats, db, logger }: { nats: NatsConnection; db: FactsDb; logger?: Logger }): FactsConsumers {
  const consumers = FACTS_CONSUMERS.map(
    ({ stream, name, subjects }) =>
      new DurableConsumer({
        nats,
        name,
        stream,
        subjects,
        logger,
        handle: async (event) => {
          await recordOrderFact(db, name, event);
        },
        recordDeadLetter: async (event, reason) => {
          await db.$transaction((tx) => recordInInbox(tx, name, event, reason));
        },
      }),
  );
  return runConsumers(consumers);
}
