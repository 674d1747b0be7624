// `npm run relay`: publishes the outbox of every service database it is given (*_DATABASE_URL) to that service's
// JetStream stream, by tailing the write-ahead log (RELAY_MODE=wal, the default) or by polling (RELAY_MODE=
// polling). Run two for availability: per database one is active, the other waits and takes over.
import { SERVICES, ConfigError, loadConfig } from '../config';
import { connectNats } from '../events/nats-connection';
import { ensureStreams } from '../events/streams';
import { createRelay } from '../events/wal-relay';
import { createLogger } from '../observability/logging';
import { startTracing } from '../observability/tracing';
import { stopOnSignals } from '../stop-on-signals';

async function main() {
  const config = loadConfig();
  const logger = createLogger({ service: 'relay', level: config.logLevel, format: config.logFormat });
  const { databaseUrls } = config;
  const { natsServers, relayMode, outboxRetentionMs, streamReplicas } = config.events;
  if (!databaseUrls || !natsServers) {
    throw new ConfigError('set the *_DATABASE_URL variables and NATS_URL, or use `npm start`, which runs everything');
  }
  // Traces, when an OTLP endpoint is configured: each publish continues the trace its event was written in.
  const tracing = startTracing({ serviceName: 'order-saga-relay', config: config.tracing });
  const nats = await connectNats(natsServers, 'order-saga-relay');
  await ensureStreams(nats, { replicas: streamReplicas });
  const relays = SERVICES.map((service) => createRelay({ mode: relayMode, service, databaseUrl: databaseUrls[service], nats, retentionMs: outboxRetentionMs }));
  const runs = relays.map((relay) => relay.run({ logger }));
  // Handlers before the 'publishing' line: whoever waits for it may signal at once.
  stopOnSignals(async () => {
    for (const relay of relays) relay.stop();
    await Promise.all(runs);
    await Promise.all(relays.map((relay) => relay.close()));
    await nats.close();
    await tracing.shutdown();
  }, logger.child({ component: 'main' }));
  // Scripts and tests wait for this line (its "msg" starts with "publishing the outboxes").
  logger.child({ component: 'main' }).info({ mode: relayMode }, `publishing the outboxes of ${SERVICES.join(', ')} to ${natsServers.join(', ')} (${relayMode} mode)`);
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? `relay: configuration error: ${error.message}` : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
