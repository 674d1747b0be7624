// The API's contract as an OpenAPI 3.1 document, served at GET /openapi.json and rendered for people at GET /docs.
//
// Nothing here is a second copy of a schema: request bodies, path, query and header parameters are converted
// from the zod schemas the API validates with (src/api/validation.ts), answers from the zod schemas of
// src/api/responses.ts, by zod's own JSON Schema conversion (draft 2020-12, the dialect of OpenAPI 3.1). What
// this file adds is the table of routes: who may call each, what it reads, and every status it can answer.
// test/api/openapi.test.ts checks that the table matches the routes app.ts registers, and the live answers.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import type { Role } from '../config';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from './errors';
import * as answers from './responses';
import {
  cancelSchema,
  customerIdSchema,
  idempotencyKeySchema,
  listOrdersSchema,
  managerDecisionSchema,
  orderIdSchema,
  paymentCallbackSchema,
  placeOrderSchema,
  resolveAttentionSchema,
  skuSchema,
  untilSchema,
  waitSchema,
} from './validation';

type Json = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: string;
  info: Json;
  tags: Json[];
  security: Json[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json>; securitySchemes: Record<string, Json> };
}

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description?: string;
  schema: Json;
}

export interface Operation {
  operationId: string;
  /** The roles whose keys may call it (an extension: absent for any key, or no key at all). */
  'x-roles'?: Role[];
  summary: string;
  description?: string;
  tags: string[];
  security?: Json[];
  parameters?: Parameter[];
  requestBody?: { required: boolean; description?: string; content: Record<string, { schema: Json; example?: unknown }> };
  responses: Record<string, Json>;
}

// --- zod → JSON Schema --------------------------------------------------------------------------------------

/**
 * Descriptions the zod schemas do not carry, and what zod checks in code that JSON Schema cannot say, said in words
 * (and, for the one rule a tool can check, in an `x-unique-by` extension that test/api/openapi.test.ts teaches its
 * validator and its generator).
 */
const IN_WORDS = new Map<z.ZodType, Json>([
  [placeOrderSchema.shape.lines, { description: 'no two lines may name the same sku: put the whole quantity on one line', 'x-unique-by': 'sku' }],
  [listOrdersSchema.shape.cursor, { description: 'the `nextCursor` of a previous page, as it was given' }],
  [listOrdersSchema.shape.status, { description: 'only orders in this status' }],
  [listOrdersSchema.shape.customerId, { description: "only this customer's orders" }],
  [listOrdersSchema.shape.from, { description: 'orders created at or after this time' }],
  [listOrdersSchema.shape.to, { description: 'orders created before this time' }],
  [listOrdersSchema.shape.limit, { description: 'orders per page' }],
  [waitSchema, { description: 'seconds to wait for the answer `until` asks for before answering 202 (default 0)' }],
  [untilSchema, { description: "what `wait` waits for: the saga's end (default), or its decision (accepted, refused, cancelled, or waiting for a person)" }],
]);

/** A string check that trims its input (zod's `.trim()`): the JSON Schema then needs a non-blank value. */
const trims = (schema: z.core.$ZodType) =>
  (schema._zod.def.checks ?? []).some((check) => {
    const def = check._zod.def as { check: string; tx?: (value: unknown) => unknown };
    return def.check === 'overwrite' && def.tx?.(' a ') === 'a';
  });

function override(io: 'input' | 'output') {
  return ({ zodSchema, jsonSchema }: { zodSchema: z.core.$ZodType; jsonSchema: Json }) => {
    // zod bounds every integer by the safe range; said on every integer, it only hides the real bounds.
    if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
    if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
    // The API writes its timestamps with toISOString(): `format` says enough. (Requests keep zod's pattern,
    // which is stricter than RFC 3339's date-time: no lower-case t or z, no leap second.)
    if (io === 'output' && jsonSchema.format === 'date-time') delete jsonSchema.pattern;
    // zod puts a second regex in `allOf`: the first is shown as the string's own pattern.
    const patterns = jsonSchema.allOf as Json[] | undefined;
    if (jsonSchema.pattern === undefined && patterns?.length && patterns.every((part) => Object.keys(part).join() === 'pattern')) {
      jsonSchema.pattern = patterns[0].pattern;
      if (patterns.length > 1) jsonSchema.allOf = patterns.slice(1);
      else delete jsonSchema.allOf;
    }
    if (jsonSchema.type === 'string' && trims(zodSchema)) {
      jsonSchema.description = 'leading and trailing white space is trimmed';
      // Not empty once trimmed: something besides white space (JavaScript's \s is what trim() removes).
      if (typeof jsonSchema.minLength === 'number' && jsonSchema.minLength > 0) {
        const others = (jsonSchema.allOf as Json[] | undefined) ?? [];
        if (jsonSchema.pattern === undefined) jsonSchema.pattern = '\\S';
        else if (jsonSchema.pattern !== '\\S' && !others.some((part) => part.pattern === '\\S')) jsonSchema.allOf = [...others, { pattern: '\\S' }];
      }
    }
    Object.assign(jsonSchema, IN_WORDS.get(zodSchema as z.ZodType));
  };
}

