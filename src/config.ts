// Everything the system reads from its environment, in one place. docker-compose.yml and the README
// use exactly these names.
import { msToNumber } from '@temporalio/common/lib/time';

export const SERVICES = ['orders', 'inventory', 'payments', 'shipping'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The saga's own task queue, plus one per service so each can be scaled by its own workers. */
export const TASK_QUEUES = {
  saga: 'order-saga',
  orders: 'orders',
  inventory: 'inventory',
  payments: 'payments',
  shipping: 'shipping',
} as const;
export type WorkerRole = keyof typeof TASK_QUEUES;
export const WORKER_ROLES = Object.keys(TASK_QUEUES) as WorkerRole[];

export type DatabaseUrls = Record<ServiceName, string>;

export interface SagaPolicy {
  /** Orders whose total is above this many cents wait for a manager's approval. */
  approvalThresholdCents: number;
  /** How long a manager has to approve or reject before the order is rejected. */
  approvalTimeout: string;
  /** How long the payment provider has to confirm an authorization before the order is rejected. */
  paymentConfirmationTimeout: string;
  /** How long a scheduled shipment waits before it is dispatched: the window in which a cancellation still compensates. */
  dispatchDelay: string;
}

export interface Config {
  temporal: {
    /** host:port of a Temporal frontend; unset means `npm start` runs its own dev server. */
    address?: string;
    namespace: string;
    /** Where people open the Temporal Web UI (printed by `npm start`, returned in API links). */
    uiUrl?: string;
  };
  /** Connection strings of the four service databases; unset means `npm start` runs embedded PostgreSQL. */
  databaseUrls?: DatabaseUrls;
  api: { host: string; port: number; publicUrl: string };
  saga: SagaPolicy;
  payments: {
    /** `sandbox`: a simulated provider in the worker confirms each authorization through the callback. `external`: a real provider calls back. */
    provider: 'sandbox' | 'external';
    /** Secret the provider signs its callbacks with (HMAC-SHA256 of the raw body, header X-Signature). */
    webhookSecret: string;
    /** Where the provider sends confirmations; the API's callback endpoint by default. */
    callbackUrl: string;
    /** How long the sandbox provider takes to confirm. */
    sandboxConfirmDelayMs: number;
  };
  /** Bearer token a manager presents to approve or reject an order. */
  managerToken: string;
  /** Fault injection for reliability tests (src/worker/fault-injection.ts); unset in normal operation. */
  faultInjection?: string;
}

export class ConfigError extends Error {}

function duration(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name] ?? fallback;
  try {
    if (msToNumber(value as never) <= 0) throw new Error();
  } catch {
    throw new ConfigError(`${name} must be a positive duration such as "90s", "15 minutes" or "24h", got "${value}"`);
  }
  return value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

/** Database URLs are all given or none: a half-configured set would silently mix embedded and real databases. */
function databaseUrls(env: NodeJS.ProcessEnv): DatabaseUrls | undefined {
  const names = SERVICES.map((service) => `${service.toUpperCase()}_DATABASE_URL`);
  const given = names.filter((name) => env[name]);
  if (given.length === 0) return undefined;
  if (given.length < names.length) {
    const missing = names.filter((name) => !env[name]);
    throw new ConfigError(`set all of the service database URLs or none; missing ${missing.join(', ')}`);
  }
  return Object.fromEntries(SERVICES.map((service, i) => [service, env[names[i]]!])) as DatabaseUrls;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = integer(env, 'PORT', 3000);
  const host = env.HOST ?? '127.0.0.1';
  const publicUrl = (env.PUBLIC_URL ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`).replace(/\/$/, '');
  const provider = env.PAYMENT_PROVIDER ?? 'sandbox';
  if (provider !== 'sandbox' && provider !== 'external') {
    throw new ConfigError(`PAYMENT_PROVIDER must be "sandbox" or "external", got "${provider}"`);
  }
  return {
    temporal: {
      address: env.TEMPORAL_ADDRESS || undefined,
      namespace: env.TEMPORAL_NAMESPACE ?? 'default',
      uiUrl: env.TEMPORAL_UI_URL || undefined,
    },
    databaseUrls: databaseUrls(env),
    api: { host, port, publicUrl },
    saga: {
      approvalThresholdCents: integer(env, 'APPROVAL_THRESHOLD_CENTS', 100_000),
      approvalTimeout: duration(env, 'APPROVAL_TIMEOUT', '24h'),
      paymentConfirmationTimeout: duration(env, 'PAYMENT_CONFIRMATION_TIMEOUT', '15m'),
      dispatchDelay: duration(env, 'DISPATCH_DELAY', '10s'),
    },
    payments: {
      provider,
      webhookSecret: env.PAYMENT_WEBHOOK_SECRET ?? 'dev-webhook-secret',
      callbackUrl: env.PAYMENT_CALLBACK_URL ?? `${publicUrl}/payments/callback`,
      sandboxConfirmDelayMs: integer(env, 'SANDBOX_CONFIRM_DELAY_MS', 1000),
    },
    managerToken: env.MANAGER_TOKEN ?? 'dev-manager-token',
    faultInjection: env.FAULT_INJECTION || undefined,
  };
}
