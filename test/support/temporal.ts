// Temporal test servers from the binaries scripts/install-temporal.sh installed (the SDK's own download
// cannot run offline), and one workflow bundle shared by every suite.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { temporalTestServerPath } from '../../src/local-stack/tools';
import { bundleSagaWorkflows, QUIET_BUNDLER_LOGGER } from '../../src/worker/workflow-bundle';

let bundle: Promise<WorkflowBundle> | undefined;
let tracingBundle: Promise<WorkflowBundle> | undefined;

export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: QUIET_BUNDLER_LOGGER });
  return bundle;
}

/**
 * The workflows as every saga worker bundles them at start: with the workflow side of tracing, which a worker runs
 * whether tracing is on or off (src/observability/temporal-tracing.ts). workflowBundle() is the workflows alone.
 */
export function tracingWorkflowBundle(): Promise<WorkflowBundle> {
  tracingBundle ??= bundleSagaWorkflows();
  return tracingBundle;
}

export function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
  });
}