const conversion = (io: 'input' | 'output') =>
  ({ io, target: 'draft-2020-12', unrepresentable: 'any', override: override(io), uri: (id: string) => `#/components/schemas/${id}` }) as const;

/** A JSON Schema of its own (a parameter's), without the `$schema` line zod adds. */
function jsonSchemaOf(schema: z.ZodType): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, conversion('input')) as Json;
  return rest;
}

/** The named schemas of a registry, as `#/components/schemas/<id>` entries. */
function components(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output'): Record<string, Json> {
  const { schemas } = z.toJSONSchema(registry, conversion(io)) as { schemas: Record<string, Json> };
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...schema }]) => [id, schema]));
}

const requestComponents = z.registry<{ id: string }>();
requestComponents.add(placeOrderSchema, { id: 'PlaceOrderRequest' });
requestComponents.add(cancelSchema, { id: 'CancelRequest' });
requestComponents.add(managerDecisionSchema, { id: 'ManagerDecision' });
requestComponents.add(resolveAttentionSchema, { id: 'ResolveAttentionRequest' });
requestComponents.add(paymentCallbackSchema, { id: 'PaymentCallback' });

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
/** The component id a response schema of src/api/responses.ts is registered under. */
const answer = (schema: z.ZodType) => ref(answers.responseComponents.get(schema)!.id);

// --- the routes ----------------------------------------------------------------------------------------------

/** Error answers, by status: the `error.code`s each can carry, and what it means. */
const ERRORS = {
  400: {
    name: 'BadRequest',
    codes: ['validation_failed', 'invalid_json', 'invalid_body', 'request_aborted'],
    description: 'Bad input: `fields` names each offending field (e.g. `lines[1].quantity`). Nothing was started or changed.',
  },
  401: {
    name: 'Unauthorized',
    codes: ['unauthorized'],
    description: 'No API key, an unknown one, a malformed Authorization header, or Authorization and X-API-Key naming different keys.',
  },
  403: { name: 'Forbidden', codes: ['forbidden'], description: "The key's role may not do this, or the body names someone other than the caller." },
  404: { name: 'NotFound', codes: ['not_found'], description: "Unknown (an order of another client is answered the same as an unknown one)." },
  409: {
    name: 'Conflict',
    codes: ['conflict'],
    description: 'Refused in the current state: the order is closed or not waiting for this, a decision was already taken, or an Idempotency-Key was used for a different order.',
  },
  413: { name: 'PayloadTooLarge', codes: ['payload_too_large'], description: 'The body is over 32 kB.' },
  415: {
    name: 'UnsupportedMediaType',
    codes: ['unsupported_media_type', 'unsupported_encoding', 'unsupported_charset'],
    description: 'The body is not JSON, or its Content-Encoding or charset is not supported.',
  },
  503: {
    name: 'Unavailable',
    codes: ['temporal_unavailable', 'database_unavailable', 'service_unavailable'],
    description: 'Temporal, the query database or a service could not be reached, and the request certainly did not reach it: nothing was changed, retry after Retry-After seconds.',
  },
  504: {
    name: 'OutcomeUnknown',
    codes: ['outcome_unknown'],
    description:
      'The request reached Temporal but its answer did not come back in time: it may or may not have taken effect. `error.orderId` and `error.statusUrl` say which order to read before trying again.',
    carries: ['orderId', 'statusUrl'],
  },
} as const;
type ErrorStatus = keyof typeof ERRORS;

