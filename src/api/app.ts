// The HTTP API: starts order sagas, answers their state, relays a manager's decision, a customer's
// cancellation, an operator's resolution and the payment provider's confirmation to them, and serves the
// catalog and customer credit.
//
// Who may do what (API keys from API_KEYS, src/api/auth.ts):
//   client    place orders; read and cancel its own orders (another client's order is a 404, as if unknown)
//   manager   read any order; approve, reject or cancel any order; read customer credit
//   operator  read any order; resolve a saga in NEEDS_ATTENTION; read customer credit
// GET /health and GET /metrics need no key; POST /payments/callback is authenticated by its HMAC signature instead.
//
// The API holds no connection to any service database: it talks to Temporal, the query database, NATS and the
// services' own read APIs (src/api/service-reads.ts).
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import express, { type Request, type RequestHandler } from 'express';
import { SERVICES, type Config } from '../config';
import { MAX_ORDER_TOTAL_CENTS } from '../domain';
import type { NatsConnection } from '@nats-io/nats-core';
import type { OrderRecord } from '../activities/orders/read-model';
import { isValidSignature, SIGNATURE_HEADER } from '../activities/payments/provider';
import { apiObservability } from '../observability/api';
import { silentLogger, type Logger } from '../observability/logging';
import { requestLog } from '../observability/request-log';
import type { QueryDb } from '../query/db';
import { getCustomer, getProduct, listCustomers, listOrders, listProducts, viewsLag } from '../query/read';
import { approveOrder, cancelOrder, rejectOrder, resolveAttention, TERMINAL_STATUSES, type OrderState, type OrderStatus } from '../workflows/definitions';
import type { Admission } from './admission';
import { allow, authenticate, callerOf, maySee, type Caller } from './auth';
import { badRequest, conflict, errorHandler, forbidden, GRPC_NOT_FOUND, grpcCode, HttpError, isTemporalUnavailable, notFound, outcomeUnknown, OutcomeUnknownError } from './errors';
import { orderIdForKey, requestFingerprint, type Execution, type OrderWorkflows } from './order-workflows';
import { docsAssets, serveDocsPage, serveOpenApi } from './openapi';
import { ServiceUnavailable, type ServiceReads } from './service-reads';
import {
  cancelSchema,
  customerIdSchema,
  idempotencyKeySchema,
  listOrdersSchema,
  managerDecisionSchema,
  orderIdSchema,
  parse,
  paymentCallbackSchema,
  placeOrderSchema,
  resolveAttentionSchema,
  skuSchema,
  untilSchema,
  waitSchema,
} from './validation';

export interface ApiDependencies {
  workflows: OrderWorkflows;
  /** The services' own read APIs: the API opens no service database. */
  services: ServiceReads;
  /** The query database (orders list, catalog, customer credit) and the NATS connection that says how far behind it is. */
  query: { db: QueryDb; nats?: NatsConnection };
  config: Pick<Config, 'auth' | 'payments' | 'temporal'>;
  /** Back-pressure on new orders (src/api/admission.ts); absent admits everything. */
  admission?: Admission;
  /** The process's logger (src/observability/logging.ts): one line per request, and unexpected errors; silent if absent. */
  logger?: Logger;
}

const JSON_LIMIT = '32kb';

const hasBody = (req: Request) => Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

/** Routes that read a JSON body insist on being sent one, so a form post or plain text is a clear 415. */
const jsonBody = (options: { optional?: boolean } = {}): RequestHandler[] => [
  (req, _res, next) => {
    if (!hasBody(req) && options.optional) return next();
    if (!req.is('application/json')) {
      return next(new HttpError(415, 'unsupported_media_type', 'send the body as application/json', [{ field: 'content-type', message: 'must be application/json' }]));
    }
    next();
  },
  express.json({ limit: JSON_LIMIT, strict: false }),
];

/** `promise`, or a rejection once `ms` have passed. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** An optional body: absent is `{}`; anything sent, JSON `null` included, must pass the schema. */
const optionalBody = (req: Request): unknown => (req.body === undefined ? {} : req.body);

