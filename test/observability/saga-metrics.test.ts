// The saga's metric sinks on the time-skipping server, with in-memory services. The saga worker keeps no workflow
// in its cache (maxCachedWorkflows 0), so every workflow task replays the saga's whole history first: a sink call
// made again during those replays would count an order, a compensation or an attention twice.
import assert from 'node:assert/strict';
import { Refusal } from '../../src/domain';
import { cancelOrder, resolveAttention, type AttentionResolution } from '../../src/workflows/definitions';
import { failuresForGood, refusal } from '../support/fake-services';
import { SagaTestEnv, type SagaHandle } from '../support/saga-test-env';

describe('saga metrics through workflow sinks (time-skipping, no workflow cache)', function () {
  let saga: SagaTestEnv;

  before(async function () {
    saga = await SagaTestEnv.start('metrics');
  });

  after(async function () {
    await saga?.stop();
  });

  beforeEach(function () {
    saga.reset();
  });

  const resolve = (handle: SagaHandle, action: AttentionResolution['action']) => handle.executeUpdate(resolveAttention, { args: [{ action, operator: 'ops-anna' }] });

  /** The current value of each saga metric, by its labels. */
  async function snapshot(): Promise<Record<string, number>> {
    const { ordersEnded, orderDuration, compensations, attentionEntered, attentionLeft, ordersNeedingAttention } = saga.metrics;
    const values: Record<string, number> = {};
    const metricList: { get(): Promise<{ name: string; values: { value: number; labels: object; metricName?: string }[] }> }[] = [
      ordersEnded,
      orderDuration,
      compensations,
      attentionEntered,
      attentionLeft,
      ordersNeedingAttention,
    ];
    for (const metric of metricList) {
      const { name, values: samples } = await metric.get();
      for (const { value, labels, metricName } of samples) values[`${metricName ?? name}${JSON.stringify(labels)}`] = value;
    }
    return values;
  }

  /** What changed since `before`, zeros left out; histogram buckets and sums left out too (their count says it). */
  async function changes(before: Record<string, number>): Promise<Record<string, number>> {
    const after = await snapshot();
    const changed: Record<string, number> = {};
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (/_bucket|_sum/.test(key)) continue;
      const delta = (after[key] ?? 0) - (before[key] ?? 0);
      if (delta !== 0) changed[key] = delta;
    }
    return changed;
  }

  it('a retried NEEDS_ATTENTION and a completion count once each', async function () {
    const before = await snapshot();
    saga.services.behaviours.set('scheduleShipment', failuresForGood(2));
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    assert.deepEqual(await changes(before), {
      'order_saga_orders_needing_attention{}': 1,
      'order_saga_attention_entered_total{"phase":"FORWARD","step":"scheduleShipment"}': 1,
    });
    await resolve(handle, 'retry');
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await resolve(handle, 'retry');
    assert.equal((await handle.result()).status, 'COMPLETED');
    assert.deepEqual(await changes(before), {
      'order_saga_attention_entered_total{"phase":"FORWARD","step":"scheduleShipment"}': 2,
      'order_saga_attention_left_total{"action":"retry"}': 2,
      'order_saga_orders_ended_total{"status":"COMPLETED"}': 1,
      'order_saga_order_duration_seconds_count{"status":"COMPLETED"}': 1,
    });
  });

  it('a cancellation while a step waits for an operator leaves NEEDS_ATTENTION, and counts every compensation', async function () {
    const before = await snapshot();
    saga.services.behaviours.set('scheduleShipment', failuresForGood(1_000));
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await handle.executeUpdate(cancelOrder, { args: [{ reason: 'waited too long' }] });
    const result = await handle.result();
    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(await changes(before), {
      'order_saga_attention_entered_total{"phase":"FORWARD","step":"scheduleShipment"}': 1,
      'order_saga_attention_left_total{"action":"cancelled"}': 1,
      'order_saga_compensations_total{"step":"SHIPMENT_CANCELLED","how":"ran"}': 1,
      'order_saga_compensations_total{"step":"PAYMENT_VOIDED","how":"ran"}': 1,
      'order_saga_compensations_total{"step":"STOCK_RELEASED","how":"ran"}': 1,
      'order_saga_orders_ended_total{"status":"CANCELLED"}': 1,
      'order_saga_order_duration_seconds_count{"status":"CANCELLED"}': 1,
    });
  });

  it('a compensation an operator did by hand is counted as resolved-manually', async function () {
    const before = await snapshot();
    saga.services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined));
    saga.services.behaviours.set('releaseStock', failuresForGood(1_000));
    const handle = await saga.start();
    await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
    await resolve(handle, 'resolved-manually');
    assert.equal((await handle.result()).status, 'REJECTED');
    assert.deepEqual(await changes(before), {
      'order_saga_attention_entered_total{"phase":"COMPENSATION","step":"releaseStock"}': 1,
      'order_saga_attention_left_total{"action":"resolved-manually"}': 1,
      'order_saga_compensations_total{"step":"PAYMENT_VOIDED","how":"ran"}': 1,
      'order_saga_compensations_total{"step":"STOCK_RELEASED","how":"resolved-manually"}': 1,
      'order_saga_orders_ended_total{"status":"REJECTED"}': 1,
      'order_saga_order_duration_seconds_count{"status":"REJECTED"}': 1,
    });
  });
});