/** The payment provider's signature header (SIGNATURE_HEADER of src/activities/payments/provider.ts). */
const SIGNATURE = 'X-Signature';
const SIGNATURE_ERROR = { name: 'InvalidSignature', codes: ['invalid_signature'], description: `Missing or invalid ${SIGNATURE} signature.` };
/** POST /orders' 503: as every 503, or refused by back-pressure (src/api/admission.ts). */
const OVERLOADED = {
  name: 'UnavailableOrOverloaded',
  codes: [...ERRORS[503].codes, 'overloaded'],
  description: `${ERRORS[503].description} \`overloaded\` (with Retry-After): the workers are behind; the order was not placed, retry after that many seconds.`,
};

interface Answer {
  description: string;
  schema: Json;
  headers?: Record<string, Json>;
  contentType?: string;
}

interface Route {
  method: 'get' | 'post';
  /** As app.ts registers it, e.g. `/orders/:orderId`. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  /** Who may call it: these roles, any API key, anyone, or the payment provider (by its signature). */
  access: readonly Role[] | 'any key' | 'public' | 'signature';
  /** Path parameters, by name. */
  params?: Record<string, { schema: z.ZodType; description: string }>;
  /** Query parameters: each property is one. */
  query?: z.ZodObject;
  headers?: Parameter[];
  body?: { component: string; required: boolean; description?: string; example?: unknown };
  answers: Record<number, Answer>;
  /** Failures besides the ones its access, parameters and body bring (401, 403, 400, 413, 415). */
  fails?: ErrorStatus[];
  /** A failure this route answers its own way: the name of that response in `#/components/responses`. */
  failsAs?: Partial<Record<ErrorStatus, string>>;
}

const header = (description: string, schema: Json, required = false) => ({ description, ...(required ? { required } : {}), schema });
const location = (required: boolean) => header('where to read the order: `/orders/{orderId}`', { type: 'string' }, required);
const REPLAYED = header('sent (`true`) when an earlier request with this Idempotency-Key had already placed the order', { type: 'string', enum: ['true'] });

const orderId = { orderId: { schema: orderIdSchema, description: 'the order id, e.g. `ord_…` (letters, digits, `.`, `_`, `-`)' } };
const json = (schema: Json, description: string, headers?: Record<string, Json>): Answer => ({ schema, description, headers });
const readsOrder: ErrorStatus[] = [404, 503];
const updatesOrder: ErrorStatus[] = [404, 409, 503, 504];

const ORDER_EXAMPLE = { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 2 }] };

