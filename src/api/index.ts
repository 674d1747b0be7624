// `npm run api`: the HTTP API alone, against configured databases and Temporal (see docker-compose.yml).
import { loadConfig } from '../config';
import { startApiServer } from './server';

async function main() {
  const config = loadConfig();
  if (!config.temporal.address || !config.databaseUrls) {
    throw new Error('set TEMPORAL_ADDRESS and the four *_DATABASE_URL variables, or use `npm start`, which runs everything');
  }
  const api = await startApiServer({ config, databaseUrls: config.databaseUrls, temporalAddress: config.temporal.address });
  console.log(`api: listening on ${api.url}`);
  const stop = () => void api.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
