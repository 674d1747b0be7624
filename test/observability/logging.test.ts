// Structured logs (src/observability/logging.ts): the Temporal SDK's Logger adapter on its own; then one order's lines,
// correlated. A `npm run worker` process writes JSON to a file, the rest of the system (the API, the relays, the
// projector) runs in this process and its lines are captured. The order's reserveStock is broken by fault injection,
// so that the SDK logs its failed attempts, the error classifier logs the bug through the activity logger, and the
// saga logs `saga needs attention` through the workflow logger: every line about the order must name it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createLogger, prettyLine, TemporalPinoLogger } from '../../src/observability/logging';
import { inSpan, startTracing } from '../../src/observability/tracing';
import { PROJECT_ROOT } from '../../src/local-stack/tools';
import { TestStack, type Json } from '../support/stack';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A logger at `level` whose lines land in `lines`, as the JSON pino writes. */
function capturing(lines: string[], level: 'DEBUG' | 'INFO' = 'DEBUG') {
  return createLogger({ service: 'test', level, destination: { write: (line: string) => void lines.push(line) } });
}

/** Parses JSON lines, failing on the first that is not one object with level, time and msg. */
function parseLines(text: string[], source: string): Json[] {
  return text
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      let entry: Json;
      try {
        entry = JSON.parse(line);
      } catch {
        assert.fail(`${source} line ${i + 1} is not JSON: ${line}`);
      }
      assert.equal(typeof entry.level, 'string', `${source} line ${i + 1} has a level: ${line}`);
      assert.ok(!Number.isNaN(Date.parse(entry.time)), `${source} line ${i + 1} has a time: ${line}`);
      assert.equal(typeof entry.msg, 'string', `${source} line ${i + 1} has a msg: ${line}`);
      return entry;
    });
}

