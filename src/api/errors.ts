// How failures become HTTP answers: always a JSON body `{ error: { code, message, fields? } }`, never a
// stack trace. Temporal being unreachable is a 503 the caller can retry, and nothing was written; a write whose
// answer was lost on the way (a timeout after the request reached Temporal) is a 504 `outcome_unknown`, which
// says where to look, because the write may have taken effect.
import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from '../observability/logging';
import { ServiceUnavailable } from './service-reads';

export interface FieldError {
  field: string;
  message: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: FieldError[],
    /** More members of the error object, e.g. `orderId` and `statusUrl` of an outcome_unknown answer. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/**
 * A start, update or signal that reached Temporal (or may have) but whose answer never came: it may have taken
 * effect. Raised by OrderWorkflows; answered 504 with the order id and where to check it.
 */
export class OutcomeUnknownError extends Error {
  override name = 'OutcomeUnknownError';
  constructor(
    readonly orderId: string,
    /** What was asked, e.g. `start of the order saga` or `cancelOrder update`. */
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(`the ${operation} for order ${orderId} reached the workflow service but its answer did not come back in time`, options);
  }
}

export const badRequest = (message: string, fields?: FieldError[]) => new HttpError(400, 'validation_failed', message, fields);
export const notFound = (message: string) => new HttpError(404, 'not_found', message);
export const conflict = (message: string) => new HttpError(409, 'conflict', message);
export const forbidden = (message: string, fields?: FieldError[]) => new HttpError(403, 'forbidden', message, fields);

export function outcomeUnknown(error: OutcomeUnknownError, advice = ''): HttpError {
  const statusUrl = `/orders/${error.orderId}`;
  return new HttpError(
    504,
    'outcome_unknown',
    `the workflow service did not answer in time: the ${error.operation} may or may not have taken effect. ` +
      `Do not assume it failed: check GET ${statusUrl} before trying again.${advice ? ` ${advice}` : ''}`,
    undefined,
    { orderId: error.orderId, statusUrl },
  );
}

/** The gRPC status of a Temporal client error, looking through the client's wrappers. */
export function grpcCode(error: unknown): number | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (isGrpcServiceError(current)) return current.code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** gRPC status NOT_FOUND: e.g. a workflow that has closed or never existed. */
export const GRPC_NOT_FOUND = 5;

// gRPC status codes CANCELLED, DEADLINE_EXCEEDED and UNAVAILABLE: the server did not answer in time, or at all.
const UNREACHABLE = new Set<number>([1, 4, 14]);

export function isTemporalUnavailable(error: unknown): boolean {
  const code = grpcCode(error);
  if (code !== undefined) return UNREACHABLE.has(code);
  // A connection that could not be established at all surfaces as a ServiceError without a gRPC code.
  return error instanceof ServiceError;
}

// Prisma error codes and driver-adapter error kinds that mean "the database did not answer", as opposed to
// a query it refused. PostgreSQL SQLSTATE classes 08 (connection exception) and 57P (operator intervention,
// e.g. a server shutting down) mean the same.
const UNREACHABLE_DB_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const UNREACHABLE_DB_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

export function isDatabaseUnavailable(error: unknown): boolean {
  type AdapterCause = { kind?: string; originalCode?: string };
  const e = error as { name?: string; code?: string; cause?: AdapterCause; meta?: { driverAdapterError?: { cause?: AdapterCause } } };
  if (e?.name === 'PrismaClientInitializationError' || UNREACHABLE_DB_CODES.has(e?.code ?? '')) return true;
  // The driver adapter's error, wrapped by Prisma's client (raw queries) or as the adapter threw it (model queries).
  const cause = e?.meta?.driverAdapterError?.cause ?? (e?.name === 'DriverAdapterError' ? e.cause : undefined);
  if (UNREACHABLE_DB_KINDS.has(cause?.kind ?? '')) return true;
  return /^(08|57P)/.test(cause?.originalCode ?? '');
}

/** Retry-After of a 503 for a dependency that did not answer (Temporal, a database, a service): soon, but not at once. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

export const temporalUnavailable = () =>
  new HttpError(503, 'temporal_unavailable', 'the workflow service is unreachable; nothing was changed, retry later');

/** Body-parser failures carry a `type`; map them to what the client did wrong. */
const BODY_ERRORS: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'invalid_json', 'the request body is not valid JSON'],
  'entity.too.large': [413, 'payload_too_large', 'the request body is too large'],
  'encoding.unsupported': [415, 'unsupported_encoding', 'the request body encoding is not supported'],
  'charset.unsupported': [415, 'unsupported_charset', 'the request body charset is not supported'],
  'request.aborted': [400, 'request_aborted', 'the request was aborted'],
  'request.size.invalid': [400, 'invalid_body', 'the request body length does not match its header'],
};

/** Answers every error as JSON; an unexpected one (a bug: a 500) is logged with its stack and the order it was about. */
export function errorHandler(logger: Pick<Logger, 'error'>): ErrorRequestHandler {
  return (error, req, res, _next) => {
    let http: HttpError;
    if (error instanceof HttpError) http = error;
    else if (typeof error?.type === 'string' && BODY_ERRORS[error.type]) {
      const [status, code, message] = BODY_ERRORS[error.type];
      http = new HttpError(status, code, message, [{ field: 'body', message }]);
    }
    else if (error instanceof OutcomeUnknownError) http = outcomeUnknown(error);
    else if (isTemporalUnavailable(error)) http = temporalUnavailable();
    else if (isDatabaseUnavailable(error)) http = new HttpError(503, 'database_unavailable', 'a database is unreachable; nothing was changed, retry later');
    else if (error instanceof ServiceUnavailable) http = new HttpError(503, 'service_unavailable', `${error.message}; nothing was changed, retry later`);
    else {
      logger.error({ err: error, method: req.method, path: req.path, orderId: res.locals.orderId }, 'unexpected error');
      http = new HttpError(500, 'internal_error', 'internal error');
    }
    res.locals.errorCode = http.code; // for the request log (src/observability/request-log.ts)
    if (res.headersSent) return;
    if (http.status === 401) res.set('WWW-Authenticate', 'Bearer realm="order-api"');
    // Every 503 means nothing was changed: say, in a header a client's retry logic reads, when to try again
    // (`overloaded` has set its own, from how far behind the workers are).
    if (http.status === 503 && !res.get('Retry-After')) res.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    res.status(http.status).json({ error: { code: http.code, message: http.message, ...(http.fields ? { fields: http.fields } : {}), ...http.details } });
  };
}
