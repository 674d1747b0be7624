// `npm run audit`: checks the service databases for orders left half done, cross-checks every order that is not
// closed against its workflow in Temporal, reconciles the payment provider's records with the payments database,
// and audits the event path (no event lost or applied twice, every order's event stream and every query view
// equal to the service databases). Exits 1 on any violation. Reads what the configuration names
// (*_DATABASE_URL, QUERY_DATABASE_URL, NATS_URL, TEMPORAL_ADDRESS, PAYMENT_PROVIDER_URL), or else what
// `npm start` runs on its default ports (start it first).
import { Client, Connection } from '@temporalio/client';
import { loadConfig, SERVICES, type DatabaseUrls } from '../src/config';
import { httpPaymentProvider } from '../src/activities/payments/provider';
import { auditDatabases, formatReport } from '../src/audit/auditor';
import { connectNats } from '../src/events/nats-connection';
import { QUERY_DATABASE } from '../src/local-stack/postgres';
import { temporalConnectionOptions } from '../src/temporal-connection';

async function main() {
  const config = loadConfig();
  const port = config.localStack.postgresPort;
  const urls: DatabaseUrls =
    config.databaseUrls ?? (Object.fromEntries(SERVICES.map((s) => [s, `postgresql://postgres:postgres@127.0.0.1:${port}/${s}`])) as DatabaseUrls);
  const temporal = { ...config.temporal, address: config.temporal.address ?? `127.0.0.1:${config.localStack.temporalPort}` };
  const connection = await Connection.connect(temporalConnectionOptions(temporal).client).catch((error) => {
    throw new Error(`cannot reach Temporal at ${temporal.address} to cross-check running orders: ${String(error)}`);
  });
  const queryDatabaseUrl = config.queryDatabaseUrl ?? `postgresql://postgres:postgres@127.0.0.1:${port}/${QUERY_DATABASE}`;
  const natsServers = config.events.natsServers ?? [`nats://127.0.0.1:${config.localStack.natsPort}`];
  const nats = await connectNats(natsServers, 'order-saga-audit').catch((error) => {
    throw new Error(`cannot reach NATS at ${natsServers.join(', ')} to audit the event path: ${String(error)}`);
  });
  try {
    const provider = httpPaymentProvider({
      url: config.payments.providerUrl ?? `http://127.0.0.1:${config.localStack.providerPort}`,
      apiKey: config.payments.providerApiKey,
    });
    const report = await auditDatabases(urls, {
      temporal: new Client({ connection, namespace: config.temporal.namespace }),
      provider,
      events: { queryDatabaseUrl, nats },
    });
    console.log(formatReport(report));
    process.exitCode = report.violations === 0 ? 0 : 1;
  } finally {
    await Promise.all([connection.close(), nats.close()]);
  }
}

main().catch((error) => {
  console.error(`audit: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
});
