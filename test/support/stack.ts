// The whole system for end-to-end suites: its own service databases on the test cluster, a Temporal dev
// server on a free port, the sandbox payment provider, the workers and the API. The suite plays the bank: it tells
// the sandbox provider to confirm or decline, and the provider sends its signed webhook as it would in production.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { jetstreamManager } from '@nats-io/jetstream';
import { loadConfig, SERVICES, type Config, type ServiceName } from '../../src/config';
import { connectNats } from '../../src/events/nats-connection';
import { outboxStatus } from '../../src/events/relay-status';
import { connectQueryDb } from '../../src/query/db';
import { viewsLag } from '../../src/query/read';
import type { EventEnvelope } from '../../src/events/relay';
import { streamOf } from '../../src/events/streams';
import { providerRefFor } from '../../src/domain';
import { signCallback, SIGNATURE_HEADER } from '../../src/activities/payments/provider';
import { startStack, type RunningStack } from '../../src/local-stack/stack';
import { createLogger, type Logger } from '../../src/observability/logging';
import type { Tracing } from '../../src/observability/tracing';
import { freePort } from '../../src/local-stack/free-port';
import { sharedCluster, type TestCluster } from './postgres';
import { workflowBundle } from './temporal';

export const WEBHOOK_SECRET = 'e2e-webhook-secret';

/** The API keys of the end-to-end system: two client applications, a manager and an operator. */
export const KEYS = {
  client: 'e2e-key-client-web-shop',
  otherClient: 'e2e-key-client-other-shop',
  manager: 'e2e-key-manager-maria',
  operator: 'e2e-key-operator-ops',
} as const;
/** Who each key belongs to (API_KEYS' principals). */
export const PRINCIPALS = { client: 'web-shop', otherClient: 'other-shop', manager: 'maria', operator: 'ops' } as const;
export const API_KEYS =
  `client:${PRINCIPALS.client}=${KEYS.client},client:${PRINCIPALS.otherClient}=${KEYS.otherClient},` +
  `manager:${PRINCIPALS.manager}=${KEYS.manager},operator:${PRINCIPALS.operator}=${KEYS.operator}`;
/** Whose key a request carries; `anonymous` sends none. */
export type As = keyof typeof KEYS | 'anonymous';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Json;
  text: string;
}

export class TestStack {
  private constructor(
    readonly stack: RunningStack,
    readonly client: Client,
    readonly config: Config,
    private readonly dataDir: string,
  ) {}

