// Everything the sandbox payment provider reads from its environment, in one function.
//
// | variable                     | default                                  | meaning |
// |------------------------------|------------------------------------------|---------|
// | PROVIDER_HOST                | 127.0.0.1                                | interface the provider's API listens on |
// | PROVIDER_PORT                | 3100                                     | its port (0: any free port; the URL is printed) |
// | PROVIDER_DATA_DIR            | .data/payment-provider                   | folder of its durable log (created if missing) |
// | PAYMENT_PROVIDER_API_KEY     | dev-provider-key                         | bearer key its clients present — set it in production |
// | PAYMENT_WEBHOOK_SECRET       | dev-webhook-secret                       | HMAC-SHA256 key of its webhooks (X-Signature) — set it in production |
// | PAYMENT_CALLBACK_URL         | $PUBLIC_URL/payments/callback, else http://127.0.0.1:3000/payments/callback | where its webhooks go |
// | SANDBOX_CONFIRM_DELAY_MS     | 1000                                     | the sandbox bank confirms each authorization after this many ms (0: at once); `off`: only POST /v1/authorizations/:ref/decide decides |
// | PROVIDER_WEBHOOK_TIMEOUT_MS  | 10000                                    | how long one webhook attempt waits for an answer |
// | PROVIDER_WEBHOOK_BACKOFF_MS  | 500                                      | wait before the 2nd attempt; doubles per attempt … |
// | PROVIDER_WEBHOOK_BACKOFF_MAX_MS | 30000                                 | … up to this |
export interface ProviderConfig {
  host: string;
  port: number;
  dataDir: string;
  apiKey: string;
  webhookSecret: string;
  callbackUrl: string;
  confirmDelayMs: number | 'off';
  webhook: { timeoutMs: number; backoffBaseMs: number; backoffMaxMs: number };
}

export class ProviderConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ProviderConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function secret(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined) return fallback;
  if (raw.trim() === '') throw new ProviderConfigError(`${name} must not be empty (unset it to use the development default)`);
  return raw;
}

function httpUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProviderConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ProviderConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  return raw;
}

export function loadProviderConfig(env: NodeJS.ProcessEnv = process.env): ProviderConfig {
  const delayRaw = env.SANDBOX_CONFIRM_DELAY_MS?.trim();
  const confirmDelayMs =
    delayRaw === 'off' || delayRaw === 'manual' ? ('off' as const) : integer(env, 'SANDBOX_CONFIRM_DELAY_MS', 1_000, 0, 24 * 3_600_000);
  const publicUrl = env.PUBLIC_URL?.replace(/\/+$/, '');
  const callbackUrl = env.PAYMENT_CALLBACK_URL
    ? httpUrl('PAYMENT_CALLBACK_URL', env.PAYMENT_CALLBACK_URL)
    : httpUrl(publicUrl ? 'PUBLIC_URL' : 'PAYMENT_CALLBACK_URL', `${publicUrl ?? 'http://127.0.0.1:3000'}/payments/callback`);
  const dataDir = env.PROVIDER_DATA_DIR ?? '.data/payment-provider';
  if (dataDir.trim() === '') throw new ProviderConfigError('PROVIDER_DATA_DIR must not be empty');
  const backoffBaseMs = integer(env, 'PROVIDER_WEBHOOK_BACKOFF_MS', 500, 1);
  const backoffMaxMs = integer(env, 'PROVIDER_WEBHOOK_BACKOFF_MAX_MS', 30_000, 1);
  if (backoffMaxMs < backoffBaseMs) {
    throw new ProviderConfigError(`PROVIDER_WEBHOOK_BACKOFF_MAX_MS (${backoffMaxMs}) must be at least PROVIDER_WEBHOOK_BACKOFF_MS (${backoffBaseMs})`);
  }
  return {
    host: env.PROVIDER_HOST?.trim() || '127.0.0.1',
    port: integer(env, 'PROVIDER_PORT', 3100, 0, 65_535),
    dataDir,
    apiKey: secret(env, 'PAYMENT_PROVIDER_API_KEY', 'dev-provider-key'),
    webhookSecret: secret(env, 'PAYMENT_WEBHOOK_SECRET', 'dev-webhook-secret'),
    callbackUrl,
    confirmDelayMs,
    webhook: { timeoutMs: integer(env, 'PROVIDER_WEBHOOK_TIMEOUT_MS', 10_000, 1), backoffBaseMs, backoffMaxMs },
  };
}
