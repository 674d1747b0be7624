// Starts the sandbox payment provider in this process: its store (replayed from the data folder), the bank's
// pending decisions, the webhooks still owed, and its HTTP API. `npm start`, the tests and
// src/payment-provider/index.ts (its own process) all start it through here.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProviderConfig } from './config';
import { createProviderApp } from './http';
import { Ledger } from './ledger';
import { ProviderStore } from './store';
import { WebhookDispatcher } from './webhooks';

export interface PaymentProviderOptions {
  /** Folder of the provider's durable log; created if missing. One provider per folder. */
  dataDir: string;
  /** Bearer key the provider's clients must present. */
  apiKey: string;
  /** HMAC-SHA256 key of the webhooks' X-Signature. */
  webhookSecret: string;
  /** Where the webhooks go (the API's POST /payments/callback). */
  callbackUrl: string;
  /** The sandbox bank confirms each authorization after this many ms (0: at once); 'off': only POST .../decide decides. Default 1000. */
  confirmDelayMs?: number | 'off';
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port (read it from `url`). */
  port?: number;
  webhook?: Partial<ProviderConfig['webhook']>;
  /** Default: console.log. */
  log?: (line: string) => void;
}

export interface RunningPaymentProvider {
  /** Base URL of the API, e.g. http://127.0.0.1:3100 */
  url: string;
  port: number;
  /** Stops serving and sending; everything owed is on disk and resumes at the next start on the same folder. */
  stop(): Promise<void>;
}

export async function startPaymentProvider(options: PaymentProviderOptions): Promise<RunningPaymentProvider> {
  const log = options.log ?? ((line: string) => console.log(line));
  const store = await ProviderStore.open(options.dataDir, log);
  const webhooks = new WebhookDispatcher(store, {
    callbackUrl: options.callbackUrl,
    secret: options.webhookSecret,
    timeoutMs: options.webhook?.timeoutMs,
    backoffBaseMs: options.webhook?.backoffBaseMs,
    backoffMaxMs: options.webhook?.backoffMaxMs,
    log,
  });
  const ledger = new Ledger(store, {
    confirmDelayMs: options.confirmDelayMs ?? 1_000,
    onWebhook: (event) => webhooks.enqueue(event),
    log,
  });
  const app = createProviderApp(ledger, { apiKey: options.apiKey, log });
  const host = options.host ?? '127.0.0.1';

  let server: Server;
  try {
    server = app.listen(options.port ?? 0, host);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  ledger.start();
  webhooks.start();

  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    stop() {
      stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        ledger.stop();
        await webhooks.stop();
        await store.close();
      })();
      return stopping;
    },
  };
}
