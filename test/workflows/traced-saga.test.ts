// Tracing must not change what a saga does (src/workflows/tracing-interceptors.ts). The saga worker here keeps no
// cache, so every workflow task replays the saga's history first, as after an eviction or a worker restart: under the
// SDK's own interceptors a traced saga whose operator retried a compensation failed there with a nondeterminism error
// (the update's completion and the next activity swapped places) and never finished.
import assert from 'node:assert/strict';
import type { temporal } from '@temporalio/proto';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Refusal } from '../../src/domain';
import { inSpan, startTracing, type Tracing } from '../../src/observability/tracing';
import { resolveAttention, type OrderState } from '../../src/workflows/definitions';
import { PATCH_TRACING_KEEPS_WORKFLOW_TIMING } from '../../src/workflows/tracing-interceptors';
import { failuresForGood, refusal } from '../support/fake-services';
import { SagaTestEnv } from '../support/saga-test-env';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The events a saga's commands made, in order: what a replay must make again. */
function commandsOf(events: HistoryEvent[]): string[] {
  return events.flatMap((event) => {
    if (event.activityTaskScheduledEventAttributes) return [`activity ${event.activityTaskScheduledEventAttributes.activityType?.name}`];
    if (event.markerRecordedEventAttributes) return [`marker ${event.markerRecordedEventAttributes.markerName}`];
    if (event.timerStartedEventAttributes) return ['timer'];
    if (event.upsertWorkflowSearchAttributesEventAttributes) return ['search attributes'];
    if (event.workflowExecutionUpdateAcceptedEventAttributes) return ['update accepted'];
    if (event.workflowExecutionUpdateCompletedEventAttributes) return ['update completed'];
    if (event.workflowExecutionCompletedEventAttributes) return ['completed'];
    if (event.workflowTaskFailedEventAttributes) return [`workflow task failed: ${event.workflowTaskFailedEventAttributes.failure?.message}`];
    return [];
  });
}

describe('OrderSaga traced and untraced: the same commands, every task replayed (time-skipping)', function () {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let saga: SagaTestEnv;

  before(async function () {
    tracing = startTracing({ serviceName: 'traced-saga-test', exporter });
    saga = await SagaTestEnv.start('traced', { tracing });
  });

  after(async function () {
    await saga?.stop();
    await tracing?.shutdown();
  });

  /** A compensation fails for good; the operator's retry (an update) races the saga's next activity. */
  async function retriedCompensation(traced: boolean): Promise<{ state: OrderState; events: HistoryEvent[]; workflowId: string }> {
    saga.reset();
    saga.services.behaviours.set('scheduleShipment', refusal(Refusal.ShipmentRefused));
    saga.services.behaviours.set('voidPayment', failuresForGood(1));
    const client = traced ? saga.tracedClient() : saga.env.client;
    const workflowId = await inSpan('operator', {}, async () => {
      const handle = await saga.start(undefined, undefined, client);
      await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
      await handle.executeUpdate(resolveAttention, { args: [{ action: 'retry', operator: 'ops-anna' }] });
      return handle.workflowId;
    });
    // The environment's own client lets the server skip time while waiting for the end.
    const handle = saga.env.client.workflow.getHandle(workflowId);
    const state = (await handle.result()) as OrderState;
    const events = (await handle.fetchHistory()).events ?? [];
    return { state, events, workflowId };
  }

  it('an operator retrying a compensation: the traced saga makes the untraced one’s commands, and both finish', async function () {
    exporter.reset();
    const untraced = await retriedCompensation(false);
    const traced = await retriedCompensation(true);

    for (const run of [untraced, traced]) {
      assert.equal(run.state.status, 'REJECTED');
      assert.deepEqual(run.state.compensations, ['SHIPMENT_CANCELLED', 'PAYMENT_VOIDED', 'STOCK_RELEASED']);
      assert.deepEqual(run.state.operatorActions, ['voidPayment: retry by ops-anna']);
    }
    const commands = commandsOf(traced.events);
    assert.deepEqual(commands, commandsOf(untraced.events));
    assert.equal(commands[0], 'marker core_patch', `the patch ${PATCH_TRACING_KEEPS_WORKFLOW_TIMING} comes first`);
    assert.ok(!commands.some((command) => command.startsWith('workflow task failed')), commands.join('\n'));

    // Only the traced saga's activities carry a trace context (to their RunActivity spans).
    const headers = (events: HistoryEvent[]) =>
      events.filter((event) => event.activityTaskScheduledEventAttributes).map((event) => Boolean(event.activityTaskScheduledEventAttributes!.header?.fields?.['_tracer-data']));
    assert.ok(headers(traced.events).every(Boolean), 'every activity of the traced saga carries its context');
    assert.ok(!headers(untraced.events).some(Boolean), 'no activity of the untraced saga carries one');
  });

  it('exports the traced saga’s spans, each under the call that caused it, and none for the untraced saga', async function () {
    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
    const parentOf = (span: ReadableSpan) => byId.get(span.parentSpanId ?? '')?.name;

    const runs = spans.filter((span) => span.name === 'RunWorkflow:OrderSaga');
    assert.equal(runs.length, 1, 'one run traced: the traced saga’s');
    assert.equal(parentOf(runs[0]), 'StartWorkflow:OrderSaga');
    const started = spans.filter((span) => span.name.startsWith('StartActivity:'));
    assert.ok(started.length >= 8, `the saga's activities: ${started.map((span) => span.name).join(', ')}`);
    assert.ok(started.every((span) => span.parentSpanId === runs[0].spanContext().spanId || parentOf(span)?.startsWith('HandleUpdate:')));
    assert.equal(started.filter((span) => span.name === 'StartActivity:voidPayment').length, 2, 'the failed voidPayment and its retry');
    const update = spans.find((span) => span.name === 'HandleUpdate:resolveAttention');
    assert.ok(update, 'HandleUpdate:resolveAttention');
    assert.equal(parentOf(update), 'StartWorkflowUpdate:resolveAttention');
    // The untraced saga's caller had a span too ('operator'), but its client sent no context: nothing of the workflow's.
    const workflowSide = spans.filter((span) => /^(RunWorkflow|StartActivity|HandleUpdate|ValidateUpdate|HandleQuery|HandleSignal):/.test(span.name));
    const traceId = runs[0].spanContext().traceId;
    assert.deepEqual(workflowSide.filter((span) => span.spanContext().traceId !== traceId).map((span) => span.name), [], 'all in the traced operator’s trace');
  });
});
