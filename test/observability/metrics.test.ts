// Prometheus metrics: the registries, the activity-failure interceptor and the saga's sinks on their own; then the
// whole system (TestStack), whose API and workers are scraped before and after real orders; then a `npm run worker`
// process hosting the saga alone, which must serve /metrics too, with the Temporal SDK's runtime metrics appended.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type { WorkflowInfo } from '@temporalio/workflow';
import express from 'express';
import { ManagedProcess } from '../../scripts/chaos/processes';
import { freePort } from '../../src/local-stack/free-port';
import { createApiMetrics, createWorkerMetrics, METRICS_CONTENT_TYPE, MetricsRegistry } from '../../src/observability/metrics';
import { httpMetrics, metricsHandler } from '../../src/observability/http';
import { activityFailureMetrics, sagaMetricsSinks } from '../../src/observability/temporal';
import { UNEXPECTED_ERROR_TYPE } from '../../src/worker/error-classification';
import { TestStack, type As, type Json } from '../support/stack';

// --- the text format ---------------------------------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  samples: Sample[];
  /** HELP text by metric family. */
  help: Map<string, string>;
  /** TYPE by metric family. */
  types: Map<string, string>;
}

const unescape = (text: string) => text.replace(/\\(["\\n])/g, (_match, char: string) => (char === 'n' ? '\n' : char));

/** Parses the Prometheus text exposition format (0.0.4); throws on a line it cannot read. */
function parsePrometheus(text: string): Scrape {
  const scrape: Scrape = { samples: [], help: new Map(), types: new Map() };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? scrape.help : scrape.types).set(meta[2], meta[1] === 'HELP' ? unescape(meta[3]) : meta[3]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    assert.ok(sample, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    let consumed = 0;
    for (let match = labelPattern.exec(sample[2] ?? ''); match; match = labelPattern.exec(sample[2] ?? '')) {
      labels[match[1]] = unescape(match[2]);
      consumed += match[0].length;
    }
    assert.equal(consumed, (sample[2] ?? '').length, `unreadable labels in: ${line}`);
    const value = sample[3] === '+Inf' ? Infinity : sample[3] === '-Inf' ? -Infinity : Number(sample[3]);
    // Prometheus reads NaN in any case (prom-client writes `Nan` for a summary with no observation yet).
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(sample[3]), `not a value in: ${line}`);
    scrape.samples.push({ name: sample[1], labels, value });
  }
  return scrape;
}

/** The sum of the samples of `name` whose labels include `labels` (0 if there is none). */
function total(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return scrape.samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

function series(scrape: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  return scrape.samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
}

async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(text);
}

/** Retries `check` until it passes (what the workers count may land a moment after the API shows it), else fails with its last error. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

// --- units -------------------------------------------------------------------------------------------------------

describe('metrics: registries, the activity-failure interceptor and the saga sinks', function () {
  const fakeContext = (activityType: string) => ({ info: { activityType } }) as never;
  const input = { args: [], headers: {} } as never;

  it('counts each failed attempt by activity type, kind and error type, and rethrows it unchanged', async function () {
    const worker = createWorkerMetrics();
    const execute = (activityType: string, next: () => Promise<unknown>) => activityFailureMetrics(worker)(fakeContext(activityType)).inbound!.execute!(input, next);

    assert.equal(await execute('priceOrder', async () => 'priced'), 'priced');
    const transient = Object.assign(new Error('connection refused'), { name: 'InjectedFault' });
    await assert.rejects(execute('reserveStock', () => Promise.reject(transient)), (error) => error === transient);
    await assert.rejects(execute('reserveStock', () => Promise.reject(transient)));
    const refusal = ApplicationFailure.create({ type: 'OutOfStock', message: 'out of stock', nonRetryable: true });
    await assert.rejects(execute('reserveStock', () => Promise.reject(refusal)), (error) => error === refusal);
    const bug = ApplicationFailure.create({ type: UNEXPECTED_ERROR_TYPE, message: 'gave up', nonRetryable: true });
    await assert.rejects(execute('closeOrder', () => Promise.reject(bug)));
    await assert.rejects(execute('voidPayment', () => Promise.reject(ApplicationFailure.retryable('later', 'ProviderBusy'))));

    const scraped = parsePrometheus(await worker.metrics.render());
    const failures = (labels: Record<string, string>) => total(scraped, 'order_saga_activity_failures_total', labels);
    assert.equal(failures({}), 5, 'a success is no failure');
    assert.equal(failures({ activity_type: 'reserveStock', kind: 'retryable', error_type: 'InjectedFault' }), 2);
    assert.equal(failures({ activity_type: 'reserveStock', kind: 'non_retryable', error_type: 'OutOfStock' }), 1);
    assert.equal(failures({ activity_type: 'closeOrder', kind: 'non_retryable', error_type: UNEXPECTED_ERROR_TYPE }), 1);
    assert.equal(failures({ activity_type: 'voidPayment', kind: 'retryable', error_type: 'ProviderBusy' }), 1);
  });

  it('counts what the saga reports through its sinks, with its duration from the workflow start', async function () {
    const worker = createWorkerMetrics();
    const { sagaMetrics } = sagaMetricsSinks(worker);
    const info = (secondsAgo: number) => ({ startTime: new Date(Date.now() - secondsAgo * 1000) }) as WorkflowInfo;
    await sagaMetrics.attentionEntered.fn(info(1), 'FORWARD', 'reserveStock');
    await sagaMetrics.attentionEntered.fn(info(1), 'COMPENSATION', 'voidPayment');
    await sagaMetrics.attentionLeft.fn(info(1), 'retry');
    await sagaMetrics.compensated.fn(info(1), 'STOCK_RELEASED', 'ran');
    await sagaMetrics.ended.fn(info(90), 'REJECTED');
    assert.ok(!sagaMetrics.ended.callDuringReplay, 'never called while a history is replayed');

    const scraped = parsePrometheus(await worker.metrics.render());
    assert.equal(total(scraped, 'order_saga_orders_needing_attention'), 1, 'entered twice, left once');
    assert.equal(total(scraped, 'order_saga_attention_entered_total', { phase: 'COMPENSATION', step: 'voidPayment' }), 1);
    assert.equal(total(scraped, 'order_saga_attention_left_total', { action: 'retry' }), 1);
    assert.equal(total(scraped, 'order_saga_compensations_total', { step: 'STOCK_RELEASED', how: 'ran' }), 1);
    assert.equal(total(scraped, 'order_saga_orders_ended_total', { status: 'REJECTED' }), 1);
    assert.equal(total(scraped, 'order_saga_order_duration_seconds_count', { status: 'REJECTED' }), 1);
    const seconds = total(scraped, 'order_saga_order_duration_seconds_sum', { status: 'REJECTED' });
    assert.ok(seconds >= 90 && seconds < 100, `duration ${seconds} s`);
    assert.equal(total(scraped, 'order_saga_order_duration_seconds_bucket', { status: 'REJECTED', le: '60' }), 0);
    assert.equal(total(scraped, 'order_saga_order_duration_seconds_bucket', { status: 'REJECTED', le: '120' }), 1);
  });

  it('labels HTTP requests by route template, also when refused before their route, and never throws after the answer', async function () {
    const api = createApiMetrics();
    const app = express();
    app.use(httpMetrics(api));
    app.get('/metrics', metricsHandler(api.metrics));
    // Like the API's authentication: answers before any route for whoever has no key.
    app.use((req, res, next) => (req.get('x-key') === 'yes' ? next() : void res.status(401).end()));
    app.get('/things/:thingId', (req, res) => void res.json({ id: req.params.thingId }));
    app.post('/orders', (req, res) => void res.status(202).set('Idempotent-Replayed', req.get('x-replay') ?? 'false').end());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const status = async (method: string, url: string, headers: Record<string, string> = {}) => (await fetch(`${base}${url}`, { method, headers })).status;
      assert.equal(await status('GET', '/things/1', { 'x-key': 'yes' }), 200);
      assert.equal(await status('GET', '/things/2', { 'x-key': 'yes' }), 200);
      assert.equal(await status('GET', '/things/3'), 401);
      assert.equal(await status('GET', '/things/%E0%A4'), 401, 'a path whose parameter cannot be decoded');
      assert.equal(await status('GET', '/elsewhere', { 'x-key': 'yes' }), 404);
      assert.equal(await status('POST', '/orders', { 'x-key': 'yes' }), 202);
      assert.equal(await status('POST', '/orders', { 'x-key': 'yes', 'x-replay': 'true' }), 202);
      const scraped = await scrape(`${base}/metrics`);
      const requests = (labels: Record<string, string>) => total(scraped, 'order_saga_http_requests_total', labels);
      assert.equal(requests({ method: 'GET', route: '/things/:thingId', status: '200' }), 2);
      assert.equal(requests({ method: 'GET', route: '/things/:thingId', status: '401' }), 1);
      assert.equal(requests({ method: 'GET', route: 'unmatched', status: '401' }), 1);
      assert.equal(requests({ method: 'GET', route: 'unmatched', status: '404' }), 1);
      assert.equal(total(scraped, 'order_saga_http_request_duration_seconds_count', { route: '/things/:thingId' }), 3);
      assert.equal(total(scraped, 'order_saga_orders_started_total', { start: 'new' }), 1);
      assert.equal(total(scraped, 'order_saga_orders_started_total', { start: 'idempotent_replay' }), 1);
      assert.equal(scraped.types.get('order_saga_http_request_duration_seconds'), 'histogram');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('keeps every registry apart, and a failing or hanging source out of the scrape', async function () {
    this.timeout(10_000);
    const [one, two] = [createWorkerMetrics(), createWorkerMetrics()];
    one.ordersEnded.inc({ status: 'COMPLETED' });
    assert.equal(total(parsePrometheus(await two.metrics.render()), 'order_saga_orders_ended_total'), 0);
    assert.equal(total(parsePrometheus(await one.metrics.render()), 'order_saga_orders_ended_total'), 1);
    assert.equal(total(parsePrometheus(await createApiMetrics().metrics.render()), 'order_saga_orders_ended_total'), 0, 'the API has no such metric');

    const metrics = new MetricsRegistry();
    const gauge = metrics.gauge('test_value', 'a value read at scrape time', ['source']);
    let failing = false;
    metrics.addSource({
      name: 'flaky',
      collect: async () => {
        if (failing) throw new Error('database unreachable');
        gauge.set({ source: 'flaky' }, 7);
      },
      clear: () => gauge.remove({ source: 'flaky' }),
    });
    metrics.addSource({ name: 'hanging', collect: () => new Promise(() => {}) });
    metrics.addAppendix('runtime', async () => '# HELP temporal_test a metric of the runtime\n# TYPE temporal_test gauge\ntemporal_test 3\n');
    const started = Date.now();
    let scraped = parsePrometheus(await metrics.render());
    assert.ok(Date.now() - started < 5_000, 'a hanging source is given up after its timeout');
    assert.equal(total(scraped, 'order_saga_test_value', { source: 'flaky' }), 7);
    assert.equal(total(scraped, 'order_saga_metrics_source_up', { source: 'flaky' }), 1);
    assert.equal(total(scraped, 'order_saga_metrics_source_up', { source: 'hanging' }), 0);
    assert.equal(total(scraped, 'temporal_test'), 3, 'the appended exposition');
    assert.equal(scraped.help.get('order_saga_test_value'), 'a value read at scrape time');
    failing = true;
    scraped = parsePrometheus(await metrics.render());
    assert.equal(series(scraped, 'order_saga_test_value').length, 0, 'no stale value from a failed source');
    assert.equal(total(scraped, 'order_saga_metrics_source_up', { source: 'flaky' }), 0);
    assert.equal(METRICS_CONTENT_TYPE.split(';')[0], 'text/plain');
  });
});

// --- the whole system --------------------------------------------------------------------------------------------

describe('metrics of the API and the workers (whole system)', function () {
  this.timeout(240_000);
  let system: TestStack;
  let apiMetricsUrl: string;
  let workerMetricsUrl: string;

  before(async function () {
    system = await TestStack.start('metrics', {
      // The first attempt of every scheduleShipment fails (retryable); recordApproval fails like a bug, twice, which
      // after UNEXPECTED_ERROR_MAX_ATTEMPTS (2) stops its saga in NEEDS_ATTENTION.
      FAULT_INJECTION: 'scheduleShipment:fail-first=1;recordApproval:broken=2',
      UNEXPECTED_ERROR_MAX_ATTEMPTS: '2',
    });
    apiMetricsUrl = `${system.stack.apiUrl}/metrics`;
    workerMetricsUrl = `${system.stack.workers!.serviceApi!.url}/metrics`;
  });

  after(async function () {
    await system?.stop();
  });

  const http = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}, as?: As) => system.http(method, url, body, headers, as);

  async function place(order: Json, headers: Record<string, string> = {}): Promise<string> {
    const response = await http('POST', '/orders', order, headers);
    assert.equal(response.status, 202, response.text);
    return response.body.orderId as string;
  }

  /** Waits for the saga's end, and answers its final state. */
  async function ended(orderId: string): Promise<Json> {
    return (await system.client.workflow.getHandle(orderId).result()) as Json;
  }

  it('serves /metrics without an API key, in the text format, every metric with its help text', async function () {
    const [api, worker] = await Promise.all([scrape(apiMetricsUrl), scrape(workerMetricsUrl)]);
    for (const [scraped, names] of [
      [api, ['order_saga_orders_started_total', 'order_saga_http_requests_total', 'order_saga_http_request_duration_seconds', 'order_saga_consumer_pending_events']],
      [
        worker,
        [
          'order_saga_orders_ended_total',
          'order_saga_order_duration_seconds',
          'order_saga_compensations_total',
          'order_saga_orders_needing_attention',
          'order_saga_activity_failures_total',
          'order_saga_outbox_backlog_events',
          'order_saga_replication_slot_lag_bytes',
          'order_saga_consumer_pending_events',
        ],
      ],
    ] as const) {
      for (const name of names) assert.ok((scraped.help.get(name) ?? '').length > 10, `${name} has a help text`);
    }
    // The process itself, under prom-client's usual names: resident memory, and how much of it is the JavaScript heap.
    for (const scraped of [api, worker]) {
      for (const name of ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes']) {
        assert.ok(total(scraped, name) > 0, `${name} is reported`);
      }
      assert.equal(series(scraped, 'nodejs_eventloop_lag_seconds').length, 1);
    }
    // The event path, read at scrape time from what each side hosts.
    for (const service of ['orders', 'inventory', 'payments', 'shipping']) {
      assert.equal(series(worker, 'order_saga_outbox_backlog_events', { service }).length, 1, `the ${service} outbox`);
      assert.equal(total(worker, 'order_saga_metrics_source_up', { source: `outbox:${service}` }), 1);
      if (system.config.events.relayMode === 'wal') {
        const [lag] = series(worker, 'order_saga_replication_slot_lag_bytes', { service });
        assert.ok(lag && lag.value >= 0 && lag.labels.slot === `outbox_relay_metrics_${service}`, JSON.stringify(lag));
      }
      assert.equal(series(api, 'order_saga_consumer_pending_events', { consumer: `query-${service}` }).length, 1, `the projector's query-${service}`);
    }
    for (const service of ['inventory', 'payments', 'shipping']) {
      assert.equal(series(worker, 'order_saga_consumer_pending_events', { consumer: `orders-${service}` }).length, 1, `the orders service's orders-${service}`);
    }
    // Neither /metrics nor anything else of the workers' port needs a key; the rest of the API still does.
    assert.equal((await http('GET', '/orders', undefined, {}, 'anonymous')).status, 401);
  });

  it('counts orders, their ends, compensations, durations, activity failures and NEEDS_ATTENTION', async function () {
    const [apiBefore, workerBefore] = await Promise.all([scrape(apiMetricsUrl), scrape(workerMetricsUrl)]);

    // A: completes; placed twice with the same Idempotency-Key (a new start, then a replay); scheduleShipment fails once.
    const orderA = { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] };
    const key = `metrics-${Date.now()}`;
    const a = await place(orderA, { 'Idempotency-Key': key });
    const replay = await http('POST', '/orders', orderA, { 'Idempotency-Key': key });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true', replay.text);
    assert.equal(replay.body.orderId, a);
    await system.waitForStatus(a, 'AWAITING_PAYMENT_CONFIRMATION');
    await system.providerDecides(a, 'CONFIRMED');
    // B: declined by the bank, compensated. C: refused by the payments service (no credit), compensated.
    const b = await place({ customerId: 'cust-alice', lines: [{ sku: 'MN-003', quantity: 1 }] });
    await system.waitForStatus(b, 'AWAITING_PAYMENT_CONFIRMATION');
    await system.providerDecides(b, 'DECLINED');
    const c = await place({ customerId: 'cust-carol', lines: [{ sku: 'MS-002', quantity: 1 }] });
    // D: above the approval threshold; approved, recordApproval then fails for good: NEEDS_ATTENTION, then aborted.
    const d = await place({ customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] });
    await system.waitForStatus(d, 'AWAITING_APPROVAL');
    assert.equal((await http('POST', `/orders/${d}/approve`, {}, {}, 'manager')).status, 200);
    await system.waitForStatus(d, 'NEEDS_ATTENTION');
    await eventually(async () => {
      const worker = await scrape(workerMetricsUrl);
      assert.equal(total(worker, 'order_saga_orders_needing_attention'), total(workerBefore, 'order_saga_orders_needing_attention') + 1, 'D waits for an operator');
    });
    // Refused by authentication before its route: still labelled with the route it was for.
    assert.equal((await http('GET', `/orders/${d}`, undefined, {}, 'anonymous')).status, 401);
    assert.equal((await http('GET', '/no/such/route')).status, 404);
    const resolved = await http('POST', `/orders/${d}/resolve`, { action: 'abort', note: 'metrics test' }, {}, 'operator');
    assert.equal(resolved.status, 200, resolved.text);

    const states = { a: await ended(a), b: await ended(b), c: await ended(c), d: await ended(d) };
    assert.deepEqual(
      Object.values(states).map((state) => state.status),
      ['COMPLETED', 'REJECTED', 'REJECTED', 'REJECTED'],
    );
    assert.match(states.c.failureReason, /insufficient credit/);

    const api = await scrape(apiMetricsUrl);
    const delta = (name: string, labels: Record<string, string> = {}) => total(api, name, labels) - total(apiBefore, name, labels);
    assert.equal(delta('order_saga_orders_started_total', { start: 'new' }), 4);
    assert.equal(delta('order_saga_orders_started_total', { start: 'idempotent_replay' }), 1);
    assert.equal(delta('order_saga_http_requests_total', { method: 'POST', route: '/orders', status: '202' }), 5);
    assert.equal(delta('order_saga_http_request_duration_seconds_count', { method: 'POST', route: '/orders', status: '202' }), 5);
    assert.ok(delta('order_saga_http_request_duration_seconds_sum', { method: 'POST', route: '/orders' }) > 0);
    assert.equal(delta('order_saga_http_requests_total', { method: 'POST', route: '/orders/:orderId/resolve', status: '200' }), 1);
    assert.equal(delta('order_saga_http_requests_total', { method: 'GET', route: '/orders/:orderId', status: '401' }), 1);
    assert.equal(delta('order_saga_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1);
    assert.ok(delta('order_saga_http_requests_total', { method: 'GET', route: '/orders/:orderId', status: '200' }) > 0, 'the status polls');
    assert.ok(!api.samples.some((sample) => sample.labels.route?.includes(a)), 'no order id in a route label');

    await eventually(async () => {
      const worker = await scrape(workerMetricsUrl);
      const change = (name: string, labels: Record<string, string> = {}) => total(worker, name, labels) - total(workerBefore, name, labels);
      assert.equal(change('order_saga_orders_ended_total', { status: 'COMPLETED' }), 1);
      assert.equal(change('order_saga_orders_ended_total', { status: 'REJECTED' }), 3);
      assert.equal(change('order_saga_orders_ended_total', { status: 'CANCELLED' }), 0);
      assert.equal(change('order_saga_order_duration_seconds_count', { status: 'COMPLETED' }), 1);
      assert.equal(change('order_saga_order_duration_seconds_count', { status: 'REJECTED' }), 3);
      assert.ok(change('order_saga_order_duration_seconds_sum', { status: 'COMPLETED' }) > 1, 'A took more than its dispatch delay');
      // Every compensation the sagas report, by step: B and C voided their payment and released their stock.
      const compensations = Object.values(states).flatMap((state) => state.compensations as string[]);
      assert.deepEqual(compensations.sort(), ['PAYMENT_VOIDED', 'PAYMENT_VOIDED', 'STOCK_RELEASED', 'STOCK_RELEASED']);
      for (const step of new Set(compensations)) {
        assert.equal(change('order_saga_compensations_total', { step, how: 'ran' }), compensations.filter((name) => name === step).length, step);
      }
      assert.equal(change('order_saga_compensations_total'), compensations.length);
      assert.equal(change('order_saga_orders_needing_attention'), 0, 'D left NEEDS_ATTENTION');
      assert.equal(change('order_saga_attention_entered_total', { phase: 'FORWARD', step: 'recordApproval' }), 1);
      assert.equal(change('order_saga_attention_left_total', { action: 'abort' }), 1);
      // Activity failures: A's injected scheduleShipment fault, C's refusal, D's bug before and after the worker gave up.
      const failures = (labels: Record<string, string>) => change('order_saga_activity_failures_total', labels);
      assert.equal(failures({ activity_type: 'scheduleShipment', kind: 'retryable', error_type: 'InjectedFault' }), 1);
      assert.equal(failures({ activity_type: 'authorizePayment', kind: 'non_retryable', error_type: 'PaymentDeclined' }), 1);
      assert.equal(failures({ activity_type: 'recordApproval', kind: 'retryable', error_type: 'InjectedBug' }), 1);
      assert.equal(failures({ activity_type: 'recordApproval', kind: 'non_retryable', error_type: UNEXPECTED_ERROR_TYPE }), 1);
      assert.equal(failures({}), 4, 'no other failure');
    });
  });

  it('a worker process hosting the saga alone serves /metrics, with the Temporal SDK runtime metrics appended', async function () {
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-metrics-'));
    const log = ManagedProcess.logFile(path.join(logDir, 'worker.log'));
    const port = await freePort();
    const worker = new ManagedProcess('saga-worker', 'src/worker/index.ts', { ...system.workerEnvironment(), WORKER_ROLES: 'saga', SERVICE_API_PORT: String(port) }, /"msg":"polling /, log);
    try {
      await worker.start();
      const url = `http://127.0.0.1:${port}`;
      const scraped = await eventually(async () => {
        const result = await scrape(`${url}/metrics`);
        assert.ok(result.samples.some((sample) => sample.name.startsWith('temporal_')), 'the SDK runtime metrics are appended');
        return result;
      }, 30_000);
      assert.equal(total(scraped, 'order_saga_metrics_source_up', { source: 'temporal-runtime' }), 1);
      assert.ok(scraped.help.has('order_saga_orders_ended_total'));
      assert.equal(total(scraped, 'order_saga_orders_needing_attention'), 0);
      assert.equal(series(scraped, 'order_saga_outbox_backlog_events').length, 0, 'it hosts no service database');
      const names = new Set(scraped.samples.map((sample) => sample.name));
      assert.ok(names.has('temporal_worker_start') && names.has('temporal_request'), [...names].join(', '));
      const readApi = await fetch(`${url}/orders/ord_x`);
      assert.equal(readApi.status, 404, 'and no read API');
    } finally {
      await worker.stop();
      log.end();
      rmSync(logDir, { recursive: true, force: true });
    }
  });
});
