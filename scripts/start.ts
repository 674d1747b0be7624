// `npm start`: runs the whole system on embedded defaults (or on what the environment configures) and
// stops it cleanly on Ctrl-C.
import { DefaultLogger } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../src/config';
import { startStack } from '../src/local-stack/stack';
import { installRuntimeWithMetrics } from '../src/observability/temporal';

async function main() {
  const config = loadConfig();
  // This script owns shutdown: it stops the API first, then the workers, then the servers.
  // With the SDK's runtime metrics, which the workers' GET /metrics appends to theirs.
  const runtimeMetricsUrl = await installRuntimeWithMetrics({ shutdownSignals: [], logger: new DefaultLogger(config.logLevel ?? 'WARN') });
  const stack = await startStack({
    config,
    runtimeMetricsUrl,
    postgresPort: config.localStack.postgresPort,
    temporalPort: config.localStack.temporalPort,
    temporalUiPort: config.localStack.temporalUiPort,
    providerPort: config.localStack.providerPort,
  });
  console.log('');
  console.log(`  Order API:        ${stack.apiUrl}   (try: curl -H 'Authorization: Bearer <key>' ${stack.apiUrl}/catalog)`);
  if (stack.temporalUiUrl) console.log(`  Temporal Web UI:  ${stack.temporalUiUrl}`);
  console.log(`  Temporal server:  ${stack.temporalAddress}`);
  console.log(`  Payment provider: ${stack.providerUrl}`);
  console.log(`  NATS JetStream:   ${stack.natsServers.join(', ')}`);
  console.log(`  Service read APIs: ${[...new Set(Object.values(stack.serviceUrls))].join(', ')}   (orders, inventory, payments, shipping)`);
  console.log(`  Metrics:          ${stack.apiUrl}/metrics (API)${stack.workers?.serviceApi ? `, ${stack.workers.serviceApi.url}/metrics (workers, Temporal SDK)` : ''}`);
  if (config.auth.usingDevDefaults) {
    // Development keys only: API_KEYS replaces them, and production refuses them.
    console.log('  API keys (development defaults; set API_KEYS to replace them):');
    for (const { role, principal, key } of config.auth.apiKeys) console.log(`    ${role.padEnd(9)} ${principal.padEnd(10)} ${key}`);
  } else {
    console.log(`  API keys:         from API_KEYS (${config.auth.apiKeys.map(({ role, principal }) => `${role} ${principal}`).join(', ')})`);
  }
  console.log('  Press Ctrl-C to stop.');
  console.log('');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the API, the workers and read APIs, the projector, relays, payment provider, NATS, Temporal and PostgreSQL...`);
    stack.stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? `configuration error: ${error.message}` : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