  /**
   * `runWorkers: false` leaves the workers to the test (e.g. a worker process it kills; see workerEnvironment);
   * `logger` receives what the stack and everything in it log (quiet otherwise, unless TEST_STACK_LOG is set);
   * `tracing` (the test process's, from startTracing) turns on the spans of the workers, the workflows and the API;
   * `cluster` holds the databases (the run's shared cluster unless the suite takes its own down).
   */
  static async start(
    prefix: string,
    env: NodeJS.ProcessEnv = {},
    { runWorkers = true, logger, tracing, cluster = sharedCluster() }: { runWorkers?: boolean; logger?: Logger; tracing?: Tracing; cluster?: TestCluster } = {},
  ): Promise<TestStack> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `order-saga-${prefix}-`));
    const databaseUrls = await cluster.createServiceDatabases(prefix);
    const queryDatabaseUrl = await cluster.createQueryDatabase(prefix);
    const config = loadConfig({
      // A known port rather than 0: the sandbox provider starts first and must know where to send its webhooks.
      PORT: String(await freePort()),
      // The sandbox provider never decides on its own here: the tests play the bank (providerDecides).
      PAYMENT_PROVIDER: 'sandbox',
      SANDBOX_CONFIRM_DELAY_MS: 'off',
      PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      API_KEYS,
      DISPATCH_DELAY: '1s',
      ...Object.fromEntries(Object.entries(databaseUrls).map(([service, url]) => [`${service.toUpperCase()}_DATABASE_URL`, url])),
      QUERY_DATABASE_URL: queryDatabaseUrl,
      // The relay mode under test: the default (wal) unless the run asks for another (RELAY_MODE=polling npm test).
      ...(process.env.RELAY_MODE ? { RELAY_MODE: process.env.RELAY_MODE } : {}),
      ...env,
    });
    const stack = await startStack({
      config,
      dataDir,
      temporalPort: await freePort(),
      temporalUiPort: 0,
      providerPort: 0,
      natsPort: await freePort(),
      runWorkers,
      // Any free port for the workers here; known in advance for a worker process started later (runWorkers false).
      serviceApiPort: runWorkers ? 0 : await freePort(),
      // As a saga worker bundles it: with the workflow side of tracing (src/workflows/tracing-interceptors.ts).
      workflowBundle: await workflowBundle(),
      tracing,
      // TEST_STACK_LOG=1 shows what the stack's servers, relays, projector, workers and API say (quiet otherwise).
      logger: logger ?? (process.env.TEST_STACK_LOG ? createLogger({ service: `stack-${prefix}`, format: 'pretty', destination: process.stderr }) : undefined),
    });
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
    return new TestStack(stack, client, config, dataDir);
  }

  /**
   * The events of an order's aggregate (its Order, Reservation, Payment or Shipment) a service published on its
   * stream, as `<sequence>:<type>`, in stream order.
   */
  async publishedEvents(service: ServiceName, orderId: string): Promise<string[]> {
    const nc = await connectNats(this.stack.natsServers, 'test-reader');
    try {
      const jsm = await jetstreamManager(nc);
      const { state } = await jsm.streams.info(streamOf(service));
      const found: string[] = [];
      for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
        const event = (await jsm.streams.getMessage(streamOf(service), { seq }))?.json<EventEnvelope>();
        if (event?.aggregateId === orderId) found.push(`${event.sequence}:${event.type}`);
      }
      return found;
    } finally {
      await nc.close();
    }
  }

  /**
   * Waits until every service's outbox is published and the query side has applied everything on the streams:
   * what the catalog, customer credit and GET /orders show is then up to date.
   */
  async viewsCaughtUp(timeoutMs = 30_000): Promise<void> {
    const nc = await connectNats(this.stack.natsServers, 'test-views');
    const db = connectQueryDb(this.stack.queryDatabaseUrl);
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const statuses = await Promise.all(SERVICES.map((service) => outboxStatus(this.stack.databaseUrls[service])));
        if (statuses.every((status) => status.backlog === 0) && (await viewsLag(db, nc)).pendingEvents === 0) return;
        if (Date.now() > deadline) {
          const outboxes = SERVICES.map((service, i) => `${service}: ${JSON.stringify(statuses[i])}`).join('; ');
          throw new Error(`the query side did not catch up within ${timeoutMs} ms (${outboxes})`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await Promise.all([db.$disconnect(), nc.close()]);
    }
  }

  /** The environment of a `npm run worker` process for this system (servers, databases, provider). */
  workerEnvironment(): NodeJS.ProcessEnv {
    return {
      TEMPORAL_ADDRESS: this.stack.temporalAddress,
      ...Object.fromEntries(Object.entries(this.stack.databaseUrls).map(([service, url]) => [`${service.toUpperCase()}_DATABASE_URL`, url])),
      PAYMENT_PROVIDER_URL: this.stack.providerUrl,
      PAYMENT_PROVIDER_API_KEY: this.config.payments.providerApiKey,
      NATS_URL: this.stack.natsServers.join(','),
      SERVICE_API_PORT: new URL(this.stack.serviceUrls.orders).port,
      PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      API_KEYS,
      REGISTER_SEARCH_ATTRIBUTES: 'off',
      // INFO: the tests wait for the worker's `polling` line (ManagedProcess), which is at that level.
      LOG_LEVEL: 'INFO',
    };
  }

  /** The system's configuration for a second API process on the side, listening on any free port. */
  sideApiConfig(): Config {
    return { ...this.config, api: { ...this.config.api, port: 0 } };
  }

  async stop(): Promise<void> {
    await this.client.connection.close();
    await this.stack.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /**
   * One HTTP request to the API; a request that hangs fails after 15 s. It carries the client application's
   * key (web-shop) unless `as` names another caller, or `headers` bring their own Authorization / X-API-Key.
   */
  async http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}, as: As = 'client'): Promise<HttpResponse> {
    return httpRequest(this.stack.apiUrl, method, url, body, headers, as);
  }

  /**
   * The bank's decision on the order's authorization, made at the sandbox provider, which records it and then
   * delivers its signed webhook to the API (retrying until acknowledged). Answers the provider's response.
   */
  async providerDecides(orderId: string, outcome: 'CONFIRMED' | 'DECLINED'): Promise<HttpResponse> {
    const response = await httpRequest(this.stack.providerUrl, 'POST', `/v1/authorizations/${providerRefFor(orderId)}/decide`, { outcome }, {
      authorization: `Bearer ${this.config.payments.providerApiKey}`,
    });
    assert.equal(response.status, 200, `the sandbox provider refused the decision: ${response.text}`);
    return response;
  }

  /**
   * A webhook as the payment provider would send it, posted straight to the API: a JSON body signed with the
   * shared secret (no API key: the signature is its credential). For what the API answers to a callback itself
   * (a bad signature, a late one); the provider does not know about it.
   */
  providerCallback(orderId: string, outcome: 'CONFIRMED' | 'DECLINED', secret = WEBHOOK_SECRET): Promise<HttpResponse> {
    const body = JSON.stringify({ orderId, providerRef: providerRefFor(orderId), outcome });
    return this.http('POST', '/payments/callback', body, { 'content-type': 'application/json', [SIGNATURE_HEADER]: signCallback(secret, body) }, 'anonymous');
  }

  async waitForStatus(orderId: string, status: string, timeoutMs = 30_000, as: As = 'client'): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    let last: Json | undefined;
    while (Date.now() < deadline) {
      last = (await this.http('GET', `/orders/${orderId}`, undefined, {}, as)).body;
      if (last.status === status) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`order ${orderId} did not reach ${status}; last seen ${JSON.stringify(last)}`);
  }
}

/** One HTTP request to an API at `baseUrl` (see TestStack.http). */
export async function httpRequest(
  baseUrl: string,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  as: As = 'client',
): Promise<HttpResponse> {
  const credentialGiven = Object.keys(headers).some((name) => ['authorization', 'x-api-key'].includes(name.toLowerCase()));
  const withKey = as === 'anonymous' || credentialGiven ? headers : { authorization: `Bearer ${KEYS[as]}`, ...headers };
  const response = await fetch(`${baseUrl}${url}`, {
    method,
    headers: body === undefined || headers['content-type'] ? withKey : { 'content-type': 'application/json', ...withKey },
    body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let parsed: Json = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { unparsable: text };
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}
