// What the API answers, as zod schemas: the response half of its contract (the request half is
// src/api/validation.ts). Nothing parses responses with these at run time; src/api/openapi.ts converts them to
// the OpenAPI document's schemas, and test/api/openapi.test.ts checks live answers against that document, so a
// field added to an answer without being added here fails that test.
import { z } from 'zod';
import { SERVICES } from '../config';
import { ORDER_STATUSES as RECORDED_STATUSES } from '../query/read';
import { ORDER_STATUSES } from '../workflows/definitions';

/** The answers' named schemas: each becomes `#/components/schemas/<id>` of the OpenAPI document. */
export const responseComponents = z.registry<{ id: string }>();
function named<T extends z.ZodType>(id: string, schema: T): T {
  responseComponents.add(schema, { id });
  return schema;
}

const timestamp = z.iso.datetime({ offset: true });
const count = z.number().int().min(0);
const cents = z.number().int();
const nullable = <T extends z.ZodType>(schema: T) => schema.nullable();

const orderStatus = z.enum(ORDER_STATUSES);
/** An order's status as the orders database (and the query side) records it: no intermediate saga steps. */
const recordedStatus = z.enum(RECORDED_STATUSES);
const reservationStatus = z.enum(['RESERVED', 'RELEASED', 'CONSUMED']);
const paymentStatus = z.enum(['AUTHORIZED', 'CAPTURED', 'VOIDED', 'REFUNDED']);
const shipmentStatus = z.enum(['SCHEDULED', 'CANCELLED', 'DISPATCHED']);
const approvalStatus = z.enum(['REQUESTED', 'APPROVED', 'REJECTED']);

const line = z.object({ sku: z.string(), quantity: z.number().int() });
const pricedLine = line.extend({ unitPriceCents: cents });

export const links = named(
  'Links',
  z.object({
    self: z.string(),
    events: z.string(),
    temporalUi: z.string().optional().describe("the saga in the Temporal Web UI, when the API knows the UI's address"),
  }),
);

export const attention = named(
  'Attention',
  z
    .object({
      phase: z.enum(['FORWARD', 'COMPENSATION']),
      step: z.string().describe('the activity that failed, e.g. releaseStock'),
      error: z.string(),
      errorType: nullable(z.string()),
      since: timestamp,
      allowedActions: z.array(z.enum(['retry', 'resolved-manually', 'abort'])),
    })
    .describe('set while the saga waits for an operator (status NEEDS_ATTENTION)'),
);

const retryingActivity = z.object({
  activityType: z.string(),
  attempt: z.number().int().min(1),
  lastFailure: nullable(z.string()),
  state: z.string().describe('SCHEDULED, STARTED or CANCEL_REQUESTED'),
  nextAttemptAt: nullable(timestamp),
});

const sagaFields = {
  orderId: z.string(),
  customerId: z.string(),
  clientId: nullable(z.string()),
  status: orderStatus,
  lines: z.array(line.extend({ unitPriceCents: cents.optional() })),
  totalCents: nullable(cents),
  approvalRequired: z.boolean(),
  completedSteps: z.array(z.string()),
  compensations: z.array(z.string()),
  pendingCompensations: z.array(z.string()),
  failureReason: nullable(z.string()),
  attention: nullable(attention),
  operatorActions: z.array(z.string()),
  cancellable: z.boolean(),
};

/** An order read from the running saga (or the outcome it ended with), and where it was read. */
const liveOrderFields = {
  ...sagaFields,
  retryingActivities: z.array(retryingActivity).optional().describe('each activity that has failed more than once and is being retried'),
  decision: z
    .enum(['ACCEPTED', 'REFUSED', 'CANCELLED', 'AWAITING_APPROVAL', 'NEEDS_ATTENTION'])
    .optional()
    .describe('POST /orders?until=decision: where the order stands'),
  source: z.literal('workflow'),
};

/** An order read from the orders database (a closed saga, or Temporal unreachable). */
const recordedOrderFields = {
  orderId: z.string(),
  customerId: z.string(),
  clientId: nullable(z.string()),
  status: recordedStatus,
  totalCents: cents,
  failureReason: nullable(z.string()),
  completedSteps: z.array(z.string()),
  compensations: z.array(z.string()),
  attention: nullable(attention),
  lines: z.array(pricedLine),
  createdAt: timestamp,
  closedAt: nullable(timestamp),
  version: count,
  approval: nullable(approvalStatus),
  reservation: nullable(reservationStatus),
  payment: nullable(paymentStatus),
  shipment: nullable(shipmentStatus),
  source: z.literal('orders-db'),
};

/** An order as GET /orders/:id/details shows it (without links). */
export const orderView = named('OrderView', z.discriminatedUnion('source', [z.object(liveOrderFields), z.object(recordedOrderFields)]));

/** GET /orders/:id, and POST /orders when it answers the outcome or replays a closed order. */
export const order = named(
  'Order',
  z
    .discriminatedUnion('source', [z.object({ ...liveOrderFields, links }), z.object({ ...recordedOrderFields, links })])
    .describe('source "workflow": the running saga (or the outcome it ended with); source "orders-db": as the orders database recorded it'),
);

/** The answer to cancel, approve, reject and resolve: the saga's state once it took the message. */
export const orderAfterUpdate = named('OrderAfterUpdate', z.object({ ...sagaFields, links }));

/** POST /orders 202: the saga is started (or was already, for a replayed Idempotency-Key). */
export const orderAccepted = named('OrderAccepted', z.object({ orderId: z.string(), status: z.literal('PENDING'), statusUrl: z.string(), links }));

