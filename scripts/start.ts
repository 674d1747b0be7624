// `npm start`: runs the whole system on embedded defaults (or on what the environment configures) and
// stops it cleanly on Ctrl-C.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { loadConfig } from '../src/config';
import { startStack } from '../src/local-stack/stack';

async function main() {
  // This script owns shutdown: it stops the API first, then the workers, then the servers.
  Runtime.install({ shutdownSignals: [], logger: new DefaultLogger((process.env.LOG_LEVEL ?? 'WARN') as LogLevel) });
  const stack = await startStack({
    config: loadConfig(),
    postgresPort: Number(process.env.EMBEDDED_POSTGRES_PORT ?? 54329),
    temporalPort: Number(process.env.TEMPORAL_DEV_PORT ?? 7233),
    temporalUiPort: Number(process.env.TEMPORAL_UI_PORT ?? 8233),
  });
  console.log('');
  console.log(`  Order API:        ${stack.apiUrl}   (try: curl ${stack.apiUrl}/catalog)`);
  if (stack.temporalUiUrl) console.log(`  Temporal Web UI:  ${stack.temporalUiUrl}`);
  console.log(`  Temporal server:  ${stack.temporalAddress}`);
  console.log('  Press Ctrl-C to stop.');
  console.log('');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the API, workers, Temporal and PostgreSQL...`);
    stack.stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
