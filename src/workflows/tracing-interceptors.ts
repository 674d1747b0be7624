// The workflow side of tracing (src/observability/temporal-tracing.ts), in every saga worker's bundle. Its one rule:
// tracing never changes when a saga's promises settle, so a saga issues the same commands in the same order whether it
// is traced or not, and whether its tasks run on a cached workflow or are replayed after an eviction.
//
// Why that rule needs code of its own. The SDK's OpenTelemetry workflow interceptors wrap every handler and activity
// in async functions, so an update's (or an activity's) promise settles a few microtasks later than without them. In a
// workflow task where an update races the saga's main code (resolveAttention, then the saga's recordAttention
// activity), which command comes first then depends on how the jobs were grouped into activations, and Core groups
// them differently on a worker that replays a saga's history to run its next task (after an eviction, or with no cache)
// than on the worker that ran them live: such a saga failed on replay with a nondeterminism error ("Activity machine
// does not handle this event: WorkflowExecutionUpdateCompleted"). The interceptors below never wrap a promise: every
// handler and activity returns its own promise, and a span ends in a side chain attached to it. So:
// - a saga is traced when the request that started it carried a sampled trace context (its `RunWorkflow` span and
//   the `StartActivity` span of each activity, whose context goes to the activity in a header); an update, signal or
//   query is traced when its own request carried one. Spans leave through the `exporter` sink, which is not called
//   during replay, and their ids come from the run id and a counter, not from the workflow's Math.random (which
//   would change what workflow code that draws random numbers gets);
// - untraced, every method passes straight through, and nothing of OpenTelemetry is loaded in the workflow (the
//   modules below are required on first use): about half of the workflow thread's CPU per saga went to the SDK's
//   interceptors with tracing off (docs/performance.md).
//
// Sagas started before this change ran with the SDK's interceptors, and must replay with them: a saga records the
// patch below in its first workflow task, and one without the marker keeps the SDK's interceptors (legacyTracing).
import {
  ContinueAsNew,
  defaultPayloadConverter,
  patched,
  workflowInfo,
  type ActivateInput,
  type ActivityInput,
  type DisposeInput,
  type GetLogAttributesInput,
  type Next,
  type QueryInput,
  type SignalInput,
  type UpdateInput,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
  type WorkflowInternalsInterceptor,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { untrackPromise } from '@temporalio/workflow/lib/stack-helpers';
import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { Payload } from '@temporalio/common';

/** Recorded by every saga started since tracing leaves the workflow's timing alone; its absence selects legacyTracing. */
export const PATCH_TRACING_KEEPS_WORKFLOW_TIMING = 'tracing-keeps-workflow-timing';

/** The header the SDK's client, workflow and activity interceptors carry a trace context in. */
const TRACE_HEADER = '_tracer-data';
/** W3C traceparent: version, trace id, parent span id, flags (bit 0: sampled). */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{2})$/;

type Headers = Record<string, Payload>;

/** The SDK's interceptors, as every saga worker ran them before the patch (with the one change described below). */
function legacyTracing() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const sdk = require('@temporalio/interceptors-opentelemetry/lib/workflow') as typeof import('@temporalio/interceptors-opentelemetry/lib/workflow');
  const { SdkFlags } = require('@temporalio/workflow/lib/flags') as typeof import('@temporalio/workflow/lib/flags');
  const { getActivator } = require('@temporalio/workflow/lib/global-attributes') as typeof import('@temporalio/workflow/lib/global-attributes');
  /* eslint-enable @typescript-eslint/no-require-imports */
  // The SDK instruments updates only in workflow tasks that recorded its flag OpenTelemetryInterceptorsInstrumentsAllMethods,
  // but its passthrough is still an async function, which settles later than the handler's own promise: sagas recorded
  // before these interceptors were bundled at all (without the flag) got the handler's own promise back.
  class LegacyInbound extends sdk.OpenTelemetryInboundInterceptor {
    override handleUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>): Promise<unknown> {
      if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsInstrumentsAllMethods)) return next(input);
      return super.handleUpdate(input, next);
    }
  }
  return { inbound: new LegacyInbound(), outbound: new sdk.OpenTelemetryOutboundInterceptor(), internals: new sdk.OpenTelemetryInternalsInterceptor() };
}

