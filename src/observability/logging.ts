// Structured logs: the one way every program (the API, the workers, the relays, the projector, `npm start`) makes
// its logger. pino writes one JSON object per line to stdout, which a container's log collector ships as it is;
// LOG_FORMAT=pretty turns each object into a short line for a person at a terminal (`npm start`'s default).
//
// Every line has `level`, `time` (ISO 8601) and `msg`, the base field `service` (the program: api, worker, relay,
// projector, or order-saga for `npm start`) and `component` (the part of it that speaks: http, workflow, activity,
// temporal, relay, consumer, stack…). A line about an order carries `orderId`, and `workflowId` and `runId` where
// Temporal knows them, so that one query finds an order's lines across every process.
//
// While tracing is on, a line written inside a span also carries that span's `traceId` and `spanId`, so that a
// trace leads to its lines and a line to its trace.
//
// `component` is bound once, by the part that speaks (pino does not replace a bound key, it writes it twice): entry
// points pass their root logger, which binds `service` only, and each part makes its child from it.
import { context, trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import type { LogLevel as TemporalLogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { RuntimeOptions } from '@temporalio/worker';
import type { LogFormat, LogLevelName } from '../config';
import type { StoredEvent } from '../events/outbox';

export type { Logger };

export interface LoggerOptions {
  /** The program, e.g. `worker`: the `service` field of every line. */
  service: string;
  /** LOG_LEVEL; INFO unless given. */
  level?: LogLevelName;
  /** LOG_FORMAT; JSON unless given. */
  format?: LogFormat;
  /** Where lines go (tests capture them); stdout unless given. */
  destination?: DestinationStream;
}

export function createLogger({ service, level = 'INFO', format = 'json', destination }: LoggerOptions): Logger {
  // Synchronous writes: the last lines before a crash or a process.exit() are the ones that matter most.
  const out = destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: level.toLowerCase(),
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"warn" rather than pino's 40: readable, and what most log collectors map without configuration.
      formatters: { level: (label) => ({ level: label }) },
      // The Temporal SDK passes errors as `error`; the app's own lines use pino's `err`. Both with their stack.
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
      mixin: activeSpanIds,
    },
    format === 'pretty' ? prettyDestination(out) : out,
  );
}

/** The active span's ids; none outside a span, or with tracing off (OpenTelemetry's no-op context holds no span). */
function activeSpanIds(): { traceId?: string; spanId?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return trace.isSpanContextValid(span.spanContext()) ? { traceId, spanId } : {};
}

/** A logger that writes nothing: the default of every part whose caller passes none (tests, scripts). */
export const silentLogger: Logger = pino({ level: 'silent' });

// --- LOG_FORMAT=pretty -------------------------------------------------------------------------------------------

const SHOWN_APART = new Set(['level', 'time', 'msg', 'service', 'component', 'err', 'error']);

/** `14:03:07.412 INFO  order-saga/http POST /orders 202  method=POST … orderId=ord_…`, then an error's stack. */
export function prettyLine(entry: Record<string, unknown>): string {
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
  const who = [entry.service, entry.component].filter(Boolean).join('/');
  const fields = Object.entries(entry)
    .filter(([key, value]) => !SHOWN_APART.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const error = (entry.err ?? entry.error) as { stack?: string; message?: string } | string | undefined;
  const detail = typeof error === 'object' && error ? `\n    ${String(error.stack ?? error.message).replaceAll('\n', '\n    ')}` : error ? ` error=${error}` : '';
  const msg = String(entry.msg ?? '').replaceAll('\n', '\n    ');
  return `${time} ${String(entry.level).toUpperCase().padEnd(5)} ${who} ${msg}${fields ? `  ${fields}` : ''}${detail}\n`;
}

function prettyDestination(out: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      try {
        out.write(prettyLine(JSON.parse(line)));
      } catch {
        out.write(line);
      }
    },
  };
}

// --- the Temporal SDK's logs -------------------------------------------------------------------------------------

