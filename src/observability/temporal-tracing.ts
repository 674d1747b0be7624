// Tracing's Temporal side (see src/observability/tracing.ts):
//   client   StartWorkflow:<type>, SignalWorkflow:<name>, StartWorkflowUpdate:<name>… around each call, its context sent
//            to the workflow in a header (@temporalio/interceptors-opentelemetry's client interceptor)
//   workflow RunWorkflow:<type>, StartActivity:<type>, HandleSignal:<name>, HandleUpdate:<name>…: the workflow
//            interceptors of src/workflows/tracing-interceptors.ts, in every saga worker's bundle, which trace a saga
//            started with a sampled context (and a signal, update or query sent with one) without changing when any of
//            its promises settle; their spans leave through the `exporter` sink
//   activity RunActivity:<type>, child of the workflow's StartActivity span (its context comes in a header)
// The client's and the activities' interceptors are installed only when tracing is on; the workflow's are always
// bundled (a saga replays the same on any worker) and pass straight through for a saga nobody traced. A worker with
// tracing off drops at the sink whatever spans a traced saga makes there.
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions';
import type { Tracing } from './tracing';

/** The workflow interceptor modules every saga worker bundles with the workflows (bundleWorkflowCode's workflowInterceptorModules). */
export const TRACING_WORKFLOW_MODULES: string[] = [require.resolve('../workflows/tracing-interceptors')];

/** The API's Temporal client interceptors: StartWorkflow and the other calls as spans, their context sent to the workflow. */
export function clientTracingInterceptors(tracing: Tracing | undefined): WorkflowClientInterceptor[] {
  return tracing?.enabled ? [new OpenTelemetryWorkflowClientInterceptor()] : [];
}

/**
 * RunActivity:<type> around every activity attempt (outermost, so it also covers the failure metrics and the error
 * classification), and the trace ids in the activity's log attributes.
 */
export function activityTracing(tracing: Tracing | undefined): ActivityInterceptorsFactory[] {
  if (!tracing?.enabled) return [];
  return [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })];
}

/**
 * The sink the workflow interceptors export their spans through: to the process's span processor when tracing is on,
 * dropped when it is off. Not called during replay (a replayed saga exports nothing twice).
 */
export function workflowTracingSinks(tracing: Tracing | undefined): InjectedSinks<OpenTelemetrySinks> {
  if (tracing?.enabled && tracing.processor) return { exporter: makeWorkflowExporter(tracing.processor, tracing.resource) };
  return { exporter: { export: { fn: () => {}, callDuringReplay: false } } };
}