export const ROUTES: readonly Route[] = [
  {
    method: 'get',
    path: '/health',
    operationId: 'getHealth',
    tag: 'system',
    access: 'public',
    summary: 'Health of Temporal, the query database, NATS, every service and the event path',
    answers: {
      200: json(answer(answers.health), 'Temporal and the query database answer; `status` is `degraded` if anything else does not.'),
      503: json(answer(answers.health), 'Temporal or the query database is unreachable.'),
    },
  },
  {
    method: 'post',
    path: '/payments/callback',
    operationId: 'paymentCallback',
    tag: 'payments',
    access: 'signature',
    summary: "The payment provider's confirmation of an authorization",
    description: `Authenticated by its signature, not an API key: \`${SIGNATURE}\` is the hex HMAC-SHA256 of the raw body, keyed with PAYMENT_WEBHOOK_SECRET. The saga takes the first answer for an order.`,
    headers: [
      {
        name: SIGNATURE,
        in: 'header',
        required: true,
        description: 'hex HMAC-SHA256 of the raw request body, keyed with the shared webhook secret',
        schema: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
      },
    ],
    body: { component: 'PaymentCallback', required: true, example: { orderId: 'ord_0123', providerRef: 'pay_ord_0123', outcome: 'CONFIRMED' } },
    answers: { 202: json(answer(answers.callbackAccepted), 'Handed to the saga.') },
    fails: updatesOrder,
  },
  {
    method: 'post',
    path: '/orders',
    operationId: 'placeOrder',
    tag: 'orders',
    access: ['client'],
    summary: 'Place an order: starts its saga',
    description:
      'Refused (400, nothing started) for an unknown customer or SKU, or a total above 1,000,000,000 cents at current prices. Send an `Idempotency-Key`: retrying with the same key and body never places a second order, even after a 504; the same key with a different body is a 409. Keys are scoped to the calling client and the customer. While the orders service cannot be reached, keyed orders are still placed; only the replay of an order closed longer ago than Temporal keeps workflows (whose record only that service holds) is then a 503.',
    query: z.object({ wait: waitSchema.optional(), until: untilSchema.optional() }),
    headers: [
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'makes the request safe to retry (printable ASCII, up to 255 characters)',
        schema: jsonSchemaOf(idempotencyKeySchema),
      },
    ],
    body: { component: 'PlaceOrderRequest', required: true, example: ORDER_EXAMPLE },
    answers: {
      200: json(
        answer(answers.order),
        'The saga ended (or, with `until=decision`, decided: see `decision`) within `wait` seconds, or the Idempotency-Key replays a closed order (its record).',
        { Location: location(false), 'Idempotent-Replayed': REPLAYED },
      ),
      202: json(answer(answers.orderAccepted), 'The saga is started (or was already, for a replayed Idempotency-Key).', {
        Location: location(true),
        'Idempotent-Replayed': REPLAYED,
      }),
    },
    fails: [409, 503, 504],
    failsAs: { 503: OVERLOADED.name },
  },
  {
    method: 'get',
    path: '/orders',
    operationId: 'listOrders',
    tag: 'orders',
    access: 'any key',
    summary: 'Orders from the query database: newest first, filtered, a page at a time',
    description: 'A client sees its own orders only. `asOf` says how far the views are behind the event streams. An unknown query parameter is a 400.',
    query: listOrdersSchema,
    answers: { 200: json(answer(answers.ordersPage), 'A page of orders.') },
    fails: [503],
  },
  {
    method: 'get',
    path: '/orders/:orderId',
    operationId: 'getOrder',
    tag: 'orders',
    access: 'any key',
    summary: "The order's live state (the running saga), or its record once closed",
    params: orderId,
    answers: { 200: json(answer(answers.order), 'The order.') },
    fails: readsOrder,
  },
  {
    method: 'get',
    path: '/orders/:orderId/details',
    operationId: 'getOrderDetails',
    tag: 'orders',
    access: 'any key',
    summary: 'The order and what each service holds for it (API composition)',
    description: 'Each part is asked of its own service with a deadline; a part whose service did not answer is left out and named in `unavailable`.',
    params: orderId,
    answers: { 200: json(answer(answers.orderDetails), 'The order and its parts.') },
    fails: readsOrder,
  },
  {
    method: 'get',
    path: '/orders/:orderId/events',
    operationId: 'getOrderEvents',
    tag: 'orders',
    access: 'any key',
    summary: "The order's event stream and the state their fold gives",
    description: '`events` is empty while the saga has not recorded the order yet.',
    params: orderId,
    answers: { 200: json(answer(answers.orderEvents), 'The events.') },
    fails: readsOrder,
  },
  {
    method: 'post',
    path: '/orders/:orderId/cancel',
    operationId: 'cancelOrder',
    tag: 'orders',
    access: ['client', 'manager'],
    summary: 'Cancel an order before dispatch: its compensations run',
    params: orderId,
    body: { component: 'CancelRequest', required: false, description: 'optional: no body at all is `{}`', example: { reason: 'changed my mind' } },
    answers: { 202: json(answer(answers.orderAfterUpdate), 'The saga took the cancellation.') },
    fails: updatesOrder,
  },
  ...(['approve', 'reject'] as const).map(
    (action): Route => ({
      method: 'post',
      path: `/orders/:orderId/${action}`,
      operationId: `${action}Order`,
      tag: 'orders',
      access: ['manager'],
      summary: `${action === 'approve' ? 'Approve' : 'Reject'} an order awaiting a manager`,
      description: 'The first decision wins: a second one is a 409. `manager`, if sent, must be the caller.',
      params: orderId,
      body: { component: 'ManagerDecision', required: false, description: 'optional: no body at all is `{}`', example: { note: 'ok' } },
      answers: { 200: json(answer(answers.orderAfterUpdate), 'The decision is taken.') },
      fails: updatesOrder,
    }),
  ),
  {
    method: 'post',
    path: '/orders/:orderId/resolve',
    operationId: 'resolveAttention',
    tag: 'orders',
    access: ['operator'],
    summary: 'Resume a saga stopped in NEEDS_ATTENTION',
    description: "`attention.allowedActions` of the order says which actions its state allows; any other is a 409. `operator`, if sent, must be the caller.",
    params: orderId,
    body: { component: 'ResolveAttentionRequest', required: true, example: { action: 'retry', note: 'carrier fixed' } },
    answers: { 200: json(answer(answers.orderAfterUpdate), 'The saga resumes.') },
    fails: updatesOrder,
  },
  {
    method: 'get',
    path: '/catalog',
    operationId: 'listProducts',
    tag: 'catalog',
    access: 'any key',
    summary: 'Products with price and stock on hand (query database)',
    answers: { 200: json(answer(answers.catalog), 'The catalog.') },
    fails: [503],
  },
  {
    method: 'get',
    path: '/catalog/:sku',
    operationId: 'getProduct',
    tag: 'catalog',
    access: 'any key',
    summary: 'One product',
    params: { sku: { schema: skuSchema, description: 'e.g. KB-001' } },
    answers: { 200: json(answer(answers.product), 'The product.') },
    fails: [404, 503],
  },
  {
    method: 'get',
    path: '/customers',
    operationId: 'listCustomers',
    tag: 'customers',
    access: ['manager', 'operator'],
    summary: 'Customers with credit limit, used and available (query database)',
    answers: { 200: json(answer(answers.customers), 'The customers.') },
    fails: [503],
  },
  {
    method: 'get',
    path: '/customers/:customerId',
    operationId: 'getCustomer',
    tag: 'customers',
    access: ['manager', 'operator'],
    summary: "One customer's credit",
    params: { customerId: { schema: customerIdSchema, description: 'e.g. cust-alice' } },
    answers: { 200: json(answer(answers.customer), 'The customer.') },
    fails: [404, 503],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    tag: 'system',
    access: 'public',
    summary: 'Prometheus metrics: requests counted and timed by route, and how far the query views are behind',
    answers: { 200: { description: 'The Prometheus text exposition format.', schema: { type: 'string' }, contentType: 'text/plain' } },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApi',
    tag: 'system',
    access: 'public',
    summary: 'This document',
    answers: { 200: json({ type: 'object', description: 'an OpenAPI 3.1 document' }, 'The API contract.') },
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'getDocs',
    tag: 'system',
    access: 'public',
    summary: 'This document rendered for people (Swagger UI, served by the API itself: no CDN)',
    answers: { 200: { description: 'An HTML page.', schema: { type: 'string' }, contentType: 'text/html' } },
  },
];

