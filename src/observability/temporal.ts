// The metrics' Temporal side: the activity interceptor that counts failed attempts, the sinks that count what the
// saga's workflow reports (src/observability/saga-sinks.ts), and the SDK's own runtime metrics.
import { ApplicationFailure } from '@temporalio/common';
import { Runtime, type ActivityInboundCallsInterceptor, type ActivityInterceptorsFactory, type InjectedSinks, type RuntimeOptions } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { freePort } from '../local-stack/free-port';
import type { WorkerMetrics } from './metrics';
import type { SagaMetricsSinks } from './saga-sinks';

/** Whether Temporal tries a failed attempt again: everything but a non-retryable ApplicationFailure (no retry policy here lists error types). */
export function failureKind(error: unknown): 'retryable' | 'non_retryable' {
  return error instanceof ApplicationFailure && error.nonRetryable ? 'non_retryable' : 'retryable';
}

/** The error's type: an ApplicationFailure's `type` (a refusal, UnexpectedActivityError), else its class name. */
function errorType(error: unknown): string {
  if (error instanceof ApplicationFailure && error.type) return error.type;
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Counts every failed activity attempt in order_saga_activity_failures_total. Register it first (outermost), so that
 * it sees each failure as Temporal will: after the error classification turned a repeated bug into a non-retryable
 * UnexpectedActivityError.
 */
export function activityFailureMetrics(worker: Pick<WorkerMetrics, 'activityFailures'>): ActivityInterceptorsFactory {
  return (ctx) => {
    const inbound: ActivityInboundCallsInterceptor = {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (error) {
          worker.activityFailures.inc({ activity_type: ctx.info.activityType, kind: failureKind(error), error_type: errorType(error) });
          throw error;
        }
      },
    };
    return { inbound };
  };
}

/** Milliseconds since the epoch of a Date that may come from the workflow's context (another realm) or as a string. */
const epochMs = (date: Date | string | number): number => new Date(date as never).getTime();

/**
 * The worker's side of the saga's sinks. Not called during replay (the default, callDuringReplay false), so a saga
 * replayed after a restart or a cache eviction is not counted again; a workflow task that fails and is retried may
 * repeat its calls (Temporal's documented at-least-once of sinks), which the saga's few calls make rare.
 */
export function sagaMetricsSinks(worker: WorkerMetrics): InjectedSinks<SagaMetricsSinks> {
  return {
    sagaMetrics: {
      ended: {
        fn: (info: WorkflowInfo, status) => {
          worker.ordersEnded.inc({ status });
          worker.orderDuration.observe({ status }, Math.max(0, Date.now() - epochMs(info.startTime)) / 1000);
        },
      },
      compensated: { fn: (_info, step, how) => worker.compensations.inc({ step, how }) },
      attentionEntered: {
        fn: (_info, phase, step) => {
          worker.ordersNeedingAttention.inc();
          worker.attentionEntered.inc({ phase, step });
        },
      },
      attentionLeft: {
        fn: (_info, action) => {
          worker.ordersNeedingAttention.dec();
          worker.attentionLeft.inc({ action });
        },
      },
    },
  };
}

/**
 * Installs the Temporal Runtime with its Core metrics (pollers, task slots, schedule-to-start and end-to-end
 * latencies, sticky cache: the SDK's `temporal_*` metrics) exported in the Prometheus format on a private port,
 * 127.0.0.1 and a free one, and answers that endpoint's URL. The worker's /metrics fetches it at each scrape and
 * appends it (src/worker/service-api.ts), so one scrape target per process gives both the saga's metrics and the
 * SDK's, on the port the process already serves, and nothing else needs opening in a container. Names and units are
 * Core's defaults (e.g. temporal_activity_schedule_to_start_latency in ms), which Temporal's SDK dashboards expect.
 *
 * The port is free when chosen, but Core binds it a moment later: if that fails, another is tried, and after three
 * failures the Runtime is installed without the exporter (with a warning) rather than not starting the worker.
 */
export async function installRuntimeWithMetrics(options: RuntimeOptions, warn: (line: string) => void = console.warn): Promise<string | undefined> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const bindAddress = `127.0.0.1:${await freePort()}`;
    try {
      Runtime.install({ ...options, telemetryOptions: { ...options.telemetryOptions, metrics: { prometheus: { bindAddress } } } });
      return `http://${bindAddress}/metrics`;
    } catch (error) {
      lastError = error;
    }
  }
  warn(`the Temporal SDK's runtime metrics are off: could not export them on a local port (${String(lastError)})`);
  Runtime.install(options);
  return undefined;
}

/** The Temporal runtime's metrics from its exporter at `url`, as text to append to a scrape. */
export async function fetchRuntimeMetrics(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.text();
}
