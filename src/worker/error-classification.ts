// Which activity failures are worth retrying forever, and which are bugs that must reach a person.
//
// The saga retries activities without a limit, because an outage (a database restarting, a provider down,
// a worker killed) must never turn into a compensation. But a bug (a TypeError, a broken invariant, a
// constraint the code did not expect) fails the same way on every attempt, and retrying it forever hides it.
// So every plain error an activity throws is classified here:
// - known transient faults (connection refused or reset, timeouts, PostgreSQL serialization failures and
//   deadlocks, pool exhaustion, an unreachable payment provider, injected faults) are rethrown unchanged and
//   retried for as long as they last (GET /orders/:id and the auditor name a step that keeps failing);
// - anything else is retried a few times (it might still be a transient fault nobody listed), then turned into
//   a non-retryable `UnexpectedActivityError`: the saga stops in NEEDS_ATTENTION and an operator decides.
// ApplicationFailures (business refusals, the services' own non-retryable errors) pass through untouched.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

export const UNEXPECTED_ERROR_TYPE = 'UnexpectedActivityError';

/** Attempts an unclassified error gets before it is surfaced (default of UNEXPECTED_ERROR_MAX_ATTEMPTS). */
export const DEFAULT_UNEXPECTED_ERROR_MAX_ATTEMPTS = 5;

// Node network error codes: the other side did not answer, or went away.
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);
// Prisma error codes that mean "the database did not answer" or "try the transaction again".
const PRISMA_TRANSIENT = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028', 'P2034']);
// Driver-adapter error kinds with the same meaning.
const ADAPTER_TRANSIENT = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TransactionWriteConflict']);
// PostgreSQL SQLSTATEs: connection exceptions (08), serialization failure, deadlock, lock timeout, too many
// connections, insufficient resources (53), operator intervention such as a shutdown (57P).
const SQLSTATE_TRANSIENT = /^(08|40001|40P01|55P03|53|57P)/;
// Messages of errors that carry no code: fetch's network failures, timeouts, a provider or database saying "later".
const MESSAGE_TRANSIENT =
  /fetch failed|timed? ?out|timeout|unreachable|ECONNREFUSED|ECONNRESET|socket hang up|Connection terminated|Can't reach database server|Server has closed the connection|the database system is (starting up|shutting down)|payment provider at \S+ (did not answer|broke off|answered)/i;
// The payment provider refusing our credentials or asking us to slow down (401, 403, 429): a configuration or
// capacity problem an operator fixes once, after which every waiting saga goes on by itself.
// An order's stream moved on while a writer appended to it (src/activities/orders/order-stream.ts): try again.
const TRANSIENT_NAMES = new Set(['InjectedFault', 'AbortError', 'TimeoutError', 'PrismaClientInitializationError', 'ProviderRequestError', 'OrderStreamConflict']);

interface ErrorLike {
  name?: string;
  message?: string;
  code?: string;
  cause?: unknown;
  meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } };
}

/** True for a fault that goes away by itself (an outage, a conflict, a timeout): retry it as long as it lasts. */
export function isTransientError(error: unknown): boolean {
  for (let current = error as ErrorLike | undefined, depth = 0; current && depth < 6; depth++) {
    if (current.name && TRANSIENT_NAMES.has(current.name)) return true;
    if (current.code && (NETWORK_CODES.has(current.code) || PRISMA_TRANSIENT.has(current.code) || SQLSTATE_TRANSIENT.test(current.code))) return true;
    const adapter = current.meta?.driverAdapterError?.cause;
    if (adapter?.kind && ADAPTER_TRANSIENT.has(adapter.kind)) return true;
    if (adapter?.originalCode && SQLSTATE_TRANSIENT.test(adapter.originalCode)) return true;
    if (current.message && MESSAGE_TRANSIENT.test(current.message)) return true;
    current = current.cause as ErrorLike | undefined;
  }
  return false;
}

export function errorClassifier(maxUnexpectedAttempts = DEFAULT_UNEXPECTED_ERROR_MAX_ATTEMPTS): ActivityInterceptorsFactory {
  return () => {
    const inbound: ActivityInboundCallsInterceptor = {
      async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
        try {
          return await next(input);
        } catch (error) {
          if (error instanceof ApplicationFailure || isTransientError(error)) throw error;
          const { attempt, activityType } = Context.current().info;
          if (attempt < maxUnexpectedAttempts) throw error;
          const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          // Said once, as an error, where the SDK logs each failed attempt as a warning (with the stack): through the
          // activity logger, so the line carries the order, the workflow and the run (src/observability/logging.ts).
          Context.current().log.error('unexpected error: giving up, the saga needs an operator', { errorType: error instanceof Error ? error.name : typeof error, error: message, attempt });
          throw ApplicationFailure.create({
            type: UNEXPECTED_ERROR_TYPE,
            message: `${activityType} failed ${attempt} times with an unexpected error: ${message}`,
            nonRetryable: true,
            cause: error instanceof Error ? error : undefined,
          });
        }
      },
    };
    return { inbound };
  };
}
