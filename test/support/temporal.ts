// Temporal test servers from the binaries scripts/install-temporal.sh installed (the SDK's own download
// cannot run offline), and one workflow bundle shared by every suite.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import { temporalTestServerPath } from '../../src/local-stack/tools';
import { bundleSagaWorkflows } from '../../src/worker/workflow-bundle';

let bundle: Promise<WorkflowBundle> | undefined;

/** The workflows as every saga worker runs them (with the workflow side of tracing), bundled once per test process. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleSagaWorkflows();
  return bundle;
}

export function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
  });
}