// --- assembling the document ---------------------------------------------------------------------------------

/** The Error schema, with the codes of this answer (and the members it always carries). */
function errorResponse(error: { description: string; codes: readonly string[]; carries?: readonly string[] }, headers?: Record<string, Json>): Json {
  const carried = Object.fromEntries((error.carries ?? []).map((name) => [name, { type: 'string' }]));
  const narrowed = { type: 'object', properties: { code: { enum: error.codes }, ...carried }, ...(error.carries ? { required: error.carries } : {}) };
  return {
    description: error.description,
    ...(headers ? { headers } : {}),
    content: { 'application/json': { schema: { allOf: [ref('Error'), { type: 'object', properties: { error: narrowed } }] } } },
  };
}

const WWW_AUTHENTICATE = { 'WWW-Authenticate': header('the scheme to authenticate with', { type: 'string', examples: ['Bearer realm="order-api"'] }, true) };
/** The headers an error answer always carries, by its response's name (src/api/errors.ts, errorHandler). */
const ERROR_HEADERS: Record<string, Record<string, Json> | undefined> = {
  Unauthorized: WWW_AUTHENTICATE,
  Unavailable: { 'Retry-After': header('seconds to wait before trying again', { type: 'string', const: String(UNAVAILABLE_RETRY_AFTER_SECONDS) }, true) },
};

function operation(route: Route): Operation {
  const parameters: Parameter[] = [
    ...Object.entries(route.params ?? {}).map(([name, { schema, description }]): Parameter => ({ name, in: 'path', required: true, description, schema: jsonSchemaOf(schema) })),
    ...queryParameters(route.query),
    ...(route.headers ?? []),
  ];
  const statuses = new Set<number>(route.fails ?? []);
  if (route.params || route.query || route.body) statuses.add(400);
  if (route.body) [413, 415].forEach((status) => statuses.add(status));
  if (Array.isArray(route.access)) statuses.add(403);
  const responses: Record<string, Json> = {};
  for (const [status, { description, schema, headers, contentType }] of Object.entries(route.answers)) {
    responses[status] = { description, ...(headers ? { headers } : {}), content: { [contentType ?? 'application/json']: { schema } } };
  }
  if (route.access === 'signature') responses[401] = { $ref: '#/components/responses/InvalidSignature' };
  else if (route.access !== 'public') responses[401] = { $ref: '#/components/responses/Unauthorized' };
  for (const status of [...statuses].sort()) {
    responses[status] = { $ref: `#/components/responses/${route.failsAs?.[status as ErrorStatus] ?? ERRORS[status as ErrorStatus].name}` };
  }
  const who = Array.isArray(route.access) ? `Needs the ${route.access.join(' or ')} role.` : route.access === 'any key' ? 'Any API key.' : '';
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description || who ? { description: [who, route.description].filter(Boolean).join(' ') } : {}),
    tags: [route.tag],
    ...(Array.isArray(route.access) ? { 'x-roles': [...route.access] } : {}),
    ...(route.access === 'public' || route.access === 'signature' ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(route.body
      ? {
          requestBody: {
            required: route.body.required,
            ...(route.body.description ? { description: route.body.description } : {}),
            content: { 'application/json': { schema: ref(route.body.component), ...(route.body.example ? { example: route.body.example } : {}) } },
          },
        }
      : {}),
    responses: Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b))),
  };
}

