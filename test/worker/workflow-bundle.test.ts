// The workflow bundle built ahead of its worker (src/worker/workflow-bundle.ts): what `npm run build:workflows` and
// `npm start`'s child process write is a bundle a worker can load, with the workflow side of tracing in it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleInChildProcess } from '../../src/worker/workflow-bundle';

describe('the workflow bundle built in a child process', function () {
  let dir: string;

  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-bundle-'));
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the saga and the tracing interceptors, routed through the module cache the reusable context needs', async function () {
    const file = path.join(dir, 'nested', 'workflow-bundle.js');
    await bundleInChildProcess(file);
    const code = readFileSync(file, 'utf8');
    assert.match(code, /src\/workflows\/order-saga\.ts/);
    assert.match(code, /src\/workflows\/tracing-interceptors\.ts/);
    // The SDK refuses a bundle without it when it reuses one V8 context for every workflow (its default).
    assert.match(code, /globalThis\.__webpack_module_cache__/);
  });

  it('fails, with the bundler\'s own words, when it cannot write the file', async function () {
    const blocker = path.join(dir, 'a-file');
    writeFileSync(blocker, '');
    await assert.rejects(bundleInChildProcess(path.join(blocker, 'workflow-bundle.js')), /bundling the workflows failed \(exit 1\):[\s\S]*(ENOTDIR|EEXIST)/);
  });
});
