// What the saga tells the metrics, through Temporal workflow sinks: the workflow calls these (proxySinks), the worker
// that runs it implements them (sagaMetricsSinks in src/observability/temporal.ts). A sink call is no command: it
// leaves no trace in the history, so adding or moving one never breaks the replay of a running saga. The worker does
// not call them while it replays a history (callDuringReplay is off), so a saga replayed after a worker restart or a
// cache eviction is not counted twice.
//
// Types only: the workflow bundle imports this file, and must not pull in prom-client.
import type { Sinks } from '@temporalio/workflow';

export interface SagaMetricsSinks extends Sinks {
  sagaMetrics: {
    /** The saga reached its terminal status (its duration runs from the workflow's start until now). */
    ended(status: 'COMPLETED' | 'REJECTED' | 'CANCELLED'): void;
    /** A compensation is done (`step`: what it records, e.g. STOCK_RELEASED), by its activity or by an operator's hand. */
    compensated(step: string, how: 'ran' | 'resolved-manually'): void;
    /** The saga stopped in NEEDS_ATTENTION at `step` and waits for an operator. */
    attentionEntered(phase: string, step: string): void;
    /** It no longer waits: an operator's action (retry, abort, resolved-manually), or `cancelled` by the customer. */
    attentionLeft(action: string): void;
  };
}