/** An order as the query side lists it. */
const orderSummary = named(
  'OrderSummary',
  z.object({
    orderId: z.string(),
    customerId: z.string(),
    status: recordedStatus,
    totalCents: cents,
    lines: z.array(pricedLine),
    failureReason: nullable(z.string()),
    reservation: nullable(reservationStatus),
    payment: nullable(z.object({ status: paymentStatus, amountCents: nullable(cents) })),
    shipment: nullable(z.object({ status: shipmentStatus, trackingCode: nullable(z.string()) })),
    createdAt: timestamp,
    closedAt: nullable(timestamp),
    updatedAt: timestamp,
    lastEvent: z.object({ id: z.string(), type: z.string() }),
  }),
);

const viewsLagFields = {
  pendingEvents: nullable(count).describe('events on the streams the query views have not applied yet (null when NATS cannot be asked)'),
  lastAppliedAt: nullable(timestamp),
};

export const ordersPage = named(
  'OrdersPage',
  z.object({
    orders: z.array(orderSummary),
    nextCursor: nullable(z.string()).describe('pass it back as `cursor` for the next page; null on the last page'),
    asOf: z.object({ ...viewsLagFields, at: timestamp }),
  }),
);

/** The order's state as the fold of its events gives it. */
const eventSourcedState = named(
  'EventSourcedState',
  z.object({
    orderId: z.string(),
    version: count,
    customerId: z.string(),
    clientId: nullable(z.string()),
    status: recordedStatus,
    totalCents: cents,
    lines: z.array(pricedLine),
    failureReason: nullable(z.string()),
    completedSteps: z.array(z.string()),
    compensations: z.array(z.string()),
    attention: nullable(attention),
    approval: nullable(approvalStatus),
    reservation: nullable(reservationStatus),
    payment: nullable(paymentStatus),
    shipment: nullable(shipmentStatus),
  }),
);

const orderEvent = z.object({
  id: z.string(),
  orderId: z.string(),
  sequence: z.number().int().min(1),
  type: z.string(),
  payload: z.record(z.string(), z.unknown()),
  source: z.enum(SERVICES),
  sourceEventId: z.string().optional().describe("for an event learnt from another service: that event's id"),
  occurredAt: timestamp,
});

export const orderEvents = named(
  'OrderEvents',
  z.object({ orderId: z.string(), version: count, events: z.array(orderEvent), state: nullable(eventSourcedState), links }),
);

const reservation = z.object({ orderId: z.string(), status: reservationStatus, lines: z.array(line), createdAt: timestamp, updatedAt: timestamp });
const payment = z.object({
  orderId: z.string(),
  customerId: z.string(),
  amountCents: cents,
  status: paymentStatus,
  providerRef: z.string(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
const shipment = z.object({
  orderId: z.string(),
  status: shipmentStatus,
  lines: z.array(line),
  trackingCode: nullable(z.string()),
  createdAt: timestamp,
  updatedAt: timestamp,
  dispatchedAt: nullable(timestamp),
});

export const orderDetails = named(
  'OrderDetails',
  z.object({
    orderId: z.string(),
    order: orderView,
    reservation: nullable(reservation).optional().describe('null: there is none; left out: the inventory service did not answer (see `unavailable`)'),
    payment: nullable(payment).optional().describe('null: there is none; left out: the payments service did not answer'),
    shipment: nullable(shipment).optional().describe('null: there is none; left out: the shipping service did not answer'),
    events: count.optional().describe("how many events the order's stream holds; left out when the orders service did not answer"),
    eventSourcedState: nullable(eventSourcedState).optional(),
    unavailable: z.array(z.object({ part: z.string(), service: z.enum(SERVICES), reason: z.string() })),
    links,
  }),
);

export const product = named('Product', z.object({ sku: z.string(), name: z.string(), priceCents: cents, onHand: z.number().int() }));
export const catalog = named('Catalog', z.object({ products: z.array(product) }));

export const customer = named(
  'Customer',
  z.object({ id: z.string(), name: z.string(), creditLimitCents: cents, creditUsedCents: cents, creditAvailableCents: cents }),
);
export const customers = named('Customers', z.object({ customers: z.array(customer) }));

const reachable = z.enum(['ok', 'unreachable']);
const outbox = z.object({
  backlog: count,
  oldestUnpublishedAgeMs: nullable(z.number().min(0)),
  published: count,
  slot: nullable(z.object({ name: z.string(), active: z.boolean(), walStatus: nullable(z.string()), lagBytes: nullable(z.number()) })),
});
const perService = <T extends z.ZodType>(schema: T) =>
  z.object(Object.fromEntries(SERVICES.map((service) => [service, schema])) as Record<(typeof SERVICES)[number], T>);

export const health = named(
  'Health',
  z.object({
    status: z.enum(['ok', 'degraded']),
    temporal: reachable,
    databases: z.object({ query: reachable }),
    nats: z.enum(['ok', 'unreachable', 'not configured']),
    services: perService(reachable),
    events: z.object({ outboxes: perService(nullable(outbox)), views: nullable(z.object(viewsLagFields)) }),
  }),
);

export const callbackAccepted = named('CallbackAccepted', z.object({ accepted: z.literal(true) }));

/** Every error answer: `{ error: { code, message, fields? } }` (src/api/errors.ts). */
export const errorBody = named(
  'Error',
  z.object({
    error: z.object({
      code: z.string().describe('e.g. validation_failed, unauthorized, not_found, conflict, temporal_unavailable, outcome_unknown'),
      message: z.string(),
      fields: z.array(z.object({ field: z.string(), message: z.string() })).optional().describe('each offending field, e.g. lines[1].quantity'),
      orderId: z.string().optional().describe('outcome_unknown: the order the request was about'),
      statusUrl: z.string().optional().describe('outcome_unknown: where to read the order before trying again'),
    }),
  }),
);
