// `npm run projector`: keeps the query database's views up to date from the streams (src/query/projector.ts).
// Several may run: each stream's durable consumer hands one event at a time to one of them, the others stand by.
import { ConfigError, loadConfig } from '../config';
import { connectNats } from '../events/nats-connection';
import { createLogger } from '../observability/logging';
import { startTracing } from '../observability/tracing';
import { stopOnSignals } from '../stop-on-signals';
import { connectProjectorDb, startProjector } from './projector';

async function main() {
  const config = loadConfig();
  const logger = createLogger({ service: 'projector', level: config.logLevel, format: config.logFormat });
  if (!config.queryDatabaseUrl || !config.events.natsServers) {
    throw new ConfigError('set QUERY_DATABASE_URL and NATS_URL, or use `npm start`, which runs everything');
  }
  // Traces, when an OTLP endpoint is configured: each event's processing continues the trace it was published in.
  const tracing = startTracing({ serviceName: 'order-saga-projector', config: config.tracing });
  const nats = await connectNats(config.events.natsServers, 'order-saga-projector');
  const db = connectProjectorDb(config.queryDatabaseUrl, logger);
  const projector = startProjector({ nats, db, logger });
  // Handlers before the 'applying' line: whoever waits for it may signal at once.
  stopOnSignals(async () => {
    await projector.stop();
    await Promise.all([db.end(), nats.close()]);
    await tracing.shutdown();
  }, logger.child({ component: 'main' }));
  // Scripts and tests wait for this line (its "msg" starts with "applying events").
  logger.child({ component: 'main' }).info(`applying events from ${config.events.natsServers.join(', ')} to the query database`);
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? `projector: configuration error: ${error.message}` : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
