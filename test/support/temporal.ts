// Temporal test servers from the binaries scripts/install-temporal.sh installed (the SDK's own download
// cannot run offline), and one workflow bundle shared by every suite.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleOption } from '@temporalio/worker';
import { temporalTestServerPath } from '../../src/local-stack/tools';
import { buildWorkflowBundle, bundleSagaWorkflows } from '../../src/worker/workflow-bundle';

/** Where a mocha worker process (parallel mode) finds the bundle the main process built (shareWorkflowBundle). */
const SHARED_BUNDLE_PATH = 'ORDER_SAGA_TEST_WORKFLOW_BUNDLE';

let bundle: Promise<WorkflowBundleOption> | undefined;

/**
 * The workflows as every saga worker runs them (with the workflow side of tracing): the file the run's global setup
 * built, or, in a process started without it (one test file run on its own), bundled once per process.
 */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  const shared = process.env[SHARED_BUNDLE_PATH];
  bundle ??= shared ? Promise.resolve({ codePath: shared }) : bundleSagaWorkflows();
  return bundle;
}

/**
 * Bundles the workflows once for the whole run (mocha's global setup, in the main process), into a file the workers
 * started from now on load: bundling costs some 4 CPU-seconds, which every parallel worker process paid otherwise.
 * Returns what removes the file.
 */
export async function shareWorkflowBundle(): Promise<() => void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-test-bundle-'));
  const file = path.join(dir, 'workflow-bundle.js');
  await buildWorkflowBundle(file);
  process.env[SHARED_BUNDLE_PATH] = file;
  return () => rmSync(dir, { recursive: true, force: true });
}

export function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
  });
}