function queryParameters(query: z.ZodObject | undefined): Parameter[] {
  if (!query) return [];
  const { properties = {}, required = [] } = jsonSchemaOf(query) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(properties).map(([name, { description, ...schema }]) => ({
    name,
    in: 'query',
    required: required.includes(name),
    ...(typeof description === 'string' ? { description } : {}),
    schema,
  }));
}

/** `/orders/:orderId` → `/orders/{orderId}`. */
export const openApiPath = (expressPath: string) => expressPath.replace(/:(\w+)/g, '{$1}');

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export function buildOpenApiDocument(): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  for (const route of ROUTES) (paths[openApiPath(route.path)] ??= {})[route.method] = operation(route);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Order saga API',
      version: packageVersion(),
      description:
        'Places orders as durable sagas on Temporal and answers their state; relays managers\', operators\' and the payment provider\'s decisions to them; serves the catalog and customer credit. Money is in cents. Every error is `{ "error": { "code", "message", "fields"? } }`. Generated from the zod schemas the API validates with.',
    },
    tags: [
      { name: 'orders', description: 'Orders and their sagas' },
      { name: 'payments', description: "The payment provider's callback" },
      { name: 'catalog', description: 'Products, from the query database' },
      { name: 'customers', description: 'Customer credit, for staff' },
      { name: 'system', description: 'Health and this contract' },
    ],
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    paths,
    components: {
      schemas: { ...components(requestComponents, 'input'), ...components(answers.responseComponents, 'output') },
      responses: {
        ...Object.fromEntries(Object.values(ERRORS).map((error) => [error.name, errorResponse(error, ERROR_HEADERS[error.name])])),
        [SIGNATURE_ERROR.name]: errorResponse(SIGNATURE_ERROR, WWW_AUTHENTICATE),
        [OVERLOADED.name]: errorResponse(OVERLOADED, {
          'Retry-After': header(
            `seconds to wait before trying again: with \`overloaded\`, from how long the oldest waiting order has waited (1 to 30); otherwise ${UNAVAILABLE_RETRY_AFTER_SECONDS}`,
            { type: 'string', pattern: '^[0-9]+$' },
            true,
          ),
        }),
      },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key from API_KEYS: `Authorization: Bearer <key>`.' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same key in `X-API-Key` (if both headers are sent they must name the same key).' },
      },
    },
  };
}

let built: OpenApiDocument | undefined;
/** The document, built once. */
export const openApiDocument = (): OpenApiDocument => (built ??= buildOpenApiDocument());

// --- serving it ------------------------------------------------------------------------------------------------

export const serveOpenApi: RequestHandler = (_req, res) => {
  res.json(openApiDocument());
};

/** Swagger UI's files, from the pinned swagger-ui-dist package: nothing is fetched from a CDN. */
const ASSETS = new Set(['/swagger-ui.css', '/swagger-ui-bundle.js', '/favicon-32x32.png', '/favicon-16x16.png']);

/** `app.use('/docs/assets', docsAssets())`: only the files the page needs, nothing else of the package. */
export function docsAssets(): RequestHandler {
  const files = express.static(path.dirname(require.resolve('swagger-ui-dist/package.json')), { index: false, redirect: false, maxAge: '1d' });
  return (req, res, next) => (ASSETS.has(req.path) ? files(req, res, next) : next());
}

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Order saga API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });
  </script>
</body>
</html>
`;

export const serveDocsPage: RequestHandler = (_req, res) => {
  res.type('html').send(DOCS_PAGE);
};
