// The event path's share of the audit: once the system is quiet, no event is lost between an outbox and its
// stream, none is on a stream twice, every consumer has applied every event it was meant to (none twice, none
// dead-lettered), every order's event stream folds to the state the orders service reports, what the order's
// stream learnt from the other services agrees with their databases, and every view of the query database
// equals the service databases. Used by `npm run audit` and the chaos run (src/audit/auditor.ts).
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../config';
import { connectInventoryDb } from '../activities/inventory/db';
import { connectOrdersDb } from '../activities/orders/db';
import { foldOrder, readOrderStream } from '../activities/orders/order-stream';
import { findOrder, stateOfRecord } from '../activities/orders/read-model';
import { connectPaymentsDb } from '../activities/payments/db';
import { connectShippingDb } from '../activities/shipping/db';
import { consumerLag } from '../events/consumer';
import type { EventEnvelope } from '../events/relay';
import { outboxStatus } from '../events/relay-status';
import { DEAD_LETTER_STREAM, streamOf } from '../events/streams';
import { connectQueryDb } from '../query/db';
import { sameJson } from '../same-json';
import { Check, type CheckResult } from './check';

export interface EventsAuditOptions {
  databaseUrls: DatabaseUrls;
  queryDatabaseUrl: string;
  nats: NatsConnection;
  /** How long to wait for the event path to become quiet (outboxes published, consumers caught up). */
  settleMs?: number;
}

/** Every event id on a stream, in stream order (an ordered consumer reads it from the start). */
async function eventIdsOn(nats: NatsConnection, stream: string): Promise<string[]> {
  const { state } = await (await jetstreamManager(nats)).streams.info(stream);
  if (state.messages === 0) return [];
  const consumer = await jetstream(nats).consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const ids: string[] = [];
  const messages = await consumer.consume();
  try {
    for await (const message of messages) {
      ids.push(message.json<EventEnvelope>().id);
      if (message.info.streamSequence >= state.last_seq) break;
    }
  } finally {
    await messages.close();
  }
  return ids;
}

/** The durable consumers on the service streams (the query side's, the orders service's, any other). */
async function durableConsumers(nats: NatsConnection): Promise<{ stream: string; name: string }[]> {
  const jsm = await jetstreamManager(nats);
  const found: { stream: string; name: string }[] = [];
  for (const service of SERVICES) {
    for await (const info of jsm.consumers.list(streamOf(service))) if (info.config.durable_name) found.push({ stream: streamOf(service), name: info.config.durable_name });
  }
  return found;
}

