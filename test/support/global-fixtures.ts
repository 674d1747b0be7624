// Mocha global fixtures: a quiet Temporal runtime (activity failures that tests provoke on purpose would
// otherwise print pages of stack traces), and the PostgreSQL cluster every database-backed suite uses.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startTestCluster, stopTestCluster } from './postgres';

export async function mochaGlobalSetup() {
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  await startTestCluster();
}

export async function mochaGlobalTeardown() {
  await stopTestCluster();
}
