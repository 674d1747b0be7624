// `npm run projector`: keeps the query database's views up to date from the streams (src/query/projector.ts).
// Several may run: each stream's durable consumer hands one event at a time to one of them, the others stand by.
import { ConfigError, loadConfig } from '../config';
import { connectNats } from '../events/nats-connection';
import { connectQueryDb } from './db';
import { startProjector } from './projector';

async function main() {
  const config = loadConfig();
  if (!config.queryDatabaseUrl || !config.events.natsServers) {
    throw new ConfigError('set QUERY_DATABASE_URL and NATS_URL, or use `npm start`, which runs everything');
  }
  const nats = await connectNats(config.events.natsServers, 'order-saga-projector');
  const db = connectQueryDb(config.queryDatabaseUrl);
  const projector = startProjector({ nats, db, log: (line) => console.error(`projector: ${line}`) });
  const stop = () =>
    void projector
      .stop()
      .then(() => Promise.all([db.$disconnect(), nats.close()]))
      .then(() => process.exit(0));
  // Handlers before the 'applying' line: whoever waits for it may signal at once.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`projector: applying events from ${config.events.natsServers.join(', ')} to the query database`);
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? `projector: configuration error: ${error.message}` : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
