// `npm start`: runs the whole system on embedded defaults (or on what the environment configures) and
// stops it cleanly on Ctrl-C.
import { ConfigError, loadConfig } from '../src/config';
import { startStack } from '../src/local-stack/stack';
import { createLogger, runtimeLogging } from '../src/observability/logging';
import { installRuntimeWithMetrics } from '../src/observability/temporal';
import { startTracing } from '../src/observability/tracing';

async function main() {
  const config = loadConfig();
  // One process runs everything, for a person at a terminal: readable lines unless LOG_FORMAT=json.
  const format = config.logFormat ?? 'pretty';
  const logger = createLogger({ service: 'order-saga', level: config.logLevel, format });
  const log = logger.child({ component: 'main' });
  // The banner below as it is on a terminal; as log lines where every line must be JSON.
  const say = format === 'pretty' ? (line: string) => console.log(line) : (line: string) => line.trim() && log.info(line.trim());
  // This script owns shutdown: it stops the API first, then the workers, then the servers.
  // With the SDK's runtime metrics, which the workers' GET /metrics appends to theirs, and its logs in this logger.
  const runtimeMetricsUrl = await installRuntimeWithMetrics({ shutdownSignals: [], ...runtimeLogging(logger, config.logLevel ?? 'WARN') }, (line) => log.warn(line));
  // Traces, when an OTLP endpoint is configured (src/observability/tracing.ts): one service for the whole process.
  const tracing = startTracing({ serviceName: 'order-saga', config: config.tracing });
  const stack = await startStack({
    config,
    logger,
    tracing,
    runtimeMetricsUrl,
    postgresPort: config.localStack.postgresPort,
    temporalPort: config.localStack.temporalPort,
    temporalUiPort: config.localStack.temporalUiPort,
    providerPort: config.localStack.providerPort,
  });
  say('');
  say(`  Order API:        ${stack.apiUrl}   (try: curl -H 'Authorization: Bearer <key>' ${stack.apiUrl}/catalog)`);
  if (stack.temporalUiUrl) say(`  Temporal Web UI:  ${stack.temporalUiUrl}`);
  say(`  Temporal server:  ${stack.temporalAddress}`);
  say(`  Payment provider: ${stack.providerUrl}`);
  say(`  NATS JetStream:   ${stack.natsServers.join(', ')}`);
  say(`  Service read APIs: ${[...new Set(Object.values(stack.serviceUrls))].join(', ')}   (orders, inventory, payments, shipping)`);
  say(`  Metrics:          ${stack.apiUrl}/metrics (API)${stack.workers?.serviceApi ? `, ${stack.workers.serviceApi.url}/metrics (workers, Temporal SDK)` : ''}`);
  if (config.auth.usingDevDefaults) {
    // Development keys only: API_KEYS replaces them, and production refuses them.
    say('  API keys (development defaults; set API_KEYS to replace them):');
    for (const { role, principal, key } of config.auth.apiKeys) say(`    ${role.padEnd(9)} ${principal.padEnd(10)} ${key}`);
  } else {
    say(`  API keys:         from API_KEYS (${config.auth.apiKeys.map(({ role, principal }) => `${role} ${principal}`).join(', ')})`);
  }
  say('  Press Ctrl-C to stop.');
  say('');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping the API, the workers and read APIs, the projector, relays, payment provider, NATS, Temporal and PostgreSQL...`);
    stack.stop().then(
      () => tracing.shutdown().finally(() => process.exit(0)),
      (error) => {
        log.error({ err: error }, 'stopping failed');
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
