// Mocha global fixtures: a quiet Temporal runtime (activity failures that tests provoke on purpose would
// otherwise print pages of stack traces), the compiled entry points, and the PostgreSQL cluster every
// database-backed suite uses.
//
// Mocha runs the suites in parallel worker processes (.mocharc.json): the global setup below runs once, in the main
// process, before the workers start (they find the cluster through their environment, test/support/postgres.ts);
// the runtime is installed by every process that loads this file, each worker included.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { buildOnce } from '../../scripts/compiled';
import { startTestCluster, stopTestCluster } from './postgres';

Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });

export async function mochaGlobalSetup() {
  // The compiled entry points some suites run as processes (scripts/compiled.ts), built before any worker needs them.
  buildOnce();
  await startTestCluster();
}

export async function mochaGlobalTeardown() {
  await stopTestCluster();
}
