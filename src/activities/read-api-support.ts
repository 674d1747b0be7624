// What the four services' internal read APIs (src/activities/<service>/read-api.ts) share: each service answers
// reads about its own data from its own process, so the public API never opens a service's database.
//
// Every answer is JSON, and a failure is `{ error: { code, message, fields? } }` like the public API's:
//   400 bad_request           the order id in the path is not one the public API would accept (orderIdSchema)
//   404 not_found             nothing is recorded for that id
//   503 database_unavailable  the service's database could not be reached: the caller may retry
//   500 internal_error        anything else (a bug), logged here
// The routers do their own error answers instead of relying on an error handler of the app that mounts them,
// so they answer the same whichever process mounts them, next to whichever other routers.
import express, { type Request, type Response, type Router } from 'express';
import { orderIdSchema } from '../api/validation';
import { outboxStatusOf } from '../events/relay-status';
import { isTransientError } from '../worker/error-classification';

/** A refusal with its HTTP status; thrown by a read and turned into its JSON answer by `readRouter`. */
export class ReadApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The offending request fields, by name. */
    readonly fields?: string[],
  ) {
    super(message);
  }
}

export const notFound = (message: string) => new ReadApiError(404, 'not_found', message);

/** The `:orderId` path parameter, checked by the same rule as the public API's (a 400 naming orderId otherwise). */
export function orderIdParam(req: Request): string {
  const result = orderIdSchema.safeParse(req.params.orderId);
  if (result.success) return result.data;
  // The schema's messages name the field already, e.g. "orderId must be at most 64 characters".
  throw new ReadApiError(400, 'bad_request', result.error.issues.map((issue) => issue.message).join('; '), ['orderId']);
}

/** Dates as ISO 8601 strings, null kept as null. */
export const iso = (date: Date | null): string | null => date?.toISOString() ?? null;

/** Just enough of a service's Prisma client to check its database answers and read its outbox's status. */
interface Pingable {
  $queryRaw(query: TemplateStringsArray, ...values: unknown[]): Promise<unknown>;
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
}

export interface ReadRouter {
  router: Router;
  /** Adds `GET path` (with an `:orderId` parameter) answering what `read` returns for the checked order id. */
  get(path: string, read: (orderId: string) => Promise<unknown>): void;
}

/** A router for `service`'s reads, with `GET /health/<service>` already on it. */
export function readRouter(service: string, db: Pingable): ReadRouter {
  const router = express.Router();

  function fail(res: Response, error: unknown) {
    if (res.headersSent) return;
    let answer: ReadApiError;
    if (error instanceof ReadApiError) answer = error;
    else if (isTransientError(error)) answer = new ReadApiError(503, 'database_unavailable', `the ${service} database is unreachable; retry later`);
    else {
      console.error(`${service} read API: unexpected error: ${(error as Error)?.stack ?? error}`);
      answer = new ReadApiError(500, 'internal_error', 'internal error');
    }
    const { status, code, message, fields } = answer;
    res.status(status).json({ error: { code, message, ...(fields ? { fields } : {}) } });
  }

  // Health means "the database answers a query": any failure, whatever its kind, is unhealthy. The answer also
  // says how the service's outbox stands (backlog, oldest unpublished event, replication slot lag).
  router.get(`/health/${service}`, async (_req, res) => {
    try {
      await db.$queryRaw`SELECT 1`;
      const outbox = await outboxStatusOf((sql, params) => db.$queryRawUnsafe(sql, ...params));
      res.json({ status: 'ok', outbox });
    } catch (error) {
      res.status(503).json({ status: 'unavailable', error: briefly(error) });
    }
  });

  return {
    router,
    get(path, read) {
      router.get(path, async (req, res) => {
        try {
          res.json(await read(orderIdParam(req)));
        } catch (error) {
          fail(res, error);
        }
      });
    },
  };
}

/** One line saying what went wrong: Prisma's messages end with the driver's reason after pages of call site. */
function briefly(error: unknown): string {
  const lines = String((error as Error)?.message ?? error).split('\n').map((line) => line.trim()).filter(Boolean);
  return (lines.at(-1) ?? 'unknown error').slice(0, 300);
}
