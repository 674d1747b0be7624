// `npm run events:status [-- --json]`: the state of the event path — outbox backlogs and replication slots,
// streams, durable consumers, dead letters — without the `nats` CLI. Reads what the configuration names
// (*_DATABASE_URL, NATS_URL), or else what `npm start` runs on its default ports (start it first). Exits 2 when
// a database or NATS cannot be reached.
import { loadConfig, SERVICES, type DatabaseUrls } from '../src/config';
import { connectNats } from '../src/events/nats-connection';
import { eventsStatus, formatEventsStatus } from '../src/events/status-report';

async function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((arg) => arg !== '--json');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown.join(' ')}; usage: npm run events:status [-- --json]`);
  const config = loadConfig();
  const port = config.localStack.postgresPort;
  const databaseUrls: DatabaseUrls =
    config.databaseUrls ?? (Object.fromEntries(SERVICES.map((s) => [s, `postgresql://postgres:postgres@127.0.0.1:${port}/${s}`])) as DatabaseUrls);
  const natsServers = config.events.natsServers ?? [`nats://127.0.0.1:${config.localStack.natsPort}`];
  const nats = await connectNats(natsServers, 'order-saga-events-status').catch((error) => {
    throw new Error(`cannot reach NATS at ${natsServers.join(', ')}: ${error instanceof Error ? error.message : String(error)}`);
  });
  try {
    const report = await eventsStatus({ databaseUrls, nats });
    console.log(args.includes('--json') ? JSON.stringify(report, null, 2) : formatEventsStatus(report));
  } finally {
    await nats.close();
  }
}

main().catch((error) => {
  console.error(`events:status: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
});
