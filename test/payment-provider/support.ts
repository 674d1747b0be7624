// Shared by the payment provider tests: a small real HTTP receiver for the provider's webhooks, a sandbox
// provider in this process on a fresh data folder, and the sandbox bank's decision call.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startPaymentProvider, type PaymentProviderOptions, type RunningPaymentProvider } from '../../src/payment-provider/start';

export const API_KEY = 'test-provider-key';
export const SECRET = 'test-webhook-secret';

export interface ReceivedWebhook {
  body: string;
  headers: IncomingHttpHeaders;
  /** The status the receiver answered. */
  answered: number;
}

export interface Receiver {
  url: string;
  received: ReceivedWebhook[];
  /** Decides the status of each answer (default 204). */
  answer: (body: string, headers: IncomingHttpHeaders) => number;
  close(): Promise<void>;
}

/** A webhook receiver on a local port (default: a free one), answering with `receiver.answer(...)`. */
export async function startReceiver(answer: Receiver['answer'] = () => 204, port = 0): Promise<Receiver> {
  const received: ReceivedWebhook[] = [];
  let server: Server;
  const receiver: Receiver = {
    url: '',
    received,
    answer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = receiver.answer(body, req.headers);
      received.push({ body, headers: req.headers, answered: status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : '{"error":"not now"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments/callback`;
  return receiver;
}

/** Polls `condition` every 20 ms until it holds, or fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh data folder for a provider, removed by the returned cleanup. */
export function tempDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'payment-provider-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A sandbox provider in this process, quiet, with fast webhook retries; decisions are manual unless said otherwise. */
export function startTestProvider(options: Partial<PaymentProviderOptions> & { dataDir: string; callbackUrl: string }): Promise<RunningPaymentProvider> {
  return startPaymentProvider({
    apiKey: API_KEY,
    webhookSecret: SECRET,
    confirmDelayMs: 'off',
    webhook: { backoffBaseMs: 50, backoffMaxMs: 200, timeoutMs: 2_000 },
    log: () => {},
    ...options,
  });
}

/** A raw call to the provider's HTTP API; returns the status, the parsed body and the headers. */
export async function call(
  baseUrl: string,
  method: 'GET' | 'POST',
  route: string,
  options: { body?: unknown; headers?: Record<string, string>; apiKey?: string | null } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const apiKey = options.apiKey === undefined ? API_KEY : options.apiKey;
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: {
      ...(apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

/** The sandbox bank's answer to a PENDING authorization (POST /v1/authorizations/:ref/decide). */
export async function decide(baseUrl: string, providerRef: string, outcome: 'CONFIRMED' | 'DECLINED', reason?: string): Promise<any> {
  const { status, body } = await call(baseUrl, 'POST', `/v1/authorizations/${providerRef}/decide`, { body: { outcome, ...(reason ? { reason } : {}) } });
  if (status !== 200) throw new Error(`decide ${providerRef} ${outcome}: HTTP ${status} ${JSON.stringify(body)}`);
  return body;
}
