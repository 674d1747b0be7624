// `npm run db:provision`: applies every service's migrations and loads the seed data into the databases
// named by the *_DATABASE_URL variables (and migrates QUERY_DATABASE_URL's), and, when NATS_URL is set, creates the event streams (what the
// docker-compose `provision` service runs). Each part is idempotent: running it again changes nothing.
import { loadConfig } from '../src/config';
import { connectNats } from '../src/events/nats-connection';
import { ensureStreams } from '../src/events/streams';
import { provisionDatabases } from '../src/local-stack/provision';

async function main() {
  const { databaseUrls, queryDatabaseUrl, events } = loadConfig();
  if (!databaseUrls) throw new Error('set ORDERS_DATABASE_URL, INVENTORY_DATABASE_URL, PAYMENTS_DATABASE_URL and SHIPPING_DATABASE_URL');
  await provisionDatabases(databaseUrls, queryDatabaseUrl);
  console.log('provision: databases migrated and seeded');
  if (events.natsServers) {
    const nc = await connectNats(events.natsServers, 'order-saga-provision');
    try {
      await ensureStreams(nc, { replicas: events.streamReplicas });
    } finally {
      await nc.close();
    }
    console.log(`provision: event streams ready on ${events.natsServers.join(', ')} (${events.streamReplicas} replica(s))`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
