// loadProviderConfig: defaults, and a clear error naming the variable for every bad value.
import assert from 'node:assert/strict';
import { loadProviderConfig, ProviderConfigError } from '../../src/payment-provider/config';

describe('payment provider configuration', function () {
  it('has working development defaults', function () {
    assert.deepEqual(loadProviderConfig({}), {
      host: '127.0.0.1',
      port: 3100,
      dataDir: '.data/payment-provider',
      apiKey: 'dev-provider-key',
      webhookSecret: 'dev-webhook-secret',
      callbackUrl: 'http://127.0.0.1:3000/payments/callback',
      confirmDelayMs: 1_000,
      webhook: { timeoutMs: 10_000, backoffBaseMs: 500, backoffMaxMs: 30_000 },
    });
  });

  it('reads every variable', function () {
    const config = loadProviderConfig({
      PROVIDER_HOST: '0.0.0.0',
      PROVIDER_PORT: '0',
      PROVIDER_DATA_DIR: '/var/lib/psp',
      PAYMENT_PROVIDER_API_KEY: 'k',
      PAYMENT_WEBHOOK_SECRET: 's',
      PUBLIC_URL: 'https://shop.example/',
      SANDBOX_CONFIRM_DELAY_MS: 'off',
      PROVIDER_WEBHOOK_TIMEOUT_MS: '2000',
      PROVIDER_WEBHOOK_BACKOFF_MS: '10',
      PROVIDER_WEBHOOK_BACKOFF_MAX_MS: '20',
    });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 0);
    assert.equal(config.dataDir, '/var/lib/psp');
    assert.equal(config.apiKey, 'k');
    assert.equal(config.webhookSecret, 's');
    assert.equal(config.callbackUrl, 'https://shop.example/payments/callback');
    assert.equal(config.confirmDelayMs, 'off');
    assert.deepEqual(config.webhook, { timeoutMs: 2_000, backoffBaseMs: 10, backoffMaxMs: 20 });
    assert.equal(loadProviderConfig({ PAYMENT_CALLBACK_URL: 'http://api:3000/cb', PUBLIC_URL: 'http://x' }).callbackUrl, 'http://api:3000/cb');
    assert.equal(loadProviderConfig({ SANDBOX_CONFIRM_DELAY_MS: '0' }).confirmDelayMs, 0);
    assert.equal(loadProviderConfig({ SANDBOX_CONFIRM_DELAY_MS: 'manual' }).confirmDelayMs, 'off');
  });

  it('names the variable of every bad value', function () {
    for (const [name, value] of [
      ['PROVIDER_PORT', '70000'],
      ['PROVIDER_PORT', 'http'],
      ['SANDBOX_CONFIRM_DELAY_MS', '1.5'],
      ['SANDBOX_CONFIRM_DELAY_MS', 'soon'],
      ['PAYMENT_PROVIDER_API_KEY', ' '],
      ['PAYMENT_WEBHOOK_SECRET', ''],
      ['PAYMENT_CALLBACK_URL', 'not a url'],
      ['PUBLIC_URL', 'mailto:x@y'],
      ['PROVIDER_DATA_DIR', ''],
      ['PROVIDER_WEBHOOK_BACKOFF_MS', '0'],
      ['PROVIDER_WEBHOOK_BACKOFF_MAX_MS', '100'], // below the default base of 500
    ]) {
      assert.throws(
        () => loadProviderConfig({ [name]: value }),
        (error: unknown) => error instanceof ProviderConfigError && error.message.includes(name),
        `${name}=${JSON.stringify(value)}`,
      );
    }
  });
});