/** Waits until every outbox is published and every durable consumer has caught up; answers whether it did. */
async function settle(options: EventsAuditOptions): Promise<{ quiet: boolean; backlogs: Record<ServiceName, number>; lags: Record<string, number> }> {
  const deadline = Date.now() + (options.settleMs ?? 30_000);
  for (;;) {
    const backlogs = Object.fromEntries(
      await Promise.all(SERVICES.map(async (service) => [service, (await outboxStatus(options.databaseUrls[service])).backlog] as const)),
    ) as Record<ServiceName, number>;
    const lags: Record<string, number> = {};
    for (const { stream, name } of await durableConsumers(options.nats)) lags[name] = await consumerLag(options.nats, stream, name);
    const quiet = Object.values(backlogs).every((n) => n === 0) && Object.values(lags).every((n) => n === 0);
    if (quiet || Date.now() > deadline) return { quiet, backlogs, lags };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export async function auditEvents(options: EventsAuditOptions): Promise<CheckResult[]> {
  const { databaseUrls, nats } = options;
  const dbs = {
    orders: connectOrdersDb(databaseUrls.orders),
    inventory: connectInventoryDb(databaseUrls.inventory),
    payments: connectPaymentsDb(databaseUrls.payments),
    shipping: connectShippingDb(databaseUrls.shipping),
  };
  const query = connectQueryDb(options.queryDatabaseUrl);
  try {
    const quiet = new Check('event path quiet: every outbox published, every consumer caught up');
    const state = await settle(options);
    for (const [service, backlog] of Object.entries(state.backlogs)) quiet.expect(backlog === 0, () => `${service}: ${backlog} event(s) not published`);
    for (const [name, lag] of Object.entries(state.lags)) quiet.expect(lag === 0, () => `consumer ${name}: ${lag} event(s) not applied`);

    const lost = new Check('no event lost: every outbox row is on its stream');
    const twice = new Check('no event twice on a stream');
    let streamed = 0;
    for (const service of SERVICES) {
      const ids = await eventIdsOn(nats, streamOf(service));
      streamed += ids.length;
      const seen = new Set<string>();
      for (const id of ids) {
        twice.expect(!seen.has(id), () => `${service}: event ${id} is on ${streamOf(service)} more than once`);
        seen.add(id);
      }
      const rows = await dbs[service].$queryRaw<{ id: string; type: string }[]>`SELECT id::text, type FROM outbox`;
      for (const row of rows) lost.expect(seen.has(row.id), () => `${service}: ${row.type} ${row.id} is not on ${streamOf(service)}`);
    }

    const deadLetters = new Check('no event dead-lettered');
    const { state: letters } = await (await jetstreamManager(nats)).streams.info(DEAD_LETTER_STREAM);
    deadLetters.expect(letters.messages === 0, () => `${letters.messages} event(s) on ${DEAD_LETTER_STREAM} (npm run events:status)`);

    const appliedOnce = new Check('query side: every streamed event applied exactly once');
    const applied = await query.inboxEntry.count({ where: { consumer: { startsWith: 'query-' }, deadLetter: null } });
    appliedOnce.expect(applied === streamed, () => `${applied} events applied, ${streamed} on the streams`);

    const folds = new Check("order streams: each order's fold equals what the orders service reports");
    const facts = new Check("order streams: what they learnt from the other services agrees with those services");
    const recordedTwice = new Check("order streams: no other service's event recorded twice");
    const [orders, reservations, payments, shipments] = await Promise.all([
      dbs.orders.order.findMany({ select: { id: true } }),
      dbs.inventory.reservation.findMany({ select: { orderId: true, status: true } }),
      dbs.payments.payment.findMany({ select: { orderId: true, status: true } }),
      dbs.shipping.shipment.findMany({ select: { orderId: true, status: true } }),
    ]);
    const statusOf = (rows: { orderId: string; status: string }[]) => new Map(rows.map((row) => [row.orderId, row.status]));
    const [reservationOf, paymentOf, shipmentOf] = [statusOf(reservations), statusOf(payments), statusOf(shipments)];
    for (const { id } of orders) {
      const [record, events] = await Promise.all([findOrder(dbs.orders, id), readOrderStream(dbs.orders, id)]);
      let folded: unknown;
      try {
        folded = foldOrder(events);
      } catch (error) {
        folded = String(error);
      }
      const reported = stateOfRecord(record!);
      folds.expect(sameJson(folded, reported), () => `${id}: fold ${JSON.stringify(folded)} ≠ reported ${JSON.stringify(reported)}`);
      // A tombstone (a release before any reservation) is a row of the other service, and the order records it.
      const told = { reservation: reported.reservation, payment: reported.payment, shipment: reported.shipment };
      const truth = { reservation: reservationOf.get(id) ?? null, payment: paymentOf.get(id) ?? null, shipment: shipmentOf.get(id) ?? null };
      facts.expect(sameJson(told, truth), () => `${id}: the order's stream says ${JSON.stringify(told)}, the services ${JSON.stringify(truth)}`);
    }
    const duplicates = await dbs.orders.$queryRaw<{ source_event_id: string; n: bigint }[]>`
      SELECT source_event_id::text, count(*) AS n FROM order_events WHERE source_event_id IS NOT NULL GROUP BY source_event_id HAVING count(*) > 1`;
    const recorded = await dbs.orders.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM order_events WHERE source_event_id IS NOT NULL`;
    for (let i = Number(recorded[0].n) - duplicates.length; i > 0; i--) recordedTwice.expect(true, () => '');
    for (const duplicate of duplicates) recordedTwice.expect(false, () => `event ${duplicate.source_event_id} recorded ${duplicate.n} times`);

    const views = await compareViews(dbs, query);
    return [quiet, lost, twice, deadLetters, appliedOnce, folds, facts, recordedTwice, ...views].map((check) => check.done());
  } finally {
    await Promise.all([...Object.values(dbs).map((db) => db.$disconnect()), query.$disconnect()]);
  }
}

/** The query database's views against the service databases, row by row. */
async function compareViews(
  dbs: {
    orders: ReturnType<typeof connectOrdersDb>;
    inventory: ReturnType<typeof connectInventoryDb>;
    payments: ReturnType<typeof connectPaymentsDb>;
    shipping: ReturnType<typeof connectShippingDb>;
  },
  query: ReturnType<typeof connectQueryDb>,
): Promise<Check[]> {
  const [orders, reservations, payments, shipments, products, customers, orderViews, productViews, customerViews] = await Promise.all([
    dbs.orders.order.findMany({ select: { id: true, status: true, customerId: true, totalCents: true } }),
    dbs.inventory.reservation.findMany({ select: { orderId: true, status: true } }),
    dbs.payments.payment.findMany({ select: { orderId: true, status: true } }),
    dbs.shipping.shipment.findMany({ select: { orderId: true, status: true } }),
    dbs.inventory.product.findMany(),
    dbs.payments.customer.findMany(),
    query.orderView.findMany(),
    query.productView.findMany(),
    query.customerView.findMany(),
  ]);
  const byOrder = <T extends { orderId: string }>(rows: T[]) => new Map(rows.map((row) => [row.orderId, row]));
  const [reservationOf, paymentOf, shipmentOf, viewOf] = [byOrder(reservations), byOrder(payments), byOrder(shipments), byOrder(orderViews)];
  const orderOf = new Map(orders.map((order) => [order.id, order]));

  const orderView = new Check('query side: every order view equals the service databases');
  const ids = new Set([...orderOf.keys(), ...reservationOf.keys(), ...paymentOf.keys(), ...shipmentOf.keys(), ...viewOf.keys()]);
  for (const id of ids) {
    const order = orderOf.get(id);
    const truth = {
      status: order?.status ?? null,
      customerId: order?.customerId ?? null,
      totalCents: order?.totalCents ?? null,
      reservation: reservationOf.get(id)?.status ?? null,
      payment: paymentOf.get(id)?.status ?? null,
      shipment: shipmentOf.get(id)?.status ?? null,
    };
    const row = viewOf.get(id);
    const view = row
      ? { status: row.status, customerId: row.customerId, totalCents: row.totalCents, reservation: row.reservationStatus, payment: row.paymentStatus, shipment: row.shipmentStatus }
      : null;
    orderView.expect(sameJson(view, truth), () => `${id}: view ${JSON.stringify(view)}, services ${JSON.stringify(truth)}`);
  }

  const productView = new Check('query side: the catalog view equals the inventory database');
  const productViewOf = new Map(productViews.map((row) => [row.sku, row]));
  for (const product of products) {
    const view = productViewOf.get(product.sku);
    productView.expect(
      view?.name === product.name && view.priceCents === product.priceCents && view.onHand === product.onHand,
      () => `${product.sku}: view ${view ? `${view.priceCents}¢, ${view.onHand} on hand` : 'missing'}, inventory ${product.priceCents}¢, ${product.onHand} on hand`,
    );
  }
  const customerView = new Check('query side: the credit view equals the payments database');
  const customerViewOf = new Map(customerViews.map((row) => [row.id, row]));
  for (const customer of customers) {
    const view = customerViewOf.get(customer.id);
    customerView.expect(
      view?.creditLimitCents === customer.creditLimitCents && view.creditUsedCents === customer.creditUsedCents,
      () => `${customer.id}: view ${view ? `${view.creditUsedCents}/${view.creditLimitCents}` : 'missing'}, payments ${customer.creditUsedCents}/${customer.creditLimitCents}`,
    );
  }
  return [orderView, productView, customerView];
}
