// Back-pressure: the rule that decides, from the task queues' backlogs, whether a new order is admitted
// (src/api/admission.ts). The end-to-end behaviour, with real workers falling behind, is in back-pressure.test.ts.
import assert from 'node:assert/strict';
import { Admission, type QueueBacklog } from '../../src/api/admission';

const queue = (taskQueue: string, backlogAgeMs: number, polled = true): QueueBacklog => ({
  taskQueue,
  kind: taskQueue === 'order-saga' ? 'workflow' : 'activity',
  backlogAgeMs,
  backlogCount: backlogAgeMs > 0 ? 7 : 0,
  polled,
});

describe('admission (back-pressure rule)', function () {
  it('admits while every queue is within the backlog age, refuses once one is older, naming the oldest', async function () {
    let queues = [queue('order-saga', 300), queue('inventory', 1_900)];
    const admission = new Admission(async () => queues, 2_000, 0);
    assert.deepEqual(await admission.check(), { admit: true });
    queues = [queue('order-saga', 2_500), queue('inventory', 4_200), queue('payments', 0)];
    const verdict = await admission.check();
    assert.equal(verdict.admit, false);
    assert.ok(!verdict.admit);
    assert.equal(verdict.retryAfterSeconds, 5, 'Retry-After: the oldest wait, rounded up');
    assert.match(verdict.reason, /inventory has waited 4\.2 s \(7 waiting\)/);
  });

  it('admits when no worker has polled the queue with the backlog lately (an outage: orders wait durably), or when Temporal does not answer', async function () {
    assert.deepEqual(await new Admission(async () => [queue('shipping', 60_000, false)], 2_000, 0).check(), { admit: true });
    assert.deepEqual(await new Admission(async () => Promise.reject(new Error('unreachable')), 2_000, 0).check(), { admit: true });
  });

  it('bounds Retry-After between 1 and 30 s', async function () {
    const retryAfter = async (ageMs: number) => {
      const verdict = await new Admission(async () => [queue('orders', ageMs)], 10, 0).check();
      return verdict.admit ? undefined : verdict.retryAfterSeconds;
    };
    assert.equal(await retryAfter(20), 1);
    assert.equal(await retryAfter(600_000), 30);
  });

  it('looks at the queues once per interval, however many requests ask meanwhile; off admits without looking', async function () {
    let probes = 0;
    const admission = new Admission(async () => (probes++, [queue('order-saga', 0)]), 2_000, 60_000);
    await Promise.all(Array.from({ length: 50 }, () => admission.check()));
    await admission.check();
    assert.equal(probes, 1);
    // A Temporal that does not answer is asked once per interval too (each probe may take its whole deadline).
    let failedProbes = 0;
    const stalled = new Admission(async () => (failedProbes++, Promise.reject(new Error('deadline exceeded'))), 2_000, 60_000);
    for (let i = 0; i < 5; i++) assert.deepEqual(await stalled.check(), { admit: true });
    assert.equal(failedProbes, 1);
    const off = new Admission(async () => (probes++, [queue('order-saga', 99_000)]), undefined);
    assert.deepEqual(await off.check(), { admit: true });
    assert.equal(probes, 1);
  });
});
