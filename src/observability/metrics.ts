// Prometheus metrics (prom-client), served on GET /metrics by the API (src/api/app.ts) and by every worker process
// (src/worker/service-api.ts). Every API server and every worker set has a Registry of its own, never prom-client's
// global one, so that several of them in one process (the tests, `npm start`) each count only their own.
//
//   API       order_saga_orders_started_total{start}             POST /orders answered: new saga, or idempotent replay
//             order_saga_http_requests_total{method,route,status} and order_saga_http_request_duration_seconds
//             order_saga_consumer_pending_events{stream,consumer} the query views' consumers (what GET /orders lags)
//   workers   order_saga_orders_ended_total{status}               sagas that reached COMPLETED, REJECTED or CANCELLED
//             order_saga_order_duration_seconds{status}           from the workflow's start to that status
//             order_saga_compensations_total{step,how}            compensations done (ran, or resolved-manually)
//             order_saga_orders_needing_attention                 sagas waiting for an operator (entered − left)
//             order_saga_attention_entered_total{phase,step}, order_saga_attention_left_total{action}
//             order_saga_activity_failures_total{activity_type,kind,error_type}
//             order_saga_outbox_backlog_events{service}, order_saga_outbox_oldest_unpublished_age_seconds{service},
//             order_saga_replication_slot_lag_bytes{service,slot}, order_saga_replication_slot_active{service,slot}
//             order_saga_consumer_pending_events{stream,consumer} the orders service's consumers of the other streams
//   both      order_saga_metrics_source_up{source}                1 if the last scrape could read that source
//             process_* and nodejs_* (prom-client's default metrics): the process's CPU, resident memory, heap,
//             memory outside the heap (external, array buffers), event-loop lag and GC, under their usual names
//
// The saga's own facts (ended, compensations, attention, duration) come from its workflow through sinks
// (src/observability/saga-sinks.ts) and are counted by the worker that ran the workflow task; the gauges of the
// event path are read at scrape time from what the process hosts, and a source that fails or is slow (2 s) is
// reported by order_saga_metrics_source_up = 0 without failing the scrape.
import type { NatsConnection } from '@nats-io/nats-core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { consumerLag } from '../events/consumer';
import { outboxStatusOf, type RunQuery } from '../events/relay-status';

export const METRIC_PREFIX = 'order_saga_';
/** The Prometheus text exposition format, version 0.0.4. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** How long a scrape waits for one source (a database, NATS, the Temporal runtime's exporter). */
const SOURCE_TIMEOUT_MS = 2_000;

/** Saga durations: seconds for an order that is refused at once, up to days for one waiting for a manager. */
const SAGA_DURATION_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1_800, 3_600, 3 * 3_600, 6 * 3_600, 12 * 3_600, 24 * 3_600, 48 * 3_600];
/** HTTP durations: milliseconds for a read, up to a minute for POST /orders?wait=60. */
const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

interface Source {
  name: string;
  collect(): Promise<void>;
  /** Clears what `collect` sets, so that a failed source leaves no stale value behind. */
  clear?(): void;
}