/** 32-bit FNV-1a. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/** Span and trace ids from the run id and a counter: the same on every replay, and no draw from Math.random. */
class RunIdGenerator {
  private drawn = 0;
  constructor(private readonly runId: string) {}
  private hex(chars: number): string {
    let out = '';
    while (out.length < chars) out += fnv1a(`${this.runId}/${this.drawn++}`).toString(16).padStart(8, '0');
    out = out.slice(0, chars);
    return /^0+$/.test(out) ? `${out.slice(0, -1)}1` : out;
  }
  generateTraceId(): string {
    return this.hex(32);
  }
  generateSpanId(): string {
    return this.hex(16);
  }
}

/** What traced calls need, made on the first one: a tracer exporting through the sink, a context manager, W3C propagation. */
function makeSpans(runId: string) {
  /* eslint-disable @typescript-eslint/no-require-imports */
  require('@temporalio/interceptors-opentelemetry/lib/workflow/runtime'); // the globals sdk-trace-base expects (performance)
  const otel = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const { ContextManager } = require('@temporalio/interceptors-opentelemetry/lib/workflow/context-manager') as typeof import('@temporalio/interceptors-opentelemetry/lib/workflow/context-manager');
  const { SpanExporter } = require('@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter') as typeof import('@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const provider = new BasicTracerProvider({ idGenerator: new RunIdGenerator(runId) });
  provider.addSpanProcessor(new SimpleSpanProcessor(new SpanExporter()));
  const tracer: Tracer = provider.getTracer('order-saga-workflow');
  const contextManager = new ContextManager();
  const propagator = new W3CTraceContextPropagator();
  return {
    otel,
    tracer,
    contextManager,
    extract: (carrier: Record<string, string>): Context => propagator.extract(otel.ROOT_CONTEXT, carrier, otel.defaultTextMapGetter),
    inject(context: Context): Record<string, string> {
      const carrier: Record<string, string> = {};
      propagator.inject(context, carrier, otel.defaultTextMapSetter);
      return carrier;
    },
  };
}

type Spans = ReturnType<typeof makeSpans>;

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === 'function';
}

/** One saga's tracing: made by the interceptors factory when the workflow is initialized, so each saga has its own. */
class SagaTracing {
  private decided = false;
  private legacy?: ReturnType<typeof legacyTracing>;
  private spans?: Spans;

  /**
   * Reads the patch once, when the saga's first activation starts (the SDK has applied the activation's patch
   * notifications, and no job has run yet): the same place on every replay.
   */
  decide(): void {
    if (this.decided) return;
    this.decided = true;
    if (!patched(PATCH_TRACING_KEEPS_WORKFLOW_TIMING)) this.legacy = legacyTracing();
  }

  legacyInterceptors() {
    return this.legacy;
  }

  /** The context a call's headers carry, when it is sampled; undefined otherwise (the call is not traced). */
  sampledContext(headers: Headers): Context | undefined {
    const payload = headers[TRACE_HEADER];
    if (!payload) return undefined;
    let carrier: Record<string, string> | undefined;
    try {
      carrier = defaultPayloadConverter.fromPayload<Record<string, string>>(payload);
    } catch {
      return undefined;
    }
    const flags = TRACEPARENT.exec(carrier?.traceparent ?? '')?.[1];
    if (flags === undefined || (parseInt(flags, 16) & 1) === 0) return undefined;
    this.spans ??= makeSpans(workflowInfo().runId);
    return this.spans.extract(carrier!);
  }

  /** The active context when it holds a span of this saga's, i.e. inside a traced run, handler or activity call. */
  activeTracedContext(): Context | undefined {
    if (!this.spans) return undefined;
    const context = this.spans.contextManager.active();
    return this.spans.otel.trace.getSpan(context)?.isRecording() ? context : undefined;
  }

