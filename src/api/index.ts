// `npm run api`: the HTTP API alone, against configured databases and Temporal (see docker-compose.yml).
import { ConfigError, loadConfig } from '../config';
import { describeTemporalConnection, temporalConnectionOptions } from '../temporal-connection';
import { startApiServer } from './server';

async function main() {
  const config = loadConfig();
  if (!config.temporal.address || !config.databaseUrls || !config.queryDatabaseUrl) {
    throw new ConfigError('set TEMPORAL_ADDRESS, the *_DATABASE_URL variables and QUERY_DATABASE_URL (and NATS_URL), or use `npm start`, which runs everything');
  }
  // Reads the TLS files now: a missing certificate stops the process at start, naming its variable.
  const temporal = describeTemporalConnection(temporalConnectionOptions(config.temporal));
  if (config.auth.usingDevDefaults) {
    console.warn('api: WARNING: API_KEYS is not set; using the development keys (see README). Never in production.');
  }
  const api = await startApiServer({
    config,
    ordersDatabaseUrl: config.databaseUrls.orders,
    queryDatabaseUrl: config.queryDatabaseUrl,
    natsServers: config.events.natsServers,
    temporalAddress: config.temporal.address,
  });
  // Handlers before the 'listening' line: whoever waits for it may signal at once.
  const stop = () => void api.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`api: listening on ${api.url} (Temporal ${temporal})`);
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? `api: configuration error: ${error.message}` : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
