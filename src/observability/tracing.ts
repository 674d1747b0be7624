// OpenTelemetry traces: one tracer provider per process, registered as the global one, so that every part of the
// process (the API's requests, the Temporal client and worker interceptors, the pg driver, the outbox relay and the
// consumers) records into it and W3C trace context (traceparent) carries a trace from one part to the next.
//
// Off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, see
// src/config.ts): nothing is registered then, the OpenTelemetry API hands out no-op tracers, and the Temporal
// interceptors are not installed at all (src/observability/temporal-tracing.ts). Tests pass an exporter of their own
// (an InMemorySpanExporter) instead of an endpoint.
//
// What records spans, and where the trace goes next:
//   API            one server span per request, named by route template      src/observability/http.ts
//   Temporal       StartWorkflow, RunWorkflow, StartActivity, RunActivity …   @temporalio/interceptors-opentelemetry
//   databases      one span per pg query and pool checkout                    @opentelemetry/instrumentation-pg
//   outbox         the writing activity's traceparent, stored with the event  src/events/outbox.ts (trace_context)
//   relay          `publish <subject>`, child of the stored context; its own context goes into the NATS headers
//   consumers      `process <subject>`, child of the context in the message's headers   src/events/consumer.ts
import { context, INVALID_SPAN_CONTEXT, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { PgInstrumentation, type PgRequestHookInformation } from '@opentelemetry/instrumentation-pg';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config';

/** The instrumentation scope of this project's own spans (HTTP, relay, consumers). */
export const TRACER_NAME = 'order-saga';

/** A process's tracing: on (a provider registered globally) or off. */
export interface Tracing {
  readonly enabled: boolean;
  /** Where the spans go (the workflow spans too, through makeWorkflowExporter); unset when off. */
  readonly processor?: SpanProcessor;
  readonly resource: Resource;
  /** Exports what is buffered (OTLP batches). */
  forceFlush(): Promise<void>;
  /** Exports what is buffered, then unregisters everything (the provider, the pg instrumentation): tracing is off again. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** The program's name, the spans' `service.name` unless OTEL_SERVICE_NAME says otherwise. */
  serviceName: string;
  /** The OTEL_* configuration (src/config.ts). */
  config?: TracingConfig;
  /** Export to this exporter, span by span (tests: an InMemorySpanExporter); it turns tracing on without an endpoint. */
  exporter?: SpanExporter;
}

const OFF: Tracing = {
  enabled: false,
  resource: Resource.empty(),
  forceFlush: async () => {},
  shutdown: async () => {},
};

let current: Tracing | undefined;
let pgInstrumentation: PgInstrumentation | undefined;

/** Whether this process records traces (a provider from startTracing is registered). */
export function tracingEnabled(): boolean {
  return current !== undefined;
}

/**
 * Sets up this process's tracing: off (nothing registered) without an OTLP endpoint or exporter; otherwise a
 * NodeTracerProvider registered globally (AsyncLocalStorage context, W3C trace context and baggage propagators), with
 * the pg instrumentation. One per process at a time: shut the last one down first.
 */
export function startTracing(options: TracingOptions): Tracing {
  const endpoint = options.config?.tracesEndpoint;
  if (!options.exporter && !endpoint) return OFF;
  if (current) throw new Error('tracing is already started in this process; shut it down before starting another');

  const resource = Resource.default()
    .merge(envDetectorSync.detect())
    .merge(new Resource({ [ATTR_SERVICE_NAME]: options.config?.serviceName ?? options.serviceName }));
  // An exporter of the caller's (tests) gets every span at once; OTLP gets batches, flushed at shutdown.
  const processor: SpanProcessor = options.exporter ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();

  // Every query the pg driver runs (under Prisma's adapter-pg too) while a span is active: an activity's, a consumer's.
  // Queries outside any span (the relays' polling and locks, the pools' own work) record nothing. One instrumentation
  // per process, enabled here and disabled at shutdown: a second one would not see the modules the first one patched.
  pgInstrumentation ??= new PgInstrumentation({ enabled: false, requireParentSpan: true, enhancedDatabaseReporting: false, requestHook: nameQuerySpan });
  const unregister = registerInstrumentations({ tracerProvider: provider, instrumentations: [pgInstrumentation] });
  patchLoadedModules(['pg', 'pg-pool']);

  const tracing: Tracing = {
    enabled: true,
    processor,
    resource,
    forceFlush: () => provider.forceFlush(),
    async shutdown() {
      if (current !== tracing) return;
      current = undefined;
      unregister();
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
  current = tracing;
  return tracing;
}

/**
 * `pg.query:<COMMAND> <database>`, as the instrumentation names it, also for SQL that starts with a line break (the
 * outbox's and the inbox's raw statements), which it would name by an empty command.
 */
function nameQuerySpan(span: Span, { query, connection }: PgRequestHookInformation): void {
  if (query.name) return;
  const command = query.text.trimStart().split(/[\s;(]/, 1)[0].toUpperCase();
  if (command) span.updateName(`pg.query:${command}${connection.database ? ` ${connection.database}` : ''}`);
}

/**
 * The instrumentation patches a module when it is required. A process that loaded the pg driver before tracing
 * started (a test runner, a module imported first) gets it patched by requiring it again: the hook sees that require
 * and patches the module's prototypes, which the pools and clients made before share.
 */
function patchLoadedModules(names: string[]): void {
  for (const name of names) {
    try {
      require(name);
    } catch {
      // not installed: nothing to patch
    }
  }
}

// --- trace context in carriers (outbox rows, NATS headers) -------------------------------------------------------

/** W3C trace context as text headers: `traceparent`, and `tracestate` when there is one. */
export type TraceCarrier = Record<string, string>;

/** The active span's context as a carrier, to store or send along; null when tracing is off or no span is active. */
export function activeTraceCarrier(): TraceCarrier | null {
  if (!current) return null;
  const active = context.active();
  const span = trace.getSpan(active);
  if (!span || !trace.isSpanContextValid(span.spanContext())) return null;
  const carrier: TraceCarrier = {};
  propagation.inject(active, carrier);
  return carrier.traceparent ? carrier : null;
}

/** The context a carrier names (the active context when it names none). */
export function contextFromCarrier(carrier: TraceCarrier | null | undefined): Context {
  return carrier ? propagation.extract(context.active(), carrier) : context.active();
}

/** Writes the active context (`traceparent`, `tracestate`) into message headers (NATS headers or any `set(name, value)`). */
export function injectInto(headers: { set(name: string, value: string): void }): void {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  for (const [name, value] of Object.entries(carrier)) headers.set(name, value);
}

/**
 * Runs `fn` in a new span (child of `parent`, else of the active context), ending it when `fn` settles: an error is
 * recorded on it and thrown on. With tracing off the span is a no-op one.
 */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  if (!current) return fn(NO_SPAN);
  const tracer = trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, options.parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** What inSpan hands over with tracing off: records nothing. */
const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Marks the span failed with the error. */
export function recordError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

export { SpanKind };
