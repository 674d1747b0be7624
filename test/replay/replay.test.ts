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
import { PATCH_ASK_PROVIDER_WHILE_WAITING, PATCH_RECORD_APPROVAL_DECISION } from '../../src/workflows/order-saga';
import { tracingWorkflowBundle, workflowBundle } from '../support/temporal';

const HISTORIES = path.join(__dirname, 'histories');
type History = temporal.api.history.v1.IHistory;

/**
 * The saga's metric sinks (src/observability/temporal.ts), registered as the workers register them: a replay must
 * count nothing, or a saga replayed after a worker restart or a cache eviction would be counted twice.
 */
const metrics = createWorkerMetrics();
const replayOptions = async () => ({ workflowBundle: await workflowBundle(), sinks: sagaMetricsSinks(metrics) });
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
function finalState(history: History): { status: string } {
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
    });
  }

  describe('with the workflow interceptors of tracing (src/workflows/tracing-interceptors.ts), as every saga worker runs', function () {
    // Every history here was recorded without them: sagas started before they were added must replay with them. Their
    // spans go to the `exporter` sink, which must not be called during replay.
    const exporter = new InMemorySpanExporter();
    const tracedOptions = async () => ({
      workflowBundle: await tracingWorkflowBundle(),
      sinks: { ...sagaMetricsSinks(metrics), exporter: makeWorkflowExporter(new SimpleSpanProcessor(exporter), new Resource({})) },
    });

    for (const file of files) {
      it(`replays ${file} without a nondeterminism error`, async function () {
        await Worker.runReplayHistory(await tracedOptions(), load(file), `replay-traced-${file}`);
        assert.equal(await counted(), 0, 'a replay counts no metric');
        assert.deepEqual(exporter.getFinishedSpans(), [], 'a replay exports no span');
      });
    }
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
