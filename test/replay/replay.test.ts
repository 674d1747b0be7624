// Determinism guard: the recorded histories (test/replay/histories, from test/replay/record-histories.ts)
// must replay against the current workflow code without a nondeterminism error. A change that reorders,
// adds or removes a step of a running saga fails here; make such a change behind a patch (see the README,
// "Changing the workflow safely") and record a new history next to the old ones, never over them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry/lib/worker';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createWorkerMetrics } from '../../src/observability/metrics';
import { sagaMetricsSinks } from '../../src/observability/temporal';
import {
  PATCH_ASK_PROVIDER_WHILE_WAITING,
  PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA,
  PATCH_RECORD_APPROVAL_DECISION,
  PATCH_STATUS_ATTRIBUTE_AT_WAITS,
} from '../../src/workflows/order-saga';
import { PATCH_TRACING_KEEPS_WORKFLOW_TIMING } from '../../src/workflows/tracing-interceptors';
import { listedOrderStatuses } from '../support/history';
import { workflowBundle } from '../support/temporal';

const HISTORIES = path.join(__dirname, 'histories');
type History = temporal.api.history.v1.IHistory;

/**
 * The saga's metric sinks (src/observability/temporal.ts), registered as the workers register them: a replay must
 * count nothing, or a saga replayed after a worker restart or a cache eviction would be counted twice.
 */
const metrics = createWorkerMetrics();
/**
 * The workflow's spans go to a real exporter: the `exporter` sink must not be called during replay either (a replayed
 * saga exports nothing twice).
 */
const exporter = new InMemorySpanExporter();
const replayOptions = async () => ({
  workflowBundle: await workflowBundle(),
  sinks: { ...sagaMetricsSinks(metrics), exporter: makeWorkflowExporter(new SimpleSpanProcessor(exporter), new Resource({})) },
});
async function counted(): Promise<number> {
  const { ordersEnded, orderDuration, compensations, attentionEntered, attentionLeft, ordersNeedingAttention } = metrics;
  const metricList: { get(): Promise<{ values: { value: number }[] }> }[] = [ordersEnded, orderDuration, compensations, attentionEntered, attentionLeft, ordersNeedingAttention];
  const all = await Promise.all(metricList.map((metric) => metric.get()));
  return all.flatMap((metric) => metric.values).reduce((sum, { value }) => sum + Math.abs(value), 0);
}

function load(file: string): History {
  return historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8')));
}

/** The saga's result (its final OrderState), from the history's completion event. */
function finalState(history: History): { status: string; failureReason?: string | null } {
  const last = history.events?.at(-1);
  const payload = last?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  assert.ok(payload?.data, 'the history ends with the saga completed (record the whole saga, not part of it)');
  return JSON.parse(Buffer.from(payload.data).toString('utf8'));
}

/** The patch ids the history recorded (markers written by `patched()`). */
function patchMarkers(history: History): string[] {
  return (history.events ?? [])
    .filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((event) => {
      const data = event.markerRecordedEventAttributes!.details!['patch-data'].payloads![0].data!;
      return JSON.parse(Buffer.from(data).toString('utf8')).id as string;
    });
}

