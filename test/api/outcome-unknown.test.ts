// A write to Temporal whose answer is lost may have taken effect: the API must not answer "nothing was
// changed" then. It answers 504 `outcome_unknown` with the order id and where to check it, and keeps the 503
// `temporal_unavailable` (nothing happened) for calls that certainly never reached the server.
//
// Three servers play Temporal: a gRPC endpoint that takes requests and never answers (the answer is lost), a
// port where nothing listens (the request never leaves), and a real dev server without a saga worker, where an
// update waits for a worker that is not there (and takes effect once one comes).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, SERVICES, type Config, type DatabaseUrls, type ServiceName } from '../../src/config';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { startServiceApi, type ServiceApi } from '../../src/worker/service-api';
import { status as grpcStatus } from '@grpc/grpc-js';
import { isTemporalUnavailable, OutcomeUnknownError } from '../../src/api/errors';
import { certainlyUnsent } from '../../src/api/temporal-delivery';
import { orderIdForKey, OrderWorkflows } from '../../src/api/order-workflows';
import { apiTemporalConnection, startApiServer, type ApiServer } from '../../src/api/server';
import { NativeConnection } from '@temporalio/worker';
import { freePort } from '../../src/local-stack/free-port';
import { startTemporalDevServer, type RunningDevServer } from '../../src/local-stack/temporal-dev-server';
import { cancelOrder, getStatus } from '../../src/workflows/definitions';
import { createWorkers, type WorkerSet } from '../../src/worker/workers';
import type { PaymentProvider } from '../../src/activities/payments/provider';
import { createServiceDatabases } from '../support/postgres';
import { createProjectedQueryDatabase } from '../support/query';
import { API_KEYS, httpRequest, PRINCIPALS, WEBHOOK_SECRET } from '../support/stack';
import { workflowBundle } from '../support/temporal';

