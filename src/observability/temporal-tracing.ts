// Tracing's Temporal side (see src/observability/tracing.ts), from @temporalio/interceptors-opentelemetry:
//   client   StartWorkflow:<type>, SignalWorkflow:<name>, StartWorkflowUpdate:<name>… around each call, its context sent
//            to the workflow in a header
//   workflow RunWorkflow:<type>, StartActivity:<type>, HandleSignal:<name>, HandleUpdate:<name>…: the workflow
//            interceptors (src/workflows/tracing-interceptors.ts) in the workflow bundle, their spans exported by the
//            `exporter` sink
//   activity RunActivity:<type>, child of the workflow's StartActivity span (its context comes in a header)
// The client's and the activities' interceptors are installed only when tracing is on. The workflow interceptors are
// in every saga worker's bundle, on or off: they change when the workflow's promises settle (by a few microtasks), so
// a saga must replay with the same interceptors it ran with, whatever a worker's tracing setting. Off, their spans are
// dropped at the sink (a few small sink calls per workflow task).
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