  /**
   * Runs `fn` inside a new span, child of `parent`, and returns what `fn` returned, the very same promise: the span
   * ends in a side chain (untracked, so the Web UI's stack trace does not show it), never in between.
   */
  within<T>(
    name: string,
    parent: Context,
    fn: (context: Context) => T,
    { attributes = {}, acceptable = () => false }: { attributes?: Record<string, string>; acceptable?: (error: unknown) => boolean } = {},
  ): T {
    const { otel, tracer, contextManager } = this.spans!;
    const span: Span = tracer.startSpan(name, { attributes }, parent);
    const context = otel.trace.setSpan(parent, span);
    const end = (error?: unknown) => {
      if (error === undefined || acceptable(error)) span.setStatus({ code: otel.SpanStatusCode.OK });
      else {
        span.setStatus({ code: otel.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        if (error instanceof Error) span.recordException(error);
      }
      span.end();
    };
    let result: T;
    try {
      result = contextManager.with(context, () => fn(context));
    } catch (error) {
      end(error);
      throw error;
    }
    if (isPromise(result)) untrackPromise(result.then(() => end(), (error: unknown) => end(error ?? new Error('rejected'))));
    else end();
    return result;
  }

  /** Headers for an activity scheduled under `context`: the SDK's header, read by the activity's interceptor. */
  headersWith(headers: Headers, context: Context): Headers {
    return { ...headers, [TRACE_HEADER]: defaultPayloadConverter.toPayload(this.spans!.inject(context))! };
  }

  /** The trace ids the SDK's interceptors add to a workflow's log lines, when the active context is traced. */
  logAttributes(): Record<string, unknown> {
    const context = this.activeTracedContext();
    if (!context) return {};
    const { traceId, spanId, traceFlags } = this.spans!.otel.trace.getSpanContext(context)!;
    return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}` };
  }

  dispose(): void {
    this.spans?.contextManager.disable();
  }
}

class TracingInbound implements WorkflowInboundCallsInterceptor {
  constructor(private readonly tracing: SagaTracing) {}

  execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.inbound.execute(input, next);
    const parent = this.tracing.sampledContext(input.headers);
    if (!parent) return next(input);
    return this.tracing.within(`RunWorkflow:${workflowInfo().workflowType}`, parent, () => next(input), { acceptable: (error) => error instanceof ContinueAsNew });
  }

  handleSignal(input: SignalInput, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>): Promise<void> {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.inbound.handleSignal(input, next);
    const parent = this.tracing.sampledContext(input.headers);
    if (!parent) return next(input);
    return this.tracing.within(`HandleSignal:${input.signalName}`, parent, () => next(input));
  }

  handleUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>): Promise<unknown> {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.inbound.handleUpdate(input, next);
    const parent = this.tracing.sampledContext(input.headers);
    if (!parent) return next(input);
    return this.tracing.within(`HandleUpdate:${input.name}`, parent, () => next(input), { attributes: { temporalUpdateId: input.updateId } });
  }

  validateUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'validateUpdate'>): void {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.inbound.validateUpdate(input, next);
    const parent = this.tracing.sampledContext(input.headers);
    if (!parent) return next(input);
    return this.tracing.within(`ValidateUpdate:${input.name}`, parent, () => next(input), { attributes: { temporalUpdateId: input.updateId } });
  }

  handleQuery(input: QueryInput, next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>): Promise<unknown> {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.inbound.handleQuery(input, next);
    const parent = this.tracing.sampledContext(input.headers);
    if (!parent) return next(input);
    return this.tracing.within(`HandleQuery:${input.queryName}`, parent, () => next(input));
  }
}

class TracingOutbound implements WorkflowOutboundCallsInterceptor {
  constructor(private readonly tracing: SagaTracing) {}

  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.outbound.scheduleActivity(input, next);
    const parent = this.tracing.activeTracedContext();
    if (!parent) return next(input);
    return this.tracing.within(`StartActivity:${input.activityType}`, parent, (context) => next({ ...input, headers: this.tracing.headersWith(input.headers, context) }));
  }

  getLogAttributes(input: GetLogAttributesInput, next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>): Record<string, unknown> {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return legacy.outbound.getLogAttributes(input, next);
    return next({ ...this.tracing.logAttributes(), ...input });
  }
  // The saga uses no child workflow, local activity, external signal, Nexus operation or continue-as-new; the SDK's
  // interceptors traced those, and are the model if it ever does.
}

class TracingInternals implements WorkflowInternalsInterceptor {
  constructor(private readonly tracing: SagaTracing) {}

  activate(input: ActivateInput, next: Next<WorkflowInternalsInterceptor, 'activate'>): void {
    this.tracing.decide();
    return next(input);
  }

  dispose(input: DisposeInput, next: Next<WorkflowInternalsInterceptor, 'dispose'>): void {
    const legacy = this.tracing.legacyInterceptors();
    if (legacy) return void legacy.internals.dispose(input, next);
    this.tracing.dispose();
    return next(input);
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  const tracing = new SagaTracing();
  return { inbound: [new TracingInbound(tracing)], outbound: [new TracingOutbound(tracing)], internals: [new TracingInternals(tracing)] };
};
