// Outages of what the system depends on. A database outage makes the saga wait and retry, not compensate;
// a Temporal outage makes the API answer 503 and recover by itself when Temporal is back.
import assert from 'node:assert/strict';
import { auditDatabases } from '../../src/audit/auditor';
import { startApiServer } from '../../src/api/server';
import { startTemporalDevServer } from '../../src/local-stack/temporal-dev-server';
import { freePort } from '../../src/local-stack/free-port';
import { TestCluster } from '../support/postgres';
import { KEYS, TestStack } from '../support/stack';

describe('outages', function () {
  let system: TestStack;
  /** Its own PostgreSQL cluster: the outage below must not reach the suites running beside this one. */
  let cluster: TestCluster;

  before(async function () {
    cluster = await TestCluster.start();
    system = await TestStack.start('outages', {}, { cluster });
  });

  after(async function () {
    await system?.stop();
    await cluster?.stop();
  });

  it('a database outage makes the saga wait and retry, then finish without compensating', async function () {
    const placed = await system.http('POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'MS-002', quantity: 1 }] });
    assert.equal(placed.status, 202);
    const { orderId } = placed.body;
    await system.waitForStatus(orderId, 'AWAITING_PAYMENT_CONFIRMATION');

    await cluster.withDown(async () => {
      // The provider confirms while every service database is down: the saga moves on to shipping and waits.
      assert.equal((await system.providerDecides(orderId, 'CONFIRMED')).body.status, 'AUTHORIZED');
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      const waiting = (await system.http('GET', `/orders/${orderId}`)).body;
      assert.equal(waiting.status, 'SCHEDULING_SHIPMENT', 'the saga is retrying the step, not giving up');
      assert.deepEqual(waiting.compensations, []);
      const catalog = await system.http('GET', '/catalog');
      assert.equal(catalog.status, 503, 'reads answer 503 while their database is down');
      assert.equal(catalog.body.error.code, 'database_unavailable');
      const health = await system.http('GET', '/health');
      assert.equal(health.status, 503);
      assert.equal(health.body.databases.query, 'unreachable');
      assert.equal(health.body.services.orders, 'unreachable', "the orders service answers that its database is down");
    });

    const done = await system.waitForStatus(orderId, 'COMPLETED', 90_000);
    assert.deepEqual(done.compensations, []);
    assert.equal((await auditDatabases(system.stack.databaseUrls)).violations, 0);
  });

  it('with Temporal down the API answers 503, and serves again once Temporal is back, without a restart', async function () {
    const port = await freePort();
    const api = await startApiServer({ config: system.sideApiConfig(), serviceUrls: system.stack.serviceUrls, queryDatabaseUrl: system.stack.queryDatabaseUrl, natsServers: system.stack.natsServers, temporalAddress: `127.0.0.1:${port}` });
    const order = () =>
      fetch(`${api.url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.client}` },
        body: JSON.stringify({ customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] }),
        signal: AbortSignal.timeout(30_000),
      });
    try {
      const startedAt = Date.now();
      const refused = await order();
      assert.equal(refused.status, 503);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'temporal_unavailable');
      assert.ok(Date.now() - startedAt < 15_000, 'answered within a bounded time');

      const temporal = await startTemporalDevServer({ port });
      try {
        let accepted: Response | undefined;
        for (let i = 0; i < 30 && accepted?.status !== 202; i++) {
          accepted = await order();
          if (accepted.status !== 202) await new Promise((resolve) => setTimeout(resolve, 500));
        }
        assert.equal(accepted?.status, 202, 'the same API process accepts orders again');
      } finally {
        await temporal.stop();
      }
    } finally {
      await api.close();
    }
  });
});