describe('writes whose outcome is unknown (Temporal timing out)', function () {
  let urls: DatabaseUrls;
  /** The orders service's read API, on the orders database (no worker runs here): every service URL points at it. */
  let serviceApi: ServiceApi;
  let serviceApiUrls: Record<ServiceName, string>;
  let queryUrl: string;
  let ordersDb: OrdersDb;
  let config: Config;
  let silent: http2.Http2Server;
  let silentAddress: string;
  let requestsReceived = 0;
  let refusedAddress: string;
  let temporal: RunningDevServer;
  const apis: ApiServer[] = [];

  before(async function () {
    urls = await createServiceDatabases('outcome');
    ordersDb = connectOrdersDb(urls.orders);
    serviceApi = await startServiceApi({ databases: { orders: ordersDb }, host: '127.0.0.1', port: 0 });
    serviceApiUrls = Object.fromEntries(SERVICES.map((service) => [service, serviceApi.url])) as Record<ServiceName, string>;
    queryUrl = await createProjectedQueryDatabase('outcome', urls);
    config = loadConfig({
      PORT: '0',
      API_KEYS,
      PAYMENT_PROVIDER: 'external',
      PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      ...Object.fromEntries(Object.entries(urls).map(([service, url]) => [`${service.toUpperCase()}_DATABASE_URL`, url])),
    });
    // Takes every gRPC request and never answers it.
    silent = http2.createServer();
    silent.on('stream', () => requestsReceived++);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentAddress = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    refusedAddress = `127.0.0.1:${await freePort()}`;
    temporal = await startTemporalDevServer({ port: await freePort() });
  });

  after(async function () {
    for (const api of apis) await api.close();
    await temporal?.stop();
    await new Promise((resolve) => silent?.close(resolve));
    await serviceApi?.close();
    await ordersDb?.$disconnect();
  });

  async function api(temporalAddress: string): Promise<ApiServer> {
    const server = await startApiServer({ config, serviceUrls: serviceApiUrls, queryDatabaseUrl: queryUrl, temporalAddress, rpcTimeoutMs: 1_500 });
    apis.push(server);
    return server;
  }
  const order = { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] };

  it('answers 504 outcome_unknown, with the order id and its status URL, when a start reached Temporal but no answer came', async function () {
    const { url } = await api(silentAddress);
    const before = requestsReceived;
    const key = `lost-answer-${Date.now()}`;
    const withKey = await httpRequest(url, 'POST', '/orders', order, { 'Idempotency-Key': key });
    assert.ok(requestsReceived > before, 'the start did reach the server');
    assert.equal(withKey.status, 504, withKey.text);
    const expectedId = orderIdForKey({ clientId: PRINCIPALS.client, customerId: 'cust-alice' }, key);
    assert.deepEqual(
      { code: withKey.body.error.code, orderId: withKey.body.error.orderId, statusUrl: withKey.body.error.statusUrl },
      { code: 'outcome_unknown', orderId: expectedId, statusUrl: `/orders/${expectedId}` },
    );
    assert.match(withKey.body.error.message, /may or may not have taken effect/);
    assert.match(withKey.body.error.message, /same Idempotency-Key is safe/);
    assert.doesNotMatch(withKey.body.error.message, /nothing was changed/);

    const withoutKey = await httpRequest(url, 'POST', '/orders', order);
    assert.equal(withoutKey.status, 504);
    assert.match(withoutKey.body.error.orderId, /^ord_[0-9a-f]{32}$/);
    assert.equal(withoutKey.body.error.statusUrl, `/orders/${withoutKey.body.error.orderId}`);
    assert.match(withoutKey.body.error.message, /no Idempotency-Key: sending it again may place a second order/);
  });

  it('answers 503 temporal_unavailable, nothing changed, when the start never left (connection refused)', async function () {
    const { url } = await api(refusedAddress);
    const response = await httpRequest(url, 'POST', '/orders', order, { 'Idempotency-Key': `refused-${Date.now()}` });
    assert.equal(response.status, 503, response.text);
    assert.equal(response.body.error.code, 'temporal_unavailable');
    assert.match(response.body.error.message, /nothing was changed/);
  });

  it('keeps a check (a read) that times out a 503: the cancel behind it was never sent', async function () {
    const { url } = await api(silentAddress);
    const response = await httpRequest(url, 'POST', '/orders/ord_00000000000000000000000000000001/cancel', { reason: 'x' });
    assert.equal(response.status, 503, response.text);
    assert.equal(response.body.error.code, 'temporal_unavailable');
  });

  it('tells a signal or an update that reached Temporal unanswered (OutcomeUnknownError) from one that never left', async function () {
    const silentClient = new Client({ connection: apiTemporalConnection(config.temporal, silentAddress) });
    const refusedClient = new Client({ connection: apiTemporalConnection(config.temporal, refusedAddress) });
    // A connection without the API's delivery tracking can never be sure: it must not claim "nothing happened".
    const untracked = new Client({ connection: Connection.lazy({ address: refusedAddress, connectTimeout: '1s' }) });
    try {
      const confirmation = { providerRef: 'pay_ord_x', outcome: 'CONFIRMED' as const };
      const unanswered = new OrderWorkflows(silentClient, config.saga, 1_000);
      await assert.rejects(unanswered.confirmPayment('ord_x', confirmation), (error) => error instanceof OutcomeUnknownError && error.orderId === 'ord_x');
      await assert.rejects(unanswered.update('ord_x', cancelOrder, { reason: 'x' }), OutcomeUnknownError);

      const neverSent = new OrderWorkflows(refusedClient, config.saga, 1_000);
      await assert.rejects(neverSent.confirmPayment('ord_x', confirmation), (error) => !(error instanceof OutcomeUnknownError) && isTemporalUnavailable(error));
      await assert.rejects(neverSent.update('ord_x', cancelOrder, { reason: 'x' }), (error) => !(error instanceof OutcomeUnknownError) && isTemporalUnavailable(error));

      await assert.rejects(new OrderWorkflows(untracked, config.saga, 1_000).confirmPayment('ord_x', confirmation), OutcomeUnknownError);
    } finally {
      await Promise.all([silentClient.connection.close(), refusedClient.connection.close(), untracked.connection.close()]);
    }
  });

  it('counts an attempt as never sent only when the client itself gave up before it had a connection', function () {
    const unsent = (code: number, details: string) => certainlyUnsent({ code, details });
    assert.equal(unsent(grpcStatus.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1'), true);
    assert.equal(unsent(grpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded after 5.001s,waiting for name resolution'), true);
    assert.equal(unsent(grpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded after 5.001s,LB pick: 5.000s'), true);
    assert.equal(unsent(grpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'), true);
    // On a connection, the server may have the request.
    assert.equal(unsent(grpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded after 5.002s,LB pick: 0.001s,remote_addr=127.0.0.1:7233'), false);
    // The server's own deadline answer (Temporal ends a long-polled update early): it certainly arrived.
    assert.equal(unsent(grpcStatus.DEADLINE_EXCEEDED, 'context deadline exceeded'), false);
    assert.equal(unsent(grpcStatus.DEADLINE_EXCEEDED, 'Timed out waiting for the workflow update to reach the accepted stage.'), false);
    // A call the client cancelled may have been sent already.
    assert.equal(unsent(grpcStatus.CANCELLED, 'Cancelled on client'), false);
    assert.equal(unsent(grpcStatus.UNAVAILABLE, 'Connection dropped'), false);
  });

  describe('on a real server with no saga worker', function () {
    let worker: WorkerSet | undefined;
    let workerConnection: NativeConnection | undefined;
    after(async function () {
      await worker?.shutdown();
      await workerConnection?.close();
    });

    it('answers 504 for a cancel that reached Temporal unanswered, and the cancel does take effect later', async function () {
      const { url } = await api(temporal.address);
      const placed = await httpRequest(url, 'POST', '/orders', order, { 'Idempotency-Key': `no-worker-${Date.now()}` });
      assert.equal(placed.status, 202, placed.text);
      const { orderId } = placed.body;

      // The update is accepted by the server and waits for a worker to run the saga: the API's deadline passes.
      const cancel = await httpRequest(url, 'POST', `/orders/${orderId}/cancel`, { reason: 'lost answer' });
      assert.equal(cancel.status, 504, cancel.text);
      assert.equal(cancel.body.error.code, 'outcome_unknown');
      assert.equal(cancel.body.error.orderId, orderId);
      assert.equal(cancel.body.error.statusUrl, `/orders/${orderId}`);
      assert.match(cancel.body.error.message, /cancelOrder update may or may not have taken effect/);

      // A saga worker comes: the cancellation that "timed out" is applied. 504 told the truth, a 503 would have lied.
      workerConnection = await NativeConnection.connect({ address: temporal.address });
      worker = await createWorkers({
        connection: workerConnection,
        namespace: 'default',
        roles: ['saga'],
        databaseUrls: urls,
        paymentProvider: {} as PaymentProvider,
        workflowBundle: await workflowBundle(),
      });
      void worker.run();
      const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
      try {
        let state;
        for (let i = 0; i < 100 && state?.failureReason !== 'lost answer'; i++) {
          state = await client.workflow.getHandle(orderId).query(getStatus).catch(() => undefined);
          if (state?.failureReason !== 'lost answer') await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.equal(state?.failureReason, 'lost answer', `the cancellation was applied: ${JSON.stringify(state)}`);
        assert.equal(state?.cancellable, false);
      } finally {
        await client.connection.close();
      }
    });
  });
});
