// Traces end to end: one order placed through the HTTP API of an in-process stack (TestStack, its workers in this
// process) with tracing on and an in-memory exporter, then one trace must hold the whole order: the API's request,
// the Temporal client's StartWorkflow, the workflow's run, every activity, the database queries inside them, the relay's
// publish of the events they wrote to the outbox, and the consumers' processing of those events.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { loadConfig } from '../../src/config';
import { activeTraceCarrier, inSpan, startTracing, tracingEnabled, type Tracing } from '../../src/observability/tracing';
import { TestStack } from '../support/stack';

describe('tracing: configuration and export', function () {
  it('reads the standard OTEL_* variables, and is off without an endpoint', async function () {
    assert.deepEqual(loadConfig({}).tracing, { tracesEndpoint: undefined, serviceName: undefined });
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing?.tracesEndpoint, 'http://collector:4318/v1/traces');
    const both = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp', OTEL_SERVICE_NAME: 'shop' });
    assert.deepEqual(both.tracing, { tracesEndpoint: 'https://traces.example/otlp', serviceName: 'shop' });
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing?.tracesEndpoint, undefined);
    assert.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT must be a URL/);

    const off = startTracing({ serviceName: 'test', config: loadConfig({}).tracing });
    assert.equal(off.enabled, false);
    assert.equal(tracingEnabled(), false);
    // Off, spans are no-ops and nothing is stored with an event.
    await inSpan('nothing', {}, async (span) => {
      assert.equal(span.isRecording(), false);
      assert.equal(activeTraceCarrier(), null);
    });
  });

  it('exports spans by OTLP over HTTP to the configured endpoint, with the service name', async function () {
    const received: { path?: string; type?: string; body: Buffer }[] = [];
    const collector = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ path: req.url, type: req.headers['content-type'], body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as AddressInfo;
    const tracing = startTracing({ serviceName: 'order-saga-test', config: loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` }).tracing });
    try {
      assert.equal(tracing.enabled, true);
      await inSpan('exported-span', {}, async (span) => {
        assert.equal(span.isRecording(), true);
        assert.match(activeTraceCarrier()?.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      });
      await tracing.forceFlush();
    } finally {
      await tracing.shutdown();
      await new Promise((resolve) => collector.close(resolve));
    }
    assert.equal(tracingEnabled(), false, 'shut down, tracing is off again');
    assert.equal(received.length, 1);
    assert.equal(received[0].path, '/v1/traces');
    assert.equal(received[0].type, 'application/x-protobuf');
    // The protobuf carries the span's name and the resource's service.name as plain strings.
    assert.ok(received[0].body.includes('exported-span'));
    assert.ok(received[0].body.includes('order-saga-test'));
    assert.equal(trace.getTracer('after').startSpan('x').isRecording(), false, 'the global provider is unregistered');
  });
});

/** The saga's forward steps of an order below the approval threshold that completes. */
const ACTIVITIES = ['priceOrder', 'createOrder', 'reserveStock', 'authorizePayment', 'scheduleShipment', 'dispatchShipment', 'capturePayment', 'consumeReservation', 'closeOrder'];

describe('tracing: one order is one trace, from the API to the consumers of its events', function () {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let system: TestStack;

  before(async function () {
    tracing = startTracing({ serviceName: 'order-saga-test', exporter });
    assert.ok(tracing.enabled);
    system = await TestStack.start('tracing', {}, { tracing });
  });

  after(async function () {
    await system?.stop();
    await tracing?.shutdown();
  });

  const spans = () => exporter.getFinishedSpans();
  const named = (all: ReadableSpan[], name: string) => all.filter((span) => span.name === name);
  const childrenOf = (all: ReadableSpan[], parent: ReadableSpan) =>
    all.filter((span) => span.parentSpanId === parent.spanContext().spanId && span.spanContext().traceId === parent.spanContext().traceId);
  const describeSpan = (span: ReadableSpan) => `${span.name} (${span.spanContext().spanId} ← ${span.parentSpanId ?? 'root'})`;

  /** The one span named `name` among `all` that is a child of `parent`. */
  function childNamed(all: ReadableSpan[], parent: ReadableSpan, name: string): ReadableSpan {
    const found = childrenOf(all, parent).filter((span) => span.name === name);
    assert.equal(found.length, 1, `one ${name} under ${parent.name}; its children: ${childrenOf(all, parent).map(describeSpan).join(', ') || 'none'}`);
    return found[0];
  }

  async function waitForSpans(ready: (all: ReadableSpan[]) => boolean, what: string, timeoutMs = 20_000): Promise<ReadableSpan[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = spans();
      if (ready(all)) return all;
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms; spans: ${[...new Set(all.map((span) => span.name))].join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('holds the HTTP request, StartWorkflow, RunWorkflow, the activities, their queries, the relay and the consumers', async function () {
    exporter.reset();
    const placed = await system.http('POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] }, { 'Idempotency-Key': `trace-${randomUUID()}` });
    assert.equal(placed.status, 202, placed.text);
    const { orderId } = placed.body;
    await system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');
    await system.providerDecides(orderId, 'CONFIRMED');
    await system.waitForStatus(orderId, 'COMPLETED');
    await system.client.workflow.getHandle(orderId).result();
    await system.viewsCaughtUp();

    const isOrders = (span: ReadableSpan) => span.name === 'POST /orders' && span.kind === SpanKind.SERVER;
    // The workflow's spans reach the exporter through the worker's sink; the consumers' once they have acknowledged.
    const all = await waitForSpans((found) => {
      const root = found.find(isOrders);
      const trace = found.filter((span) => span.spanContext().traceId === root?.spanContext().traceId);
      return (
        named(trace, 'RunWorkflow:OrderSaga').length === 1 &&
        ACTIVITIES.every((activity) => named(trace, `RunActivity:${activity}`).length > 0) &&
        named(trace, 'process shipping.events.ShipmentDispatched').length >= 2
      );
    }, 'the whole order in one trace');

    // The API's request is the trace's root: one server span named by its route template.
    const roots = all.filter(isOrders);
    assert.equal(roots.length, 1, 'one POST /orders span');
    const [http] = roots;
    assert.equal(http.parentSpanId, undefined, 'the request is the root of its trace');
    assert.equal(http.attributes['http.route'], '/orders');
    assert.equal(http.attributes['http.response.status_code'], 202);
    const traceId = http.spanContext().traceId;
    const trace = all.filter((span) => span.spanContext().traceId === traceId);

    // Temporal: the client's StartWorkflow under the request, the workflow's run under it, each activity's scheduling
    // under the run, and each activity's execution (on its service's worker) under its scheduling.
    const start = childNamed(trace, http, 'StartWorkflow:OrderSaga');
    assert.equal(start.attributes.temporalWorkflowId, orderId);
    const run = childNamed(trace, start, 'RunWorkflow:OrderSaga');
    const executions = new Map<string, ReadableSpan>();
    for (const activity of ACTIVITIES) {
      const scheduled = childrenOf(trace, run).filter((span) => span.name === `StartActivity:${activity}`);
      assert.ok(scheduled.length >= 1, `StartActivity:${activity} under RunWorkflow`);
      const executed = scheduled.flatMap((span) => childrenOf(trace, span).filter((child) => child.name === `RunActivity:${activity}`));
      assert.ok(executed.length >= 1, `RunActivity:${activity} under its StartActivity`);
      assert.equal(executed[0].attributes.temporalWorkflowId, orderId);
      executions.set(activity, executed[0]);
    }
    // The bank's decision came back through the provider's webhook: a trace of its own, from POST /payments/callback
    // through the client's signal to the workflow's handling of it.
    const handled = all.find((span) => span.name === 'HandleSignal:paymentConfirmed');
    assert.ok(handled, 'HandleSignal:paymentConfirmed');
    const signalled = all.find((span) => span.spanContext().spanId === handled.parentSpanId);
    assert.equal(signalled?.name, 'SignalWorkflow:paymentConfirmed');
    assert.equal(all.find((span) => span.spanContext().spanId === signalled.parentSpanId)?.name, 'POST /payments/callback');

    // The database: the pg driver's queries (under Prisma's adapter-pg) inside reserveStock's transaction.
    const reserve = executions.get('reserveStock')!;
    const queries = childrenOf(trace, reserve).filter((span) => span.name.startsWith('pg.query'));
    assert.ok(queries.length >= 3, `reserveStock's queries: ${childrenOf(trace, reserve).map(describeSpan).join(', ')}`);
    assert.ok(queries.every((query) => query.attributes['db.system'] === 'postgresql'));
    assert.ok(
      queries.some((query) => String(query.attributes['db.statement']).includes('INSERT INTO outbox')),
      'the outbox write is one of the transaction’s queries',
    );

    // The outbox: the relay's publish of StockReserved continues the trace of the activity that wrote it (the context
    // stored in the row), and puts its own in the message's traceparent header.
    const published = childNamed(trace, reserve, 'publish inventory.events.StockReserved');
    assert.equal(published.kind, SpanKind.PRODUCER);
    assert.equal(published.attributes['order_saga.correlation_id'], orderId);
    assert.equal(published.attributes['messaging.destination.name'], 'inventory.events.StockReserved');
    // Every event the order's activities wrote went the same way, e.g. the shipment's dispatch.
    childNamed(trace, executions.get('dispatchShipment')!, 'publish shipping.events.ShipmentDispatched');

    // The consumers: the projector's (query-inventory) and the orders service's (orders-inventory) processing of that
    // message are children of the publish span, and their own database work is under them.
    const processed = childrenOf(trace, published).filter((span) => span.name === 'process inventory.events.StockReserved');
    assert.deepEqual(processed.map((span) => span.attributes['messaging.consumer.group.name']).sort(), ['orders-inventory', 'query-inventory']);
    for (const span of processed) {
      assert.equal(span.kind, SpanKind.CONSUMER);
      assert.ok(
        childrenOf(trace, span).some((child) => child.name.startsWith('pg.query')),
        `${span.attributes['messaging.consumer.group.name']} applies the event in its database: ${childrenOf(trace, span).map(describeSpan).join(', ')}`,
      );
    }

    // The whole tree is connected: every span of the trace but the root has its parent in the trace.
    const ids = new Set(trace.map((span) => span.spanContext().spanId));
    const orphans = trace.filter((span) => span !== http && !ids.has(span.parentSpanId ?? ''));
    assert.deepEqual(orphans.map(describeSpan), []);
  });
});