/** A registry of its own, the sources it reads at scrape time, and texts appended to it (the Temporal runtime's). */
export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly sources: Source[] = [];
  private readonly appendices: { name: string; text: () => Promise<string> }[] = [];
  private readonly sourceUp: Gauge<'source'>;

  constructor() {
    // Where a process's memory goes (heap or native) and how busy its event loop is: per process, so two registries
    // in one process (npm start's API and workers) both show that process.
    collectDefaultMetrics({ register: this.registry });
    this.sourceUp = this.gauge('metrics_source_up', 'Whether the last scrape could read this source (1) or not (0): a database, NATS, the Temporal runtime.', ['source']);
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name: METRIC_PREFIX + name, help, labelNames, buckets, registers: [this.registry] });
  }

  /** Reads `source` at every scrape, before rendering. */
  addSource(source: Source): void {
    this.sources.push(source);
  }

  /** Appends another exposition (its metric names must not clash with these) to every scrape. */
  addAppendix(name: string, text: () => Promise<string>): void {
    this.appendices.push({ name, text });
  }

  /** Reads every source (none can fail the scrape), then renders the registry and the appendices. */
  async render(): Promise<string> {
    const up = (name: string, ok: boolean) => this.sourceUp.set({ source: name }, ok ? 1 : 0);
    await Promise.all(
      this.sources.map(async (source) => {
        try {
          await within(SOURCE_TIMEOUT_MS, source.collect());
          up(source.name, true);
        } catch {
          source.clear?.();
          up(source.name, false);
        }
      }),
    );
    const appended = await Promise.all(
      this.appendices.map(async ({ name, text }) => {
        try {
          const body = await within(SOURCE_TIMEOUT_MS, text());
          up(name, true);
          return body;
        } catch {
          up(name, false);
          return '';
        }
      }),
    );
    const own = await this.registry.metrics();
    return [own, ...appended.filter((body) => body.trim() !== '')].map((body) => (body.endsWith('\n') ? body : `${body}\n`)).join('');
  }
}

/** order_saga_consumer_pending_events{stream,consumer}, read from NATS at each scrape. */
function watchConsumers(metrics: MetricsRegistry, gauge: Gauge<'stream' | 'consumer'>, nats: NatsConnection, consumers: readonly { stream: string; name: string }[]): void {
  for (const { stream, name } of consumers) {
    metrics.addSource({
      name: `consumer:${name}`,
      collect: async () => gauge.set({ stream, consumer: name }, await consumerLag(nats, stream, name)),
      clear: () => gauge.remove({ stream, consumer: name }),
    });
  }
}

const consumerPendingGauge = (metrics: MetricsRegistry) =>
  metrics.gauge('consumer_pending_events', 'Events on the stream a durable consumer has not handled yet (pending plus awaiting its ack), read at scrape time.', ['stream', 'consumer']);

// --- the API ---------------------------------------------------------------------------------------------------

export interface ApiMetrics {
  metrics: MetricsRegistry;
  ordersStarted: Counter<'start'>;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
}

/** The API's metrics; with `nats`, also the lag of the query views' consumers (`consumers`: their stream and name). */
export function createApiMetrics(options: { nats?: NatsConnection; consumers?: readonly { stream: string; name: string }[] } = {}): ApiMetrics {
  const metrics = new MetricsRegistry();
  const api: ApiMetrics = {
    metrics,
    ordersStarted: metrics.counter(
      'orders_started_total',
      'Orders accepted by POST /orders: start="new" started a saga, start="idempotent_replay" answered a repeated Idempotency-Key with the order it already names.',
      ['start'],
    ),
    httpRequests: metrics.counter('http_requests_total', 'HTTP requests answered by the API, by method, route template and status code.', ['method', 'route', 'status']),
    httpDuration: metrics.histogram(
      'http_request_duration_seconds',
      'Time from receiving an HTTP request to sending its answer, by method, route template and status code.',
      ['method', 'route', 'status'],
      HTTP_DURATION_BUCKETS,
    ),
  };
  if (options.nats && options.consumers?.length) watchConsumers(metrics, consumerPendingGauge(metrics), options.nats, options.consumers);
  return api;
}

// --- the workers -----------------------------------------------------------------------------------------------

export interface WorkerMetrics {
  metrics: MetricsRegistry;
  ordersEnded: Counter<'status'>;
  orderDuration: Histogram<'status'>;
  compensations: Counter<'step' | 'how'>;
  ordersNeedingAttention: Gauge;
  attentionEntered: Counter<'phase' | 'step'>;
  attentionLeft: Counter<'action'>;
  activityFailures: Counter<'activity_type' | 'kind' | 'error_type'>;
  outboxBacklog: Gauge<'service'>;
  outboxOldestAge: Gauge<'service'>;
  slotLag: Gauge<'service' | 'slot'>;
  slotActive: Gauge<'service' | 'slot'>;
  consumerPending: Gauge<'stream' | 'consumer'>;
}

