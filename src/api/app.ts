// The HTTP API: starts order sagas, answers their state, relays a manager's decision, a customer's
// cancellation and the payment provider's confirmation to them, and serves the catalog and customer credit.
import { randomUUID } from 'node:crypto';
import express, { type Request, type RequestHandler } from 'express';
import type { Config } from '../config';
import { getProduct, listProducts } from '../activities/inventory/catalog';
import type { InventoryDb } from '../activities/inventory/db';
import type { OrdersDb } from '../activities/orders/db';
import { findOrder } from '../activities/orders/read-model';
import { getCustomer, listCustomers } from '../activities/payments/customers';
import type { PaymentsDb } from '../activities/payments/db';
import { isValidSignature, SIGNATURE_HEADER } from '../activities/payments/provider';
import type { ShippingDb } from '../activities/shipping/db';
import { approveOrder, cancelOrder, rejectOrder, type OrderState } from '../workflows/definitions';
import { badRequest, conflict, errorHandler, HttpError, isTemporalUnavailable, notFound } from './errors';
import { orderIdForKey, type OrderWorkflows } from './order-workflows';
import {
  cancelSchema,
  idempotencyKeySchema,
  managerDecisionSchema,
  orderIdSchema,
  parse,
  paymentCallbackSchema,
  placeOrderSchema,
  waitSchema,
} from './validation';

export interface ApiDependencies {
  workflows: OrderWorkflows;
  databases: { orders: OrdersDb; inventory: InventoryDb; payments: PaymentsDb; shipping: ShippingDb };
  config: Pick<Config, 'managerToken' | 'payments' | 'temporal'>;
  log?: (line: string) => void;
}

const JSON_LIMIT = '32kb';

/** Routes that read a JSON body insist on being sent one, so a form post or plain text is a clear 415. */
const jsonBody = (options: { optional?: boolean } = {}): RequestHandler[] => [
  (req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody && options.optional) return next();
    if (!req.is('application/json')) {
      return next(new HttpError(415, 'unsupported_media_type', 'send the body as application/json', [{ field: 'content-type', message: 'must be application/json' }]));
    }
    next();
  },
  express.json({ limit: JSON_LIMIT, strict: false }),
];