const isClosed = (status: OrderRecord['status'] | OrderStatus) => (TERMINAL_STATUSES as readonly string[]).includes(status);

/** What a record shows callers: the fingerprint is an internal check, not part of the order. */
function publicRecord(record: OrderRecord) {
  const { requestFingerprint: _fingerprint, ...rest } = record;
  return rest;
}

export function createApp(deps: ApiDependencies): express.Express {
  const { workflows, services, query, config } = deps;
  const logger = (deps.logger ?? silentLogger).child({ component: 'http' });
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // A path that is not valid percent-encoding (e.g. /orders/%E0%A4) is a 400 before anything reads it: decoding a
  // route's parameters would throw (a 500), and so would matching it to a route after the answer (the metrics).
  app.use((req, _res, next) => {
    try {
      decodeURIComponent(req.path);
    } catch {
      return next(badRequest('the request path is not valid percent-encoding', [{ field: 'path', message: 'not valid percent-encoding' }]));
    }
    next();
  });
  // Prometheus metrics (src/observability): every request counted and timed by its route; GET /metrics needs no key.
  const observability = apiObservability(query.nats);
  app.use(observability.middleware);
  app.use(requestLog(logger));
  app.get('/metrics', observability.handler);

  const orderLinks = (orderId: string) => ({
    self: `/orders/${orderId}`,
    events: `/orders/${orderId}/events`,
    ...(config.temporal.uiUrl ? { temporalUi: `${config.temporal.uiUrl}/namespaces/${config.temporal.namespace}/workflows/${orderId}` } : {}),
  });

  const orderIdParam = (req: Request) => parse(orderIdSchema, req.params.orderId, 'orderId');
  // The request log names the order a route is about (a malformed id is left out: it names no order).
  app.param('orderId', (_req, res, next, value) => {
    if (orderIdSchema.safeParse(value).success) res.locals.orderId = value;
    next();
  });
  const unknownOrder = (orderId: string) => notFound(`order ${orderId} not found`);

  // --- unauthenticated: health checks and the payment provider's signed callback ----------------------------

  app.get('/health', async (_req, res) => {
    const check = (probe: Promise<unknown>) =>
      probe.then(
        () => 'ok' as const,
        () => 'unreachable' as const,
      );
    const outboxes: Record<string, unknown> = {};
    const [temporal, queryDb, nats, ...serviceStates] = await Promise.all([
      check(workflows.ping()),
      check(query.db.$queryRaw`SELECT 1`),
      query.nats ? check(query.nats.flush()) : ('not configured' as const),
      ...SERVICES.map((service) => check(services.health(service).then(({ outbox }) => (outboxes[service] = outbox ?? null)))),
    ]);
    const serviceHealth = Object.fromEntries(SERVICES.map((service, i) => [service, serviceStates[i]]));
    // NATS away leaves the views stale, and a service away only the reads that need it: reported, not unhealthy.
    const healthy = temporal === 'ok' && queryDb === 'ok';
    const allOk = healthy && nats !== 'unreachable' && serviceStates.every((state) => state === 'ok');
    // Only asked of a broker that answered, and not for long: a health check must answer fast whatever is down.
    const views = nats === 'ok' && queryDb === 'ok' ? await within(1_000, viewsLag(query.db, query.nats)).catch(() => null) : null;
    res.status(healthy ? 200 : 503).json({
      status: allOk ? 'ok' : 'degraded',
      temporal,
      databases: { query: queryDb },
      nats,
      services: serviceHealth,
      // The event path: each service's outbox (backlog, oldest unpublished event, replication slot and its lag)
      // as the service reports it, and how many streamed events the query views have not applied yet.
      events: { outboxes: Object.fromEntries(SERVICES.map((service) => [service, outboxes[service] ?? null])), views },
    });
  });

  // The payment provider's confirmation. Only a body signed with the shared secret is accepted.
  app.post('/payments/callback', express.raw({ type: () => true, limit: JSON_LIMIT }), async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!isValidSignature(config.payments.webhookSecret, raw, req.get(SIGNATURE_HEADER))) {
      throw new HttpError(401, 'invalid_signature', `missing or invalid ${SIGNATURE_HEADER} header`);
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'invalid_json', 'the request body is not valid JSON', [{ field: 'body', message: 'not valid JSON' }]);
    }
    const callback = parse(paymentCallbackSchema, body);
    res.locals.orderId = callback.orderId; // for the request log
    await mustBeRunning(callback.orderId, undefined);
    try {
      await workflows.confirmPayment(callback.orderId, { providerRef: callback.providerRef, outcome: callback.outcome, reason: callback.reason });
    } catch (error) {
      throw await explainFailedMessage(callback.orderId, undefined, error, 'send the same callback again: the saga takes only the first answer');
    }
    res.status(202).json({ accepted: true });
  });

  // The API's contract (OpenAPI 3.1, generated from the zod schemas: src/api/openapi.ts), and a page for people.
  app.get('/openapi.json', serveOpenApi);
  app.get('/docs', serveDocsPage);
  app.use('/docs/assets', docsAssets());

  // --- everything else needs an API key ---------------------------------------------------------------------

  app.use(authenticate(config.auth.apiKeys));

  /**
   * The order as the saga sees it while it runs (with any step that keeps failing); once it has closed, as the
   * orders database recorded it. If Temporal cannot answer, the orders database still can (its status then says
   * where the order stood). A client sees only its own orders: any other is "not found".
   */
  async function readOrder(orderId: string, caller: Caller) {
    let execution: Execution | undefined;
    let unavailable: unknown;
    try {
      execution = await workflows.inspect(orderId);
      if (execution.state === 'RUNNING') {
        const state = await workflows.status(orderId);
        if (!maySee(caller, execution.clientId ?? state.clientId)) throw unknownOrder(orderId);
        return { ...state, retryingActivities: execution.retryingActivities, source: 'workflow' as const };
      }
    } catch (error) {
      if (!isTemporalUnavailable(error)) throw error;
      unavailable = error;
    }
    const record = await services.order(orderId);
    if (!record) {
      // Temporal could not answer and the database has no row (yet): whether the order exists is unknown now.
      if (unavailable) throw unavailable;
      throw unknownOrder(orderId);
    }
    if (!maySee(caller, record.clientId ?? execution?.clientId)) throw unknownOrder(orderId);
    return { ...publicRecord(record), source: 'orders-db' as const };
  }

  /**
   * Messages go to running sagas only; for a closed or unknown order, says which (409 or 404). A client may only
   * address its own orders (`caller` undefined: the payment provider, checked by signature).
   */
  async function mustBeRunning(orderId: string, caller: Caller | undefined): Promise<void> {
    const execution = await workflows.inspect(orderId);
    if (execution.state === 'RUNNING') {
      if (caller && !maySee(caller, execution.clientId)) throw unknownOrder(orderId);
      return;
    }
    throw await closedOrUnknown(orderId, caller, execution);
  }

  async function closedOrUnknown(orderId: string, caller: Caller | undefined, execution?: Execution): Promise<HttpError> {
    const record = await services.order(orderId);
    if (!record || (caller && !maySee(caller, record.clientId ?? execution?.clientId))) return unknownOrder(orderId);
    return conflict(`order ${orderId} is ${record.status}`);
  }

  /**
   * A message whose check passed but which failed: the saga may have ended in between (409/404, never a 500),
   * or the message may or may not have arrived (504 outcome_unknown).
   */
  async function explainFailedMessage(orderId: string, caller: Caller | undefined, error: unknown, advice: string): Promise<unknown> {
    if (error instanceof OutcomeUnknownError) return outcomeUnknown(error, advice);
    if (error instanceof WorkflowNotFoundError || grpcCode(error) === GRPC_NOT_FOUND) return closedOrUnknown(orderId, caller);
    return error;
  }

  async function updateRunningOrder<Arg>(
    orderId: string,
    caller: Caller,
    update: Parameters<OrderWorkflows['update']>[1],
    arg: Arg,
    advice: string,
  ): Promise<OrderState> {
    await mustBeRunning(orderId, caller);
    try {
      return await workflows.update(orderId, update as never, arg);
    } catch (error) {
      throw await explainFailedMessage(orderId, caller, error, advice);
    }
  }

  /**
   * The record of a keyed order that has closed, which a replay is answered from; undefined for an order that is
   * new or still running (starting its saga again only joins it). The orders service says which. While it cannot
   * answer, orders are still placed when that is safe without it: Temporal knows the workflow (running, or closed
   * within the namespace's retention: it answers the replay), or the query side has never heard of the order (a
   * new one; should the views have lost a closed order, the saga started for it finds the order closed by another
   * saga and ends with its record, doing nothing again: src/workflows/order-saga.ts).
   * Otherwise, an order closed long ago whose record cannot be read now: the 503 of the orders service.
   */
  async function closedRecordFor(orderId: string): Promise<OrderRecord | undefined> {
    try {
      const record = await services.order(orderId);
      return record && isClosed(record.status) ? record : undefined;
    } catch (error) {
      if (!(error instanceof ServiceUnavailable)) throw error;
      if ((await workflows.executionState(orderId)) !== 'NOT_FOUND') return undefined;
      if ((await query.db.orderView.findUnique({ where: { orderId }, select: { orderId: true } })) === null) return undefined;
      throw error;
    }
  }

  app.post('/orders', allow('client'), ...jsonBody(), async (req, res) => {
    const caller = callerOf(res);
    const order = parse(placeOrderSchema, req.body);
    const wait = req.query.wait === undefined ? 0 : parse(waitSchema, req.query.wait, 'wait');
    const until = req.query.until === undefined ? 'end' : parse(untilSchema, req.query.until, 'until');
    const keyHeader = req.get('idempotency-key');
    const idempotencyKey = keyHeader === undefined ? undefined : parse(idempotencyKeySchema, keyHeader, 'Idempotency-Key');
    const orderId = idempotencyKey
      ? orderIdForKey({ clientId: caller.principal, customerId: order.customerId }, idempotencyKey)
      : `ord_${randomUUID().replaceAll('-', '')}`;
    res.locals.orderId = orderId; // for the request log, whatever the answer

    if (idempotencyKey) {
      // A replay of an order that has already ended is answered from its record, even long after Temporal has
      // forgotten the workflow: the key never starts a second saga. It must be the same request, as for a
      // running saga (orders recorded before fingerprints were stored are compared by their lines).
      const record = await closedRecordFor(orderId);
      if (record) {
        const recorded = record.requestFingerprint ?? requestFingerprint(record);
        if (recorded !== requestFingerprint(order) || (record.clientId !== null && record.clientId !== caller.principal)) {
          throw conflict('this Idempotency-Key was already used for a different order');
        }
        res.set('Idempotent-Replayed', 'true').status(200).json({ ...publicRecord(record), source: 'orders-db', links: orderLinks(orderId) });
        return;
      }
    }

    // Refuse what the saga would refuse anyway, while the caller can still fix the request (the query side's
    // catalog and customers; the saga prices from the inventory service itself).
    const [customer, products] = await Promise.all([
      getCustomer(query.db, order.customerId),
      Promise.all(order.lines.map((line) => getProduct(query.db, line.sku))),
    ]);
    const fields = [
      ...(customer ? [] : [{ field: 'customerId', message: `unknown customer ${order.customerId}` }]),
      ...order.lines.flatMap((line, i) => (products[i] ? [] : [{ field: `lines[${i}].sku`, message: `unknown SKU ${line.sku}` }])),
    ];
    if (fields.length === 0) {
      const total = order.lines.reduce((sum, line, i) => sum + line.quantity * products[i]!.priceCents, 0);
      if (total > MAX_ORDER_TOTAL_CENTS) {
        fields.push({ field: 'lines', message: `the order's total, ${total} cents at current prices, is above the maximum of ${MAX_ORDER_TOTAL_CENTS} cents` });
      }
    }
    if (fields.length > 0) throw badRequest(fields.map((f) => `${f.field}: ${f.message}`).join('; '), fields);

    // Past saturation a fast "not now" keeps the sagas already admitted finishing at full speed (admission.ts).
    // A retry of an order already placed (same Idempotency-Key) is answered, never refused: it adds no work.
    const verdict = (await deps.admission?.check()) ?? { admit: true };
    if (!verdict.admit && !(idempotencyKey && (await workflows.executionState(orderId)) !== 'NOT_FOUND')) {
      res.set('Retry-After', String(verdict.retryAfterSeconds));
      throw new HttpError(503, 'overloaded', `${verdict.reason}; the order was not placed: retry in ${verdict.retryAfterSeconds} s`);
    }

    let started: boolean;
    try {
      ({ started } = await workflows.start({ orderId, ...order, clientId: caller.principal }));
    } catch (error) {
      if (!(error instanceof OutcomeUnknownError)) throw error;
      throw outcomeUnknown(
        error,
        idempotencyKey
          ? 'Sending the same request again with the same Idempotency-Key is safe: it never places a second order.'
          : 'This request had no Idempotency-Key: sending it again may place a second order. Send an Idempotency-Key with every order.',
      );
    }
    if (!started) res.set('Idempotent-Replayed', 'true');
    if (until === 'decision') {
      // Answered at the decision: the order accepted (it now waits for its dispatch window), refused or cancelled
      // (compensating or ended), or waiting for a manager or an operator.
      const answer = await workflows.waitForDecision(orderId, wait);
      if (answer) {
        res.status(200).location(`/orders/${orderId}`).json({ ...answer.state, decision: answer.decision, source: 'workflow', links: orderLinks(orderId) });
        return;
      }
    }
    const outcome = until === 'end' ? await workflows.waitForOutcome(orderId, wait) : undefined;
    if (outcome) {
      res.status(200).json({ ...outcome, source: 'workflow', links: orderLinks(orderId) });
      return;
    }
    res
      .status(202)
      .location(`/orders/${orderId}`)
      .json({ orderId, status: 'PENDING', statusUrl: `/orders/${orderId}`, links: orderLinks(orderId) });
  });

  // Orders from the query database (CQRS): newest first, filtered, a page at a time, with how far the views are
  // behind the streams. A client sees its own orders only.
  app.get('/orders', async (req, res) => {
    const caller = callerOf(res);
    const filter = parse(listOrdersSchema, req.query, 'query');
    const [page, lag] = await Promise.all([
      listOrders(query.db, { ...filter, ...(caller.role === 'client' ? { clientId: caller.principal } : {}) }),
      viewsLag(query.db, query.nats),
    ]);
    res.json({ ...page, asOf: { ...lag, at: new Date().toISOString() } });
  });

  app.get('/orders/:orderId', async (req, res) => {
    const orderId = orderIdParam(req);
    res.json({ ...(await readOrder(orderId, callerOf(res))), links: orderLinks(orderId) });
  });

  // API composition: the order and what each service holds for it, asked of each service in parallel, each call
  // with its deadline. A part whose service did not answer is named in `unavailable`; the rest is answered.
  app.get('/orders/:orderId/details', async (req, res) => {
    const orderId = orderIdParam(req);
    const caller = callerOf(res);
    const order = await readOrder(orderId, caller); // who may see it, and its live state (Temporal, else the orders service)
    const parts = { reservation: services.reservation(orderId), payment: services.payment(orderId), shipment: services.shipment(orderId), history: services.orderHistory(orderId) };
    const settled = await Promise.allSettled(Object.values(parts));
    const unavailable: { part: string; service: string; reason: string }[] = [];
    const answer: Record<string, unknown> = {};
    Object.keys(parts).forEach((part, i) => {
      const outcome = settled[i];
      if (outcome.status === 'fulfilled') answer[part] = outcome.value ?? null;
      else if (outcome.reason instanceof ServiceUnavailable) unavailable.push({ part, service: outcome.reason.service, reason: outcome.reason.message });
      else throw outcome.reason;
    });
    const history = answer.history as { events?: unknown[]; state?: unknown } | null | undefined;
    res.json({
      orderId,
      order,
      reservation: answer.reservation,
      payment: answer.payment,
      shipment: answer.shipment,
      ...(history !== undefined ? { events: history?.events?.length ?? 0, eventSourcedState: history?.state ?? null } : {}),
      unavailable,
      links: orderLinks(orderId),
    });
  });

  // The order as its event list (event sourcing): every event of its stream, and the state their fold gives.
  app.get('/orders/:orderId/events', async (req, res) => {
    const orderId = orderIdParam(req);
    const caller = callerOf(res);
    const history = await services.orderHistory(orderId);
    if (!history) {
      // Unknown, or a saga that has not recorded its order yet (it prices first): readOrder tells which, for this caller.
      await readOrder(orderId, caller);
      res.json({ orderId, version: 0, events: [], state: null, links: orderLinks(orderId) });
      return;
    }
    if (!maySee(caller, history.state?.clientId)) throw unknownOrder(orderId);
    res.json({ orderId, version: history.events.length, events: history.events, state: history.state, links: orderLinks(orderId) });
  });

  app.post('/orders/:orderId/cancel', allow('client', 'manager'), ...jsonBody({ optional: true }), async (req, res) => {
    const orderId = orderIdParam(req);
    const { reason } = parse(cancelSchema, optionalBody(req));
    const state = await updateRunningOrder(orderId, callerOf(res), cancelOrder, { reason: reason ?? 'cancelled by request' }, 'Cancelling again is safe.');
    res.status(202).json({ ...state, links: orderLinks(orderId) });
  });

  /** A body may name the person acting, but only as the one the API key says: it is recorded from the key. */
  function actingAs(caller: Caller, field: 'manager' | 'operator', named: string | undefined): string {
    if (named !== undefined && named !== caller.principal) {
      throw forbidden(`${field} must be you (${caller.principal}) or be left out`, [{ field, message: `must be ${caller.principal}` }]);
    }
    return caller.principal;
  }

  for (const [action, update] of [['approve', approveOrder], ['reject', rejectOrder]] as const) {
    app.post(`/orders/:orderId/${action}`, allow('manager'), ...jsonBody({ optional: true }), async (req, res) => {
      const caller = callerOf(res);
      const orderId = orderIdParam(req);
      const body = parse(managerDecisionSchema, optionalBody(req));
      const decision = { manager: actingAs(caller, 'manager', body.manager), ...(body.note === undefined ? {} : { note: body.note }) };
      const state = await updateRunningOrder(orderId, caller, update, decision, 'Sending the same decision again is safe: a second decision is refused (409) once one is taken.');
      res.json({ ...state, links: orderLinks(orderId) });
    });
  }

  // An operator's decision for a saga that stopped in NEEDS_ATTENTION (see `attention.allowedActions`).
  app.post('/orders/:orderId/resolve', allow('operator'), ...jsonBody(), async (req, res) => {
    const caller = callerOf(res);
    const orderId = orderIdParam(req);
    const body = parse(resolveAttentionSchema, req.body);
    const resolution = { action: body.action, operator: actingAs(caller, 'operator', body.operator), ...(body.note === undefined ? {} : { note: body.note }) };
    const state = await updateRunningOrder(orderId, caller, resolveAttention, resolution, 'Check the order before resolving again.');
    res.json({ ...state, links: orderLinks(orderId) });
  });

  app.get('/catalog', async (_req, res) => {
    res.json({ products: await listProducts(query.db) });
  });
  app.get('/catalog/:sku', async (req, res) => {
    const sku = parse(skuSchema, req.params.sku, 'sku');
    const product = await getProduct(query.db, sku);
    if (!product) throw notFound(`SKU ${sku} not found`);
    res.json(product);
  });

  // Customer credit is for staff: a client application does not see every customer's credit.
  app.get('/customers', allow('manager', 'operator'), async (_req, res) => {
    res.json({ customers: await listCustomers(query.db) });
  });
  app.get('/customers/:customerId', allow('manager', 'operator'), async (req, res) => {
    const customerId = parse(customerIdSchema, req.params.customerId, 'customerId');
    const customer = await getCustomer(query.db, customerId);
    if (!customer) throw notFound(`customer ${customerId} not found`);
    res.json(customer);
  });

  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(logger));
  return app;
}

