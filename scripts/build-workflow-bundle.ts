// `npm run build:workflows [-- <file>]`: bundles the saga's workflows, with the workflow side of tracing as every
// saga worker runs it (src/observability/temporal-tracing.ts), into one file (dist/workflow-bundle.js unless given).
// A worker started with WORKFLOW_BUNDLE=<that file> loads it instead of bundling at start: no webpack in the worker,
// which keeps it about 130 MiB smaller (docs/performance.md). The image builds it (Dockerfile); `npm start` and the
// tests' in-process workers bundle from the sources, so that an edit never runs against a stale bundle there.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, type Logger } from '@temporalio/worker';
import { TRACING_WORKFLOW_MODULES } from '../src/observability/temporal-tracing';

export const DEFAULT_BUNDLE_FILE = path.join(__dirname, '..', 'dist', 'workflow-bundle.js');

/** Writes the bundle to `file` and returns its size in bytes. */
export async function buildWorkflowBundle(file: string, logger?: Logger): Promise<number> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    workflowInterceptorModules: TRACING_WORKFLOW_MODULES,
    ...(logger ? { logger } : {}),
  });
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, code);
  return code.length;
}

if (require.main === module) {
  const file = path.resolve(process.argv[2] ?? DEFAULT_BUNDLE_FILE);
  buildWorkflowBundle(file).then(
    (bytes) => console.log(`workflow bundle: ${path.relative(process.cwd(), file)} (${Math.round(bytes / 1024)} KiB)`),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