export function createApp(deps: ApiDependencies): express.Express {
  const { workflows, databases, config } = deps;
  const log = deps.log ?? ((line: string) => console.error(line));
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  const orderLinks = (orderId: string) => ({
    self: `/orders/${orderId}`,
    ...(config.temporal.uiUrl ? { temporalUi: `${config.temporal.uiUrl}/namespaces/${config.temporal.namespace}/workflows/${orderId}` } : {}),
  });

  const orderIdParam = (req: Request) => parse(orderIdSchema, req.params.orderId, 'orderId');

  /**
   * The order as the saga sees it while it runs; once it has closed, as the orders database recorded it.
   * If Temporal cannot answer, the orders database still can (its status then says where the order stood).
   */
  async function readOrder(orderId: string) {
    try {
      const execution = await workflows.executionState(orderId);
      if (execution === 'RUNNING') return { ...(await workflows.status(orderId)), source: 'workflow' as const };
    } catch (error) {
      if (!isTemporalUnavailable(error)) throw error;
    }
    const record = await findOrder(databases.orders, orderId);
    if (!record) throw notFound(`order ${orderId} not found`);
    return { ...record, source: 'orders-db' as const };
  }

  app.post('/orders', ...jsonBody(), async (req, res) => {
    const order = parse(placeOrderSchema, req.body);
    const wait = req.query.wait === undefined ? 0 : parse(waitSchema, req.query.wait, 'wait');
    const keyHeader = req.get('idempotency-key');
    const idempotencyKey = keyHeader === undefined ? undefined : parse(idempotencyKeySchema, keyHeader, 'Idempotency-Key');
    const orderId = idempotencyKey ? orderIdForKey(idempotencyKey) : `ord_${randomUUID().replaceAll('-', '')}`;

    if (idempotencyKey) {
      // A replay of an order that has already ended is answered from its record, even long after Temporal
      // has forgotten the workflow: the key never starts a second saga.
      const record = await findOrder(databases.orders, orderId);
      if (record && record.status !== 'PENDING') {
        res.set('Idempotent-Replayed', 'true').status(200).json({ ...record, source: 'orders-db', links: orderLinks(orderId) });
        return;
      }
    }

    // Refuse what the saga would refuse anyway, while the caller can still fix the request.
    const [customer, products] = await Promise.all([
      getCustomer(databases.payments, order.customerId),
      Promise.all(order.lines.map((line) => getProduct(databases.inventory, line.sku))),
    ]);
    const fields = [
      ...(customer ? [] : [{ field: 'customerId', message: `unknown customer ${order.customerId}` }]),
      ...order.lines.flatMap((line, i) => (products[i] ? [] : [{ field: `lines[${i}].sku`, message: `unknown SKU ${line.sku}` }])),
    ];
    if (fields.length > 0) throw badRequest(fields.map((f) => `${f.field}: ${f.message}`).join('; '), fields);

    const { started } = await workflows.start({ orderId, ...order });
    if (!started) res.set('Idempotent-Replayed', 'true');
    const outcome = await workflows.waitForOutcome(orderId, wait);
    if (outcome) {
      res.status(200).json({ ...outcome, source: 'workflow', links: orderLinks(orderId) });
      return;
    }
    res
      .status(202)
      .location(`/orders/${orderId}`)
      .json({ orderId, status: 'PENDING', statusUrl: `/orders/${orderId}`, links: orderLinks(orderId) });
  });

  app.get('/orders/:orderId', async (req, res) => {
    const orderId = orderIdParam(req);
    res.json({ ...(await readOrder(orderId)), links: orderLinks(orderId) });
  });

  /** Messages go to running sagas only; for a closed or unknown order, says which (409 or 404). */
  async function mustBeRunning(orderId: string): Promise<void> {
    if ((await workflows.executionState(orderId)) === 'RUNNING') return;
    const record = await findOrder(databases.orders, orderId);
    if (!record) throw notFound(`order ${orderId} not found`);
    throw conflict(`order ${orderId} is ${record.status}`);
  }

  async function updateRunningOrder<Arg>(
    orderId: string,
    update: Parameters<OrderWorkflows['update']>[1],
    arg: Arg,
  ): Promise<OrderState> {
    await mustBeRunning(orderId);
    return workflows.update(orderId, update as never, arg);
  }

  app.post('/orders/:orderId/cancel', ...jsonBody({ optional: true }), async (req, res) => {
    const orderId = orderIdParam(req);
    const { reason } = parse(cancelSchema, req.body ?? {});
    const state = await updateRunningOrder(orderId, cancelOrder, { reason: reason ?? 'cancelled by request' });
    res.status(202).json({ ...state, links: orderLinks(orderId) });
  });

  const requireManager: RequestHandler = (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    if (token !== config.managerToken) return next(new HttpError(401, 'unauthorized', 'a manager token is required (Authorization: Bearer <token>)'));
    next();
  };

  for (const [action, update] of [['approve', approveOrder], ['reject', rejectOrder]] as const) {
    app.post(`/orders/:orderId/${action}`, requireManager, ...jsonBody(), async (req, res) => {
      const orderId = orderIdParam(req);
      const decision = parse(managerDecisionSchema, req.body);
      res.json({ ...(await updateRunningOrder(orderId, update, decision)), links: orderLinks(orderId) });
    });
  }

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
    await mustBeRunning(callback.orderId);
    await workflows.confirmPayment(callback.orderId, { providerRef: callback.providerRef, outcome: callback.outcome, reason: callback.reason });
    res.status(202).json({ accepted: true });
  });

  app.get('/catalog', async (_req, res) => {
    res.json({ products: await listProducts(databases.inventory) });
  });
  app.get('/catalog/:sku', async (req, res) => {
    const sku = parse(orderIdSchema, req.params.sku, 'sku');
    const product = await getProduct(databases.inventory, sku);
    if (!product) throw notFound(`SKU ${sku} not found`);
    res.json(product);
  });
  app.get('/customers', async (_req, res) => {
    res.json({ customers: await listCustomers(databases.payments) });
  });
  app.get('/customers/:customerId', async (req, res) => {
    const customerId = parse(orderIdSchema, req.params.customerId, 'customerId');
    const customer = await getCustomer(databases.payments, customerId);
    if (!customer) throw notFound(`customer ${customerId} not found`);
    res.json(customer);
  });

  app.get('/health', async (_req, res) => {
    const check = (probe: Promise<unknown>) =>
      probe.then(
        () => 'ok' as const,
        () => 'unreachable' as const,
      );
    const [temporal, ...dbs] = await Promise.all([
      check(workflows.ping()),
      ...(['orders', 'inventory', 'payments', 'shipping'] as const).map((name) => check(databases[name].$queryRaw`SELECT 1`)),
    ]);
    const databasesStatus = { orders: dbs[0], inventory: dbs[1], payments: dbs[2], shipping: dbs[3] };
    const healthy = temporal === 'ok' && dbs.every((status) => status === 'ok');
    res.status(healthy ? 200 : 503).json({ status: healthy ? 'ok' : 'degraded', temporal, databases: databasesStatus });
  });

  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