describe('structured logs', function () {
  describe('the Temporal SDK Logger adapter', function () {
    it("maps the SDK's metadata to fields, names the order of an OrderSaga and its activities, and filters by level", function () {
      const lines: string[] = [];
      const logger = new TemporalPinoLogger(capturing(lines, 'INFO'));
      const activity = {
        sdkComponent: 'worker',
        workflowType: 'OrderSaga',
        workflowId: 'ord_1',
        workflowRunId: 'run-1',
        activityType: 'reserveStock',
        taskQueue: 'inventory',
        attempt: 2,
        taskToken: 'b3BhcXVl',
      };
      logger.warn('Activity failed', { ...activity, error: new Error('boom') });
      logger.error('saga needs attention', { sdkComponent: 'workflow', workflowType: 'OrderSaga', workflowId: 'ord_2', runId: 'run-2', [Symbol.for('log_timestamp')]: 1n });
      logger.info('a bench workflow', { sdkComponent: 'workflow', workflowType: 'FloorSaga', workflowId: 'floor-1', runId: 'run-3' });
      logger.log('INFO', 'Core says hello', { sdkComponent: 'core', target: 'temporalio_sdk_core' });
      logger.debug('Activity completed', activity); // below INFO: dropped

      const [failed, attention, other, core, ...rest] = parseLines(lines, 'adapter');
      assert.equal(rest.length, 0, 'the debug line is filtered out');
      assert.deepEqual(
        { level: failed.level, component: failed.component, orderId: failed.orderId, workflowId: failed.workflowId, runId: failed.runId, activityType: failed.activityType, attempt: failed.attempt },
        { level: 'warn', component: 'temporal', orderId: 'ord_1', workflowId: 'ord_1', runId: 'run-1', activityType: 'reserveStock', attempt: 2 },
      );
      assert.equal(failed.taskToken, undefined, 'the task token is left out');
      assert.equal(failed.error.message, 'boom');
      assert.match(failed.error.stack, /Error: boom/);
      assert.deepEqual(
        { level: attention.level, component: attention.component, msg: attention.msg, orderId: attention.orderId, runId: attention.runId },
        { level: 'error', component: 'workflow', msg: 'saga needs attention', orderId: 'ord_2', runId: 'run-2' },
      );
      assert.equal(other.orderId, undefined, "another workflow type's id is no order id");
      assert.equal(core.component, 'temporal');
      assert.equal(core.sdkComponent, 'core');
      assert.equal(core.service, 'test');
    });

    it("keeps the SDK's lines from a level of their own up (npm start: WARN), whatever the logger writes", function () {
      const lines: string[] = [];
      const logger = new TemporalPinoLogger(capturing(lines, 'INFO'), 'WARN');
      logger.info('Worker state changed', { sdkComponent: 'worker', taskQueue: 'order-saga' });
      logger.warn('Activity failed', { sdkComponent: 'worker', workflowType: 'OrderSaga', workflowId: 'ord_3' });
      assert.deepEqual(parseLines(lines, 'adapter').map((line) => line.msg), ['Activity failed']);
    });

    it('a line written inside a span names its trace and span; outside one, or with tracing off, none', async function () {
      const lines: string[] = [];
      const logger = capturing(lines);
      logger.info('tracing off');
      const tracing = startTracing({ serviceName: 'test', exporter: new InMemorySpanExporter() });
      let ids: { traceId: string; spanId: string } | undefined;
      try {
        await inSpan('work', {}, async (span) => {
          ids = { traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
          await sleep(1); // still the span's context after an await
          logger.info('inside');
        });
        logger.info('outside');
      } finally {
        await tracing.shutdown();
      }
      const [off, inside, outside] = parseLines(lines, 'logger');
      assert.equal(off.traceId, undefined);
      assert.match(ids!.traceId, /^[0-9a-f]{32}$/);
      assert.deepEqual({ traceId: inside.traceId, spanId: inside.spanId }, ids);
      assert.equal(outside.traceId, undefined);
    });

    it('LOG_FORMAT=pretty writes one readable line per entry', function () {
      const line = prettyLine({ level: 'info', time: '2026-01-02T14:03:07.412Z', service: 'api', component: 'http', msg: 'POST /orders 202', orderId: 'ord_1', status: 202 });
      assert.equal(line, '14:03:07.412 INFO  api/http POST /orders 202  orderId=ord_1 status=202\n');
    });
  });

  describe('one order through the API and a worker process', function () {
    this.timeout(240_000);
    let system: TestStack;
    let worker: ChildProcess | undefined;
    let logDir: string;
    let workerLog: string;
    let workerErrors: string;
    /** What the API, relays and projector of this process logged. */
    const stackLines: string[] = [];

    const workerLines = () => parseLines([readFileSync(workerLog, 'utf8')], 'worker');
    const explain = () => `worker stderr:\n${readFileSync(workerErrors, 'utf8').slice(-4_000)}`;

    async function eventually<T>(what: string, find: () => T | undefined, timeoutMs = 30_000): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = find();
        if (found !== undefined) return found;
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; ${explain()}`);
        await sleep(100);
      }
    }

    before(async function () {
      system = await TestStack.start('logs', {}, { runWorkers: false, logger: capturing(stackLines) });
      logDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-logs-'));
      workerLog = path.join(logDir, 'worker.jsonl');
      workerErrors = path.join(logDir, 'worker.stderr');
      const out = openSync(workerLog, 'a');
      const err = openSync(workerErrors, 'a');
      // `npm run worker`, its stdout straight to a file: exactly the lines a log collector would read.
      worker = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(PROJECT_ROOT, 'src/worker/index.ts')], {
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          ...system.workerEnvironment(),
          LOG_LEVEL: 'DEBUG',
          LOG_FORMAT: 'json',
          // reserveStock fails like a bug twice for each order; after two attempts the classifier gives up on it.
          FAULT_INJECTION: 'reserveStock:broken=2',
          UNEXPECTED_ERROR_MAX_ATTEMPTS: '2',
        },
        stdio: ['ignore', out, err],
      });
      closeSync(out);
      closeSync(err);
      await eventually('the worker to poll', () => (workerLines().some((entry) => entry.msg.startsWith('polling ')) ? true : undefined), 120_000);
    });

    after(async function () {
      if (worker && worker.exitCode === null && worker.signalCode === null) {
        const exited = new Promise((resolve) => worker!.once('exit', resolve));
        worker.kill('SIGTERM');
        const timer = setTimeout(() => worker!.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await system?.stop();
      if (logDir) rmSync(logDir, { recursive: true, force: true });
    });

    it('every line names the order: the API request, the SDK, the activity and workflow loggers, the relay and the projector', async function () {
      const placed = await system.http('POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'CB-005', quantity: 1 }] }, { 'idempotency-key': 'logs-1' });
      assert.equal(placed.status, 202, placed.text);
      const orderId: string = placed.body.orderId;
      await system.waitForStatus(orderId, 'NEEDS_ATTENTION');
      const { runId } = await system.client.workflow.getHandle(orderId).describe();

      // The workflow logger: `log.error` in the saga, through the SDK's sink, into the worker's pino.
      const attention = await eventually('the saga to log that it needs attention', () =>
        workerLines().find((entry) => entry.msg === 'saga needs attention' && entry.workflowId === orderId),
      );
      assert.deepEqual(
        { level: attention.level, service: attention.service, component: attention.component, orderId: attention.orderId, runId: attention.runId, step: attention.step },
        { level: 'error', service: 'worker', component: 'workflow', orderId, runId, step: 'reserveStock' },
      );

      const lines = workerLines();
      // The activity logger (the classifier giving up) and the SDK's own activity lines (each failed attempt).
      const gaveUp = lines.find((entry) => entry.component === 'activity' && entry.workflowId === orderId);
      assert.ok(gaveUp, 'the error classifier logs through the activity logger');
      assert.equal(gaveUp.level, 'error');
      assert.deepEqual([gaveUp.errorType, gaveUp.attempt], ['InjectedBug', 2]);
      // The SDK's line for each failed attempt, with the error and its stack.
      const failedAttempts = lines.filter((entry) => entry.msg === 'Activity failed' && entry.workflowId === orderId);
      assert.deepEqual(failedAttempts.map((entry) => entry.attempt), [1, 2]);
      assert.match(failedAttempts[0].error.stack, /InjectedBug/);
      // Every worker line about this order's workflow, whoever wrote it, carries the order, the workflow and the run.
      const aboutOrder = lines.filter((entry) => entry.workflowId === orderId);
      assert.ok(aboutOrder.length >= 4, `lines about the order: ${aboutOrder.length}`);
      for (const entry of aboutOrder) {
        assert.deepEqual([entry.orderId, entry.runId], [orderId, runId], `a line about the order: ${JSON.stringify(entry)}`);
        assert.equal(entry.taskToken, undefined);
      }
      assert.ok(aboutOrder.some((entry) => entry.activityType === 'reserveStock' && entry.component === 'temporal'), "the SDK's activity lines");

      // This process: the API's line for POST /orders, the relay that published the order's event, the projector
      // that applied it.
      const stack = () => parseLines(stackLines, 'stack');
      const request = stack().find((entry) => entry.component === 'http' && entry.method === 'POST' && entry.route === '/orders');
      assert.deepEqual(
        request && { level: request.level, status: request.status, orderId: request.orderId, msg: request.msg },
        { level: 'info', status: 202, orderId, msg: 'POST /orders 202' },
      );
      assert.equal(typeof request!.durationMs, 'number');
      assert.ok(stack().some((entry) => entry.route === '/orders/:orderId' && entry.orderId === orderId), 'GET /orders/:orderId names it too');
      const published = await eventually('the relay to publish OrderCreated', () =>
        stack().find((entry) => entry.component === 'relay' && entry.msg === 'published' && entry.eventType === 'OrderCreated' && entry.orderId === orderId),
      );
      assert.equal(published.outbox, 'orders');
      const applied = await eventually('the projector to apply OrderCreated', () =>
        stack().find((entry) => entry.component === 'consumer' && entry.msg === 'applied' && entry.eventType === 'OrderCreated' && entry.orderId === orderId),
      );
      assert.deepEqual([applied.consumer, applied.eventId], ['query-orders', published.eventId]);
    });
  });
});
