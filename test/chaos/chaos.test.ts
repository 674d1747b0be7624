// The chaos run, small: 100 orders from concurrent clients against real processes while 20 % of activity
// attempts fail, the worker, the relay, the projector and the payment provider are killed once, PostgreSQL, NATS
// and the API are restarted once. Every accepted order must end, be found, and leave the four databases
// consistent; no event may be lost or applied twice, and every order's event-sourced state and query view must
// equal the service databases. (`npm run chaos` runs 1000.)
import assert from 'node:assert/strict';
import { formatReport } from '../../src/audit/auditor';
import { formatSummary, metTarget, runChaos } from '../../scripts/chaos/run-chaos';

describe('chaos run (100 orders; worker, relay, projector, provider killed; PostgreSQL, NATS, API restarted)', function () {
  this.timeout(600_000);

  it('ends every accepted order, loses none, and leaves no invariant violated', async function () {
    const summary = await runChaos({
      orders: 100,
      clients: 10,
      faultRate: 0.2,
      workerKills: 1,
      restartPostgres: true,
      restartApi: true,
      killProvider: true,
      killRelay: true,
      restartNats: true,
      killProjector: true,
      settleTimeoutMs: 300_000,
    });
    // The diagnostics last: of a long failure message, the end is the part always shown.
    const report = [formatSummary(summary), formatReport(summary.audit), summary.diagnostics ?? ''].join('\n');
    assert.deepEqual(summary.crashes, [], `no process crashed:\n${report}`);
    assert.equal(summary.accepted, 100, report);
    assert.equal(summary.stillRunning, 0, report);
    assert.equal(summary.lost, 0, report);
    assert.equal(summary.violations, 0, report);
    assert.deepEqual(summary.restarts, { worker: 1, postgres: 1, api: 1, provider: 1, relay: 1, nats: 1, projector: 1 });
    assert.ok(summary.events.streamed > 0, 'events flowed');
    assert.deepEqual(
      { lost: summary.events.lost, duplicated: summary.events.duplicated, deadLettered: summary.events.deadLettered, foldMismatches: summary.events.foldMismatches, viewMismatches: summary.events.viewMismatches },
      { lost: 0, duplicated: 0, deadLettered: 0, foldMismatches: 0, viewMismatches: 0 },
      report,
    );
    assert.equal(summary.unexpectedOutcomes, 0, `every order ended as its kind allows:\n${report}`);
    assert.equal(summary.acceptedCancelsShipped, 0, `a cancel answered 202 always compensates:\n${report}`);
    assert.equal(summary.confirmationTimeouts, 0, `no order was rejected for a confirmation the provider gave:\n${report}`);
    assert.ok(summary.retriesObserved > 0, 'faults were injected and retried');
    for (const status of ['COMPLETED', 'REJECTED', 'CANCELLED'] as const) assert.ok(summary.terminal[status] > 0, `some orders ${status}`);
    assert.ok(metTarget(summary), report);
  });
});
