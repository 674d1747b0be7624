// The sandbox provider's HTTP API, shaped like a real PSP's. Every route but /v1/health needs
// `Authorization: Bearer <PAYMENT_PROVIDER_API_KEY>`. Errors are `{ error: { code, message, status? } }`.
//
//   POST /v1/authorizations               {providerRef, orderId, amountCents, currency?}, Idempotency-Key: providerRef
//                                         201 created (PENDING) · 200 replay (Idempotent-Replayed: true) · 409 key reused
//   GET  /v1/authorizations?after=&limit= page ordered by providerRef: {data, hasMore, nextAfter?}
//   GET  /v1/authorizations/:ref          200 · 404
//   POST /v1/authorizations/:ref/capture  AUTHORIZED → CAPTURED          (idempotent; 409 otherwise, 404 unknown)
//   POST /v1/authorizations/:ref/void     PENDING|AUTHORIZED → VOIDED, unknown → VOIDED tombstone, {orderId?}
//                                         (idempotent; DECLINED unchanged; 409 once CAPTURED/REFUNDED)
//   POST /v1/authorizations/:ref/refund   CAPTURED → REFUNDED           (idempotent; 409 otherwise, 404 unknown)
//   POST /v1/authorizations/:ref/decide   sandbox only: {outcome: CONFIRMED|DECLINED, reason?} for a PENDING one
//   GET  /v1/events?providerRef=          the webhooks and their delivery state
//   GET  /v1/health                       no key needed
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { LedgerError, type Ledger } from './ledger';

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const REF = /^[A-Za-z0-9_.:-]{1,200}$/;
const refSchema = z.string().regex(REF, 'letters, digits and _ . : - only, at most 200');

const authorizeSchema = z.object({
  providerRef: refSchema,
  orderId: z.string().min(1).max(200),
  amountCents: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD').optional(),
});
const voidSchema = z.object({ orderId: z.string().min(1).max(200).optional() });
const decideSchema = z.object({ outcome: z.enum(['CONFIRMED', 'DECLINED']), reason: z.string().max(500).optional() });

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const detail = result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
  throw new HttpError(400, 'validation_failed', detail);
}

const digest = (value: string) => createHash('sha256').update(value).digest();

function requireApiKey(apiKey: string): RequestHandler {
  const expected = digest(apiKey);
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    // Comparing fixed-length digests: constant time whatever the length of what was presented.
    if (!presented || !timingSafeEqual(digest(presented), expected)) {
      return next(new HttpError(401, 'unauthorized', 'a valid API key is required (Authorization: Bearer <key>)'));
    }
    next();
  };
}

const BODY_ERRORS: Record<string, [number, string]> = {
  'entity.parse.failed': [400, 'invalid_json'],
  'entity.too.large': [413, 'payload_too_large'],
  'encoding.unsupported': [415, 'unsupported_encoding'],
  'charset.unsupported': [415, 'unsupported_charset'],
};

export function createProviderApp(ledger: Ledger, options: { apiKey: string; log: (line: string) => void }): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const json = express.json({ limit: '16kb' });
  const jsonRequired: RequestHandler = (req, _res, next) =>
    req.is('application/json') ? next() : next(new HttpError(415, 'unsupported_media_type', 'send the body as application/json'));
  const ref = (req: Request) => {
    const value = String(req.params.ref);
    if (!REF.test(value)) throw new HttpError(400, 'validation_failed', 'ref: letters, digits and _ . : - only, at most 200');
    return value;
  };

  app.get('/v1/health', (_req, res) => {
    res.json({ ok: true });
  });

  app.use('/v1', requireApiKey(options.apiKey));

  app.post('/v1/authorizations', jsonRequired, json, async (req, res) => {
    const key = req.get('idempotency-key');
    if (!key) throw new HttpError(400, 'idempotency_key_required', 'the Idempotency-Key header is required (the providerRef)');
    const input = parse(authorizeSchema, req.body);
    if (key !== input.providerRef) {
      throw new HttpError(400, 'idempotency_key_mismatch', `the Idempotency-Key header (${key}) must equal providerRef (${input.providerRef})`);
    }
    const { record, created } = await ledger.authorize(input);
    if (!created) res.set('idempotent-replayed', 'true');
    res.status(created ? 201 : 200).json(record);
  });

  app.get('/v1/authorizations', (req, res) => {
    const after = req.query.after === undefined ? undefined : String(req.query.after);
    const limitRaw = req.query.limit === undefined ? '100' : String(req.query.limit);
    const limit = Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'validation_failed', 'limit: an integer from 1 to 1000');
    res.json(ledger.list(after, limit));
  });

  app.get('/v1/authorizations/:ref', (req, res) => {
    const record = ledger.get(ref(req));
    if (!record) throw new HttpError(404, 'not_found', `no authorization ${req.params.ref}`);
    res.json(record);
  });

  app.post('/v1/authorizations/:ref/capture', json, async (req, res) => {
    res.json(await ledger.capture(ref(req)));
  });

  app.post('/v1/authorizations/:ref/refund', json, async (req, res) => {
    res.json(await ledger.refund(ref(req)));
  });

  app.post('/v1/authorizations/:ref/void', json, async (req, res) => {
    const { orderId } = parse(voidSchema, req.body);
    res.json(await ledger.void(ref(req), orderId));
  });

  app.post('/v1/authorizations/:ref/decide', jsonRequired, json, async (req, res) => {
    const { outcome, reason } = parse(decideSchema, req.body);
    res.json(await ledger.decide(ref(req), outcome, reason));
  });

  app.get('/v1/events', (req, res) => {
    const providerRef = req.query.providerRef === undefined ? undefined : String(req.query.providerRef);
    res.json({ data: ledger.events(providerRef) });
  });

  app.use((req, _res, next) => next(new HttpError(404, 'not_found', `no route ${req.method} ${req.path}`)));

  const errors: ErrorRequestHandler = (error, _req, res, _next) => {
    let status = 500;
    let body: Record<string, unknown>;
    if (error instanceof LedgerError) {
      status = error.httpStatus;
      body = { code: error.code, message: error.message, ...(error.status ? { status: error.status } : {}) };
    } else if (error instanceof HttpError) {
      status = error.status;
      body = { code: error.code, message: error.message };
    } else if (typeof error?.type === 'string' && BODY_ERRORS[error.type]) {
      [status] = BODY_ERRORS[error.type];
      body = { code: BODY_ERRORS[error.type][1], message: error.message };
    } else {
      options.log(`payment-provider: unexpected error: ${error?.stack ?? error}`);
      body = { code: 'internal_error', message: 'internal error' };
    }
    if (res.headersSent) return;
    res.status(status).json({ error: body });
  };
  app.use(errors);
  return app;
}
