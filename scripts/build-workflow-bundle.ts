// `npm run build:workflows [-- <file>]`: bundles the saga's workflows into one file (dist/workflow-bundle.js unless
// given), which a worker started with WORKFLOW_BUNDLE=<that file> loads instead of bundling at its start. The image
// builds it (Dockerfile); `npm start` runs this in a child process at every start (src/worker/workflow-bundle.ts).
import path from 'node:path';
import { buildWorkflowBundle } from '../src/worker/workflow-bundle';

const file = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'dist', 'workflow-bundle.js'));
buildWorkflowBundle(file).then(
  (bytes) => console.log(`workflow bundle: ${path.relative(process.cwd(), file)} (${Math.round(bytes / 1024)} KiB)`),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
