// The saga's workflow bundle, built ahead of the worker that runs it. A worker that bundles at its start keeps what
// webpack and swc loaded and allocated, about 130 MiB (docs/performance.md), for as long as it runs. So:
// - the image bundles once at build time (`npm run build:workflows`, scripts/build-workflow-bundle.ts) and its saga
//   workers load that file (WORKFLOW_BUNDLE);
// - `npm start` bundles at every start, from the sources as they are, but in a child process that exits when done
//   (bundleInChildProcess), and its workers load the file it wrote.
// Either way the bundle has the workflow side of tracing, as every saga worker runs it (TRACING_WORKFLOW_MODULES).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, type Logger, type WorkflowBundle } from '@temporalio/worker';
import { TRACING_WORKFLOW_MODULES } from '../observability/temporal-tracing';

const PROJECT_ROOT = path.join(__dirname, '..', '..');
const BUILD_SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'build-workflow-bundle.ts');

const noop = () => {};
/** The bundler's logger that says only its errors: its build report at INFO would bury what the caller prints. */
export const QUIET_BUNDLER_LOGGER: Logger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: (message: string) => console.error(message) };

/** The saga's workflows as every saga worker runs them, with the workflow side of tracing (in memory). */
export function bundleSagaWorkflows(logger: Logger = QUIET_BUNDLER_LOGGER): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), workflowInterceptorModules: TRACING_WORKFLOW_MODULES, logger });
}

/** Bundles the workflows into `file`; returns its size in bytes. */
export async function buildWorkflowBundle(file: string, logger: Logger = QUIET_BUNDLER_LOGGER): Promise<number> {
  const { code } = await bundleSagaWorkflows(logger);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, code);
  return code.length;
}

/** buildWorkflowBundle in a child process (`npm run build:workflows -- <file>`), so that webpack's memory leaves with it. */
export async function bundleInChildProcess(file: string): Promise<void> {
  // From the project's folder, where `tsx/cjs` resolves, whatever the caller's working directory.
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', BUILD_SCRIPT, path.resolve(file)], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`bundling the workflows failed (exit ${code}):\n${stderr.trim()}`);
}
