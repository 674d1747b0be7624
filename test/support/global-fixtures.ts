// Mocha global fixtures: a quiet Temporal runtime (activity failures that tests provoke on purpose would
// otherwise print pages of stack traces), the compiled entry points, the workflow bundle every saga worker of the
// tests loads, and the PostgreSQL cluster every database-backed suite uses.
//
// Mocha runs the suites in parallel worker processes (.mocharc.json): the global setup below runs once, in the main
// process, before the workers start (they find the cluster and the bundle through their environment,
// test/support/postgres.ts and test/support/temporal.ts);
// the runtime is installed by every process that loads this file, each worker included.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { buildOnce } from '../../scripts/compiled';
import { startTestCluster, stopTestCluster } from './postgres';
import { shareWorkflowBundle } from './temporal';

Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });

let removeWorkflowBundle: (() => void) | undefined;

export async function mochaGlobalSetup() {
  // The compiled entry points some suites run as processes (scripts/compiled.ts), built before any worker needs them.
  buildOnce();
  const [remove] = await Promise.all([shareWorkflowBundle(), startTestCluster()]);
  removeWorkflowBundle = remove;
}

export async function mochaGlobalTeardown() {
  await stopTestCluster();
  removeWorkflowBundle?.();
}