export function createWorkerMetrics(): WorkerMetrics {
  const metrics = new MetricsRegistry();
  return {
    metrics,
    ordersEnded: metrics.counter('orders_ended_total', 'Sagas that reached a terminal status (COMPLETED, REJECTED, CANCELLED), counted by the saga worker that ran them.', ['status']),
    orderDuration: metrics.histogram(
      'order_duration_seconds',
      "Time from a saga's start to its terminal status, by that status (waits for a manager or an operator included).",
      ['status'],
      SAGA_DURATION_BUCKETS,
    ),
    compensations: metrics.counter('compensations_total', 'Compensations done, by what they record (step) and how: ran (its activity) or resolved-manually (by an operator).', ['step', 'how']),
    ordersNeedingAttention: metrics.gauge(
      'orders_needing_attention',
      "Sagas waiting in NEEDS_ATTENTION for an operator: entered minus left, as seen by this process's saga worker (sum over every saga worker; a restart resets it; the OrderStatus search attribute is the record).",
    ),
    attentionEntered: metrics.counter('attention_entered_total', 'Times a saga stopped in NEEDS_ATTENTION, by phase (FORWARD, COMPENSATION) and the step that failed.', ['phase', 'step']),
    attentionLeft: metrics.counter('attention_left_total', "Times a saga left NEEDS_ATTENTION, by the operator's action (retry, abort, resolved-manually) or cancelled.", ['action']),
    activityFailures: metrics.counter(
      'activity_failures_total',
      'Activity attempts that failed, by activity type, kind (retryable: Temporal tries again; non_retryable: a business refusal or an error the worker gave up on) and error type.',
      ['activity_type', 'kind', 'error_type'],
    ),
    outboxBacklog: metrics.gauge('outbox_backlog_events', "Outbox rows of the service's database not published to its stream yet, read at scrape time.", ['service']),
    outboxOldestAge: metrics.gauge('outbox_oldest_unpublished_age_seconds', 'Age of the oldest unpublished outbox row (0 when there is none), read at scrape time.', ['service']),
    slotLag: metrics.gauge('replication_slot_lag_bytes', "Write-ahead log the WAL relay's replication slot holds back (written since the position the relay last confirmed).", ['service', 'slot']),
    slotActive: metrics.gauge('replication_slot_active', "Whether a relay streams from the service database's replication slot right now (1) or not (0).", ['service', 'slot']),
    consumerPending: consumerPendingGauge(metrics),
  };
}

/** The outbox of `service`'s database (on the pool `query` runs on), read at each scrape. */
export function watchOutbox(worker: WorkerMetrics, service: string, query: RunQuery): void {
  let slots: string[] = [];
  const clearSlots = () => {
    for (const slot of slots) {
      worker.slotLag.remove({ service, slot });
      worker.slotActive.remove({ service, slot });
    }
    slots = [];
  };
  worker.metrics.addSource({
    name: `outbox:${service}`,
    collect: async () => {
      const status = await outboxStatusOf(query);
      worker.outboxBacklog.set({ service }, status.backlog);
      worker.outboxOldestAge.set({ service }, (status.oldestUnpublishedAgeMs ?? 0) / 1000);
      clearSlots();
      if (status.slot) {
        const slot = status.slot.name;
        slots = [slot];
        worker.slotActive.set({ service, slot }, status.slot.active ? 1 : 0);
        if (status.slot.lagBytes !== null) worker.slotLag.set({ service, slot }, status.slot.lagBytes);
      }
    },
    clear: () => {
      worker.outboxBacklog.remove({ service });
      worker.outboxOldestAge.remove({ service });
      clearSlots();
    },
  });
}

/** The lag of durable consumers this process runs, read from NATS at each scrape. */
export function watchWorkerConsumers(worker: WorkerMetrics, nats: NatsConnection, consumers: readonly { stream: string; name: string }[]): void {
  watchConsumers(worker.metrics, worker.consumerPending, nats, consumers);
}