/**
 * The workflow type whose workflow id is the order id (src/api/order-workflows.ts starts each order so). It is the
 * only type this system's workers run, so a line with a workflow id but no type (Core's) is about an order too.
 */
const ORDER_WORKFLOW_TYPE = 'OrderSaga';

const PINO_LEVELS: Record<TemporalLogLevel, Level> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };
const RANK: Record<TemporalLogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

/**
 * The SDK's metadata as this system's fields. Workflow lines carry workflowId and runId; activity lines carry
 * workflowId and workflowRunId (named `runId` here, so that one field finds both); the lines of an OrderSaga, of its
 * activities and Core's about its workflow tasks get the order id, which is the workflow id. The activity's task
 * token is left out: opaque and long.
 */
export function temporalLogFields(meta: LogMetadata = {}): Record<string, unknown> {
  const { taskToken: _taskToken, workflowRunId, sdkComponent, ...rest } = meta;
  const component = sdkComponent === 'workflow' || sdkComponent === 'activity' ? sdkComponent : 'temporal';
  const fields: Record<string, unknown> = { component, ...(sdkComponent ? { sdkComponent } : {}), ...rest };
  if (fields.runId === undefined && workflowRunId !== undefined) fields.runId = workflowRunId;
  const orderWorkflow = meta.workflowType === undefined || meta.workflowType === ORDER_WORKFLOW_TYPE;
  if (fields.orderId === undefined && orderWorkflow && typeof meta.workflowId === 'string') fields.orderId = meta.workflowId;
  return fields;
}

/**
 * The Temporal SDK's Logger, writing through pino: Runtime.install gets it from runtimeLogging (below). The Runtime's
 * logger receives the SDK's own lines (workers, activities' and workflows' lifecycles), the workflow logger's (`log`
 * from @temporalio/workflow, which the SDK carries out of the sandbox through a sink), the activity logger's (`log`
 * from @temporalio/activity) and, forwarded, Core's. `logger` must be a root logger: the component is set per line.
 */
export class TemporalPinoLogger implements TemporalLogger {
  constructor(
    private readonly logger: Logger,
    /** The SDK's lines below this are dropped even where the logger writes them (npm start keeps the SDK at WARN). */
    private readonly minLevel: TemporalLogLevel = 'TRACE',
  ) {}

  log(level: TemporalLogLevel, message: string, meta?: LogMetadata): void {
    const pinoLevel = PINO_LEVELS[level] ?? 'info';
    if (RANK[level] < RANK[this.minLevel]) return;
    if (this.logger.isLevelEnabled(pinoLevel)) this.logger[pinoLevel](temporalLogFields(meta), message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * The logging options of Runtime.install: the SDK's Logger writing through `logger`, and Core's own lines
 * (connections, pollers, task slots) forwarded to it rather than printed apart, from LOG_LEVEL up (other native
 * libraries' only on errors). The SDK holds forwarded lines 100 ms to sort them by time with the rest.
 */
export function runtimeLogging(logger: Logger, level: LogLevelName = 'INFO'): Pick<RuntimeOptions, 'logger' | 'telemetryOptions'> {
  return {
    logger: new TemporalPinoLogger(logger, level),
    telemetryOptions: { logging: { filter: { core: level, other: 'ERROR' }, forward: {} } },
  };
}

// --- events --------------------------------------------------------------------------------------------------

/** The aggregates keyed by the order id (src/events/outbox.ts, orderEvent). */
const ORDER_AGGREGATES = new Set(['Order', 'Reservation', 'Payment', 'Shipment']);

/** The fields of a line about an event (the relays', the consumers'): its id and type, and its order's id. */
export function eventLogFields(event: Pick<StoredEvent, 'id' | 'type' | 'aggregateType' | 'aggregateId' | 'sequence' | 'correlationId'>): Record<string, unknown> {
  return {
    eventId: event.id,
    eventType: event.type,
    aggregate: `${event.aggregateType}:${event.aggregateId}`,
    sequence: event.sequence,
    ...(ORDER_AGGREGATES.has(event.aggregateType) ? { orderId: event.aggregateId } : { correlationId: event.correlationId }),
  };
}