describe('replay of recorded OrderSaga histories', function () {
  const files = readdirSync(HISTORIES).filter((file) => file.endsWith('.json'));

  it('holds a whole saga for every way a saga can end', function () {
    const statuses = new Set(files.map((file) => finalState(load(file)).status));
    for (const status of ['COMPLETED', 'REJECTED', 'CANCELLED']) assert.ok(statuses.has(status), `a recorded saga that ended ${status}`);
    // Sagas that waited for an operator (they end in one of the statuses above) are recorded too.
    assert.ok(files.some((file) => file.startsWith('needs-attention-')), 'a recorded saga that stopped in NEEDS_ATTENTION');
  });

  for (const file of files) {
    it(`replays ${file} without a nondeterminism error`, async function () {
      const history = load(file);
      finalState(history);
      await Worker.runReplayHistory(await replayOptions(), history, `replay-${file}`);
      assert.equal(await counted(), 0, 'a replay counts no metric');
      assert.deepEqual(exporter.getFinishedSpans(), [], 'a replay exports no span');
    });
  }

  describe(`the patch "${PATCH_TRACING_KEEPS_WORKFLOW_TIMING}" (src/workflows/tracing-interceptors.ts)`, function () {
    // Before it, every saga worker ran the SDK's OpenTelemetry workflow interceptors, which make a saga's promises
    // settle later; sagas started then (no marker) must replay with them. The histories above named
    // sdk-tracing-interceptors-* were recorded by such a worker (the others, before any interceptor was bundled); those
    // recorded since carry the marker.
    const sdkRecorded = files.filter((file) => file.startsWith('sdk-tracing-interceptors-'));
    const withMarker = files.filter((file) => patchMarkers(load(file)).includes(PATCH_TRACING_KEEPS_WORKFLOW_TIMING));

    it('has sagas recorded with the SDK interceptors, without the marker, that scheduled activities with their trace header', function () {
      assert.ok(sdkRecorded.length >= 3, `histories recorded with the SDK's interceptors: ${sdkRecorded.join(', ')}`);
      for (const file of sdkRecorded) {
        const history = load(file);
        assert.ok(!patchMarkers(history).includes(PATCH_TRACING_KEEPS_WORKFLOW_TIMING), file);
        const headers = (history.events ?? []).map((event) => event.activityTaskScheduledEventAttributes?.header?.fields ?? undefined).filter(Boolean);
        assert.ok(headers.length > 0 && headers.every((fields) => fields!['_tracer-data']), `${file}: every activity carried the SDK's trace header`);
      }
    });

    it('has sagas recorded since, with the marker first in their first workflow task', function () {
      assert.ok(withMarker.length >= 2, `histories with the marker: ${withMarker.join(', ') || 'none'}`);
      for (const file of withMarker) {
        const events = load(file).events ?? [];
        const firstCommand = events.find((event) => Number(event.eventId) > 4);
        assert.equal(firstCommand?.markerRecordedEventAttributes?.markerName, 'core_patch', `${file}: the marker is the first command`);
      }
    });
  });

  describe(`the patch "${PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA}"`, function () {
    // A saga that finds its order closed by another saga ends with the record instead of going on. Only such a saga
    // records the marker, so every saga started before the change, and every other saga since, replays as before.
    const scheduled = (history: ReturnType<typeof load>) =>
      (history.events ?? []).map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);

    it('replays a saga that found its order ended under another saga: the marker, two activities, the record as its result', async function () {
      const history = load('ended-under-another-saga.json');
      assert.ok(patchMarkers(history).includes(PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA));
      assert.deepEqual(scheduled(history), ['priceOrder', 'createOrder']);
      assert.equal(finalState(history).status, 'COMPLETED');
      await Worker.runReplayHistory(await replayOptions(), history, 'replay-ended-under-another-saga');
    });

    it('replays a saga that learned it only at closeOrder (refused at pricing): the marker after it, the record as its result', async function () {
      const history = load('ended-under-another-saga-found-at-close.json');
      assert.ok(patchMarkers(history).includes(PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA));
      assert.deepEqual(scheduled(history), ['priceOrder', 'closeOrder']);
      assert.equal(finalState(history).status, 'REJECTED');
      assert.equal(finalState(history).failureReason, 'out of stock: CHEAP', 'the recorded reason, not the refusal at pricing');
      await Worker.runReplayHistory(await replayOptions(), history, 'replay-ended-under-another-saga-found-at-close');
    });

    it('is in no other history: a saga whose order is its own records no marker', function () {
      const others = files.filter((file) => !file.startsWith('ended-under-another-saga') && patchMarkers(load(file)).includes(PATCH_ORDER_CLOSED_BY_ANOTHER_SAGA));
      assert.deepEqual(others, []);
    });
  });

  describe(`the patch "${PATCH_STATUS_ATTRIBUTE_AT_WAITS}"`, function () {
    // Sagas started before it wrote OrderStatus at every step; those since, only where they wait, need a person,
    // compensate or end (src/workflows/order-saga.ts, STEPS_BETWEEN_WAITS). Both must replay with the writes they made.
    const since = files.filter((file) => file.startsWith('status-at-waits-'));

    it('replays a completed saga recorded before it: no marker, a write at every step', async function () {
      const history = load('completed-order.json');
      assert.ok(!patchMarkers(history).includes(PATCH_STATUS_ATTRIBUTE_AT_WAITS));
      assert.deepEqual(listedOrderStatuses(history), ['RESERVING_STOCK', 'AUTHORIZING_PAYMENT', 'AWAITING_PAYMENT_CONFIRMATION', 'SCHEDULING_SHIPMENT', 'AWAITING_DISPATCH', 'DISPATCHING', 'COMPLETED']);
      await Worker.runReplayHistory(await replayOptions(), history, 'replay-status-at-every-step');
    });

    it('has sagas recorded since, each with the marker and no write for a step between two waits after PENDING or a wait', function () {
      assert.ok(since.length >= 3, `histories recorded since: ${since.join(', ')}`);
      for (const file of since) assert.ok(patchMarkers(load(file)).includes(PATCH_STATUS_ATTRIBUTE_AT_WAITS), file);
      assert.deepEqual(listedOrderStatuses(load('status-at-waits-completed-order.json')), ['AWAITING_PAYMENT_CONFIRMATION', 'AWAITING_DISPATCH', 'COMPLETED']);
      assert.deepEqual(listedOrderStatuses(load('status-at-waits-needs-attention-forward-retried.json')), [
        'NEEDS_ATTENTION',
        'RESERVING_STOCK',
        'AWAITING_PAYMENT_CONFIRMATION',
        'AWAITING_DISPATCH',
        'COMPLETED',
      ]);
    });
  });

  describe(`the patch "${PATCH_RECORD_APPROVAL_DECISION}"`, function () {
    // Recording the manager's decision with the order added an activity after the approval wait. Sagas that
    // waited for approval before the change must replay without it; those after it, with it.
    const recordedApproval = (history: ReturnType<typeof load>) =>
      (history.events ?? []).some((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'recordApproval');

    it('replays a decision recorded before the patch, with no marker and no recordApproval', async function () {
      const history = load('rejected-by-manager.json');
      assert.ok(!patchMarkers(history).includes(PATCH_RECORD_APPROVAL_DECISION));
      assert.equal(recordedApproval(history), false);
      await Worker.runReplayHistory(await replayOptions(), history, 'replay-pre-approval-patch');
    });

    for (const file of ['approved-decision-recorded.json', 'rejected-decision-recorded.json']) {
      it(`replays ${file}, recorded after the patch, with the marker and recordApproval`, async function () {
        const history = load(file);
        assert.ok(patchMarkers(history).includes(PATCH_RECORD_APPROVAL_DECISION));
        assert.equal(recordedApproval(history), true);
        await Worker.runReplayHistory(await replayOptions(), history, `replay-${file}`);
      });
    }
  });

  describe(`the patch "${PATCH_ASK_PROVIDER_WHILE_WAITING}" (a worked example of changing a running saga)`, function () {
    // Asking the provider while waiting for its callback added activities to a wait that had none. Sagas
    // started before the change recorded no marker and must keep waiting the old way when replayed; sagas
    // started after it recorded the marker and take the new path. Both kinds of history must replay.
    it('replays a saga recorded before the patch, which has no marker and never asked the provider', async function () {
      const history = load('completed-order.json');
      assert.deepEqual(patchMarkers(history), []);
      const asked = (history.events ?? []).some(
        (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'checkPaymentConfirmation',
      );
      assert.equal(asked, false);
      await Worker.runReplayHistory(await replayOptions(), history, 'replay-pre-patch');
    });

    it('replays a saga recorded after the patch, which has the marker and asked the provider', async function () {
      const history = load('completed-after-asking-provider.json');
      assert.deepEqual(patchMarkers(history), [PATCH_ASK_PROVIDER_WHILE_WAITING]);
      const asked = (history.events ?? []).some(
        (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'checkPaymentConfirmation',
      );
      assert.equal(asked, true);
      await Worker.runReplayHistory(await replayOptions(), history, 'replay-post-patch');
    });
  });
});
