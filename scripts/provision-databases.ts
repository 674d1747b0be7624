// `npm run db:provision`: applies every service's migrations and loads the seed data into the databases
// named by the *_DATABASE_URL variables (what the docker-compose `provision` service runs).
import { loadConfig } from '../src/config';
import { provisionDatabases } from '../src/local-stack/provision';

async function main() {
  const { databaseUrls } = loadConfig();
  if (!databaseUrls) throw new Error('set ORDERS_DATABASE_URL, INVENTORY_DATABASE_URL, PAYMENTS_DATABASE_URL and SHIPPING_DATABASE_URL');
  await provisionDatabases(databaseUrls);
  console.log('provision: databases migrated and seeded');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
