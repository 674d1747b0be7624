// The workflow side of tracing (src/observability/tracing.ts): the SDK's OpenTelemetry workflow interceptors
// (@temporalio/interceptors-opentelemetry), in every saga worker's bundle whether tracing is on or off, so that how a
// saga's workflow code runs never depends on a setting (src/observability/temporal-tracing.ts). They add no command
// and no timer: a RunWorkflow span around the run, a StartActivity span around each activity's scheduling (its context
// goes to the activity in a header), HandleSignal and HandleUpdate spans. Their spans are recorded by the workflow's
// own sandboxed tracer and leave through the `exporter` sink, which is not called during replay; with tracing off the
// worker drops them there. Their span ids come from the workflow's seeded Math.random, so a replay makes the same
// ids; workflow code that drew random numbers itself would draw others than without them (the saga draws none).
//
// One change to the SDK's inbound interceptor: handleUpdate. The SDK instruments updates only in workflow tasks that
// recorded the SDK flag OpenTelemetryInterceptorsInstrumentsAllMethods, but its passthrough is still an async
// function, whose returned promise settles a few microtasks later than the handler's own. A saga recorded without
// these interceptors (before they were added) then completes an update after, not before, the commands its main code
// issues in the same workflow task (NEEDS_ATTENTION's resolveAttention followed by recordAttention): a nondeterminism
// error on replay. Here the passthrough returns the handler's own promise, as if the interceptor were not there.
// test/replay/replay.test.ts replays every recorded history with and without these interceptors.
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { Next, UpdateInput, WorkflowInboundCallsInterceptor, WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { SdkFlags } from '@temporalio/workflow/lib/flags';
import { getActivator } from '@temporalio/workflow/lib/global-attributes';

class SagaTracingInboundInterceptor extends OpenTelemetryInboundInterceptor {
  override handleUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>): Promise<unknown> {
    // The same flag the SDK checks (it records it in new workflow tasks): without it, the update is not traced.
    if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsInstrumentsAllMethods)) return next(input);
    return super.handleUpdate(input, next);
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new SagaTracingInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
