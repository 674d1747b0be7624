// Processes as the image runs them. The JavaScript: `tsc -b src` compiles src/ into dist/ (Dockerfile, `npm run build`);
// the processes the chaos run, the worker-crash test and the benchmark start as separate processes run from there
// rather than through tsx (which compiles in memory and costs a worker some 20 MiB: docs/performance.md). And the
// environment the image sets for every process (IMAGE_ENVIRONMENT).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../src/local-stack/tools';

/**
 * What the Dockerfile sets with ENV for every process (test/docker-compose.test.ts holds the two together).
 * MALLOC_ARENA_MAX: glibc's malloc gives each thread that contends for memory an arena of its own, up to eight per
 * core, and keeps what they grew; a saga worker's threads (the workflow thread, the Temporal Core runtime's) left it
 * some 30-40 MiB larger with 200 sagas open than with two arenas, at no measured cost in throughput (docs/performance.md).
 */
export const IMAGE_ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

let built = false;

/** Where `tsc -b src` puts a source entry point, from the project's folder: `src/worker/index.ts` → `dist/worker/index.js`. */
export function compiledPath(sourceEntry: string): string {
  const relative = path.relative(path.join(PROJECT_ROOT, 'src'), path.resolve(PROJECT_ROOT, sourceEntry));
  if (relative.startsWith('..') || !relative.endsWith('.ts')) throw new Error(`${sourceEntry} is not a TypeScript file under src/`);
  return path.posix.join('dist', relative.split(path.sep).join('/').replace(/\.ts$/, '.js'));
}

/**
 * The compiled file of a source entry point (absolute), after bringing dist/ up to date once in this process: tsc's
 * build mode recompiles only what changed, and checks in under a second when nothing did.
 */
export function compiledEntry(sourceEntry: string): string {
  const file = path.join(PROJECT_ROOT, compiledPath(sourceEntry));
  buildOnce();
  return file;
}

/**
 * Brings dist/ up to date, once per process. The tests' global setup calls it before mocha starts its parallel
 * workers: two workers compiling a cold dist/ at once would write the same files while the other reads them.
 */
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', path.join(PROJECT_ROOT, 'src')], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  built = true;
}
