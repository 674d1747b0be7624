// `npm run api`: the HTTP API alone (see docker-compose.yml). It needs Temporal, the query database, NATS and the
// services' read APIs (*_SERVICE_URL), and no service database: each service answers for its own data.
import { ConfigError, loadConfig, requireServiceUrls, SERVICES } from '../config';
import { describeTemporalConnection, temporalConnectionOptions } from '../temporal-connection';
import { createLogger } from '../observability/logging';
import { startTracing } from '../observability/tracing';
import { stopOnSignals } from '../stop-on-signals';
import { startApiServer } from './server';

async function main() {
  const config = loadConfig();
  const logger = createLogger({ service: 'api', level: config.logLevel, format: config.logFormat });
  const log = logger.child({ component: 'main' });
  if (!config.temporal.address || !config.queryDatabaseUrl) {
    throw new ConfigError('set TEMPORAL_ADDRESS, QUERY_DATABASE_URL, the *_SERVICE_URL variables (and NATS_URL), or use `npm start`, which runs everything');
  }
  const serviceUrls = requireServiceUrls(config.serviceUrls, SERVICES, 'SERVICE_URL', 'the API');
  // Reads the TLS files now: a missing certificate stops the process at start, naming its variable.
  const temporal = describeTemporalConnection(temporalConnectionOptions(config.temporal));
  if (config.auth.usingDevDefaults) {
    log.warn('API_KEYS is not set; using the development keys (see README). Never in production.');
  }
  // Traces, when an OTLP endpoint is configured (src/observability/tracing.ts).
  const tracing = startTracing({ serviceName: 'order-saga-api', config: config.tracing });
  const api = await startApiServer({
    config,
    serviceUrls,
    queryDatabaseUrl: config.queryDatabaseUrl,
    natsServers: config.events.natsServers,
    temporalAddress: config.temporal.address,
    logger,
    tracing,
  });
  // Handlers before the 'listening' line: whoever waits for it may signal at once.
  stopOnSignals(async () => {
    await api.close();
    await tracing.shutdown();
  }, log);
  // Scripts and tests wait for this line (its "msg" starts with "listening on").
  log.info(`listening on ${api.url} (Temporal ${temporal})`);
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? `api: configuration error: ${error.message}` : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
