// The sandbox payment provider as its own program: `npm run payment-provider` (tsx src/payment-provider/index.ts).
// It reads its environment (src/payment-provider/config.ts), prints `payment-provider: listening on <url>` when
// it is ready, and stops cleanly on SIGINT/SIGTERM. Killed outright, it loses nothing it has answered: its next
// start on the same data folder makes the decisions and sends the webhooks still owed.
import { loadProviderConfig, ProviderConfigError } from './config';
import { stopOnSignals } from '../stop-on-signals';
import { startPaymentProvider } from './start';

async function main(): Promise<void> {
  let config;
  try {
    config = loadProviderConfig();
  } catch (error) {
    if (error instanceof ProviderConfigError) {
      console.error(`payment-provider: configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const provider = await startPaymentProvider({
    dataDir: config.dataDir,
    apiKey: config.apiKey,
    webhookSecret: config.webhookSecret,
    callbackUrl: config.callbackUrl,
    confirmDelayMs: config.confirmDelayMs,
    host: config.host,
    port: config.port,
    webhook: config.webhook,
  });
  // Handlers first: whoever waits for the 'listening' line may signal at once, before a handler set after it.
  stopOnSignals(
    (signal) => {
      console.log(`payment-provider: ${signal}, stopping`);
      return provider.stop();
    },
    { error: ({ err }, message) => console.error(`payment-provider: ${message}`, err) },
  );
  console.log(`payment-provider: listening on ${provider.url}`);
  console.log(
    `payment-provider: data in ${config.dataDir}; webhooks to ${config.callbackUrl}; ` +
      (config.confirmDelayMs === 'off' ? 'decisions only through POST /v1/authorizations/:ref/decide' : `auto-confirm after ${config.confirmDelayMs} ms`),
  );
}

main().catch((error) => {
  console.error(`payment-provider: failed to start: ${error?.stack ?? error}`);
  process.exit(1);
});
