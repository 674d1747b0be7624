// The whole system for end-to-end suites: its own service databases on the test cluster, a Temporal dev
// server on a free port, the workers and the API. The suite plays the payment provider (signed callbacks).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../../src/config';
import { providerRefFor } from '../../src/domain';
import { signCallback, SIGNATURE_HEADER } from '../../src/activities/payments/provider';
import { startStack, type RunningStack } from '../../src/local-stack/stack';
import { freePort } from '../../src/local-stack/free-port';
import { createServiceDatabases } from './postgres';
import { workflowBundle } from './temporal';

export const WEBHOOK_SECRET = 'e2e-webhook-secret';
export const MANAGER_TOKEN = 'e2e-manager-token';

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

  static async start(prefix: string, env: NodeJS.ProcessEnv = {}): Promise<TestStack> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `order-saga-${prefix}-`));
    const databaseUrls = await createServiceDatabases(prefix);
    const config = loadConfig({
      PORT: '0',
      PAYMENT_PROVIDER: 'external',
      PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      MANAGER_TOKEN,
      DISPATCH_DELAY: '1s',
      ...Object.fromEntries(Object.entries(databaseUrls).map(([service, url]) => [`${service.toUpperCase()}_DATABASE_URL`, url])),
      ...env,
    });
    const stack = await startStack({
      config,
      dataDir,
      temporalPort: await freePort(),
      temporalUiPort: 0,
      workflowBundle: await workflowBundle(),
      log: () => {},
    });
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
    return new TestStack(stack, client, config, dataDir);
  }

  async stop(): Promise<void> {
    await this.client.connection.close();
    await this.stack.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** One HTTP request to the API; a request that hangs fails after 15 s. */
  async http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const response = await fetch(`${this.stack.apiUrl}${url}`, {
      method,
      headers: body === undefined || headers['content-type'] ? headers : { 'content-type': 'application/json', ...headers },
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

  /** What the payment provider sends: a JSON body signed with the shared secret. */
  providerCallback(orderId: string, outcome: 'CONFIRMED' | 'DECLINED', secret = WEBHOOK_SECRET): Promise<HttpResponse> {
    const body = JSON.stringify({ orderId, providerRef: providerRefFor(orderId), outcome });
    return this.http('POST', '/payments/callback', body, { 'content-type': 'application/json', [SIGNATURE_HEADER]: signCallback(secret, body) });
  }

  async waitForStatus(orderId: string, status: string, timeoutMs = 30_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    let last: Json | undefined;
    while (Date.now() < deadline) {
      last = (await this.http('GET', `/orders/${orderId}`)).body;
      if (last.status === status) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`order ${orderId} did not reach ${status}; last seen ${JSON.stringify(last)}`);
  }
}
