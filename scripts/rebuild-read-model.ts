// `npm run read-model:rebuild`: rebuilds the query database's views from the streams, from their first event
// (src/query/rebuild.ts). Uses QUERY_DATABASE_URL and NATS_URL, or else what `npm start` runs on its default
// ports (start it first). The projector may keep running: it waits for the rebuild, then goes on.
import { loadConfig } from '../src/config';
import { connectNats } from '../src/events/nats-connection';
import { connectQueryDb } from '../src/query/db';
import { rebuildViews } from '../src/query/rebuild';

async function main() {
  const config = loadConfig();
  const queryUrl = config.queryDatabaseUrl ?? `postgresql://postgres:postgres@127.0.0.1:${config.localStack.postgresPort}/query`;
  const natsServers = config.events.natsServers ?? [`nats://127.0.0.1:${config.localStack.natsPort}`];
  const nats = await connectNats(natsServers, 'order-saga-rebuild');
  const db = connectQueryDb(queryUrl);
  try {
    const report = await rebuildViews(db, nats, (line) => console.log(line));
    const total = Object.values(report.events).reduce((sum, count) => sum + count, 0);
    console.log(`rebuild: views rebuilt from ${total} events`);
    for (const letter of report.deadLettered) console.log(`rebuild: not applied: ${letter.stream}#${letter.streamSequence}: ${letter.reason}`);
  } finally {
    await Promise.all([db.$disconnect(), nats.close()]);
  }
}

main().catch((error) => {
  console.error(`rebuild: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
