// Worker processes of their own: each a `node dist/worker/index.js` child, run as the image runs it (scripts/compiled.ts),
// with the environment the stack gives a worker (test/support/stack.ts, workerEnvironment), hosting every role (the
// saga's workflows and the four services' activities) unless given some, as docker compose gives each of its workers
// one. Several share the task queues, and the orders service's durable consumers, as replicas do.
import { spawn, type ChildProcess } from 'node:child_process';
import { WORKER_ROLES, type Config, type WorkerRole } from '../../src/config';
import { freePort } from '../../src/local-stack/free-port';
import type { RunningStack } from '../../src/local-stack/stack';
import { PROJECT_ROOT } from '../../src/local-stack/tools';
import { compiledEntry, IMAGE_ENVIRONMENT } from '../compiled';

export interface WorkerProcess {
  /** `worker process 1`, 2…: the name its CPU and memory are reported under. */
  name: string;
  pid: number;
  /** Its GET /metrics (every worker process serves one, beside the read APIs of the services it hosts). */
  metricsUrl: string;
  /** SIGTERM (a graceful shutdown), SIGKILL after 15 s. */
  stop(): Promise<void>;
}

/** The worker's line once it polls every queue (src/worker/index.ts; its "msg" starts with "polling"). */
const READY = /"msg":"polling /;
const START_TIMEOUT_MS = 180_000;

/** The environment of a worker process for this stack, polling `roles`, serving its read APIs and /metrics on serviceApiPort. */
function workerEnvironment(stack: RunningStack, config: Config, serviceApiPort: string, roles: readonly WorkerRole[]): NodeJS.ProcessEnv {
  return {
    TEMPORAL_ADDRESS: stack.temporalAddress,
    ...Object.fromEntries(Object.entries(stack.databaseUrls).map(([service, url]) => [`${service.toUpperCase()}_DATABASE_URL`, url])),
    PAYMENT_PROVIDER_URL: stack.providerUrl,
    PAYMENT_PROVIDER_API_KEY: config.payments.providerApiKey,
    NATS_URL: stack.natsServers.join(','),
    SERVICE_API_PORT: serviceApiPort,
    WORKER_ROLES: roles.join(','),
    // The stack registered them already.
    REGISTER_SEARCH_ATTRIBUTES: 'off',
    // INFO and JSON: the READY line is an INFO line. The workers say little else at INFO.
    LOG_LEVEL: 'INFO',
    LOG_FORMAT: 'json',
  };
}

/**
 * Starts `count` worker processes at once and resolves once every one polls. `env` adds to their environment, e.g.
 * WORKFLOW_BUNDLE (a bundle built beforehand, as the image gives its workers) and WORKFLOW_CACHE_SIZE.
 */
export async function startWorkerProcesses(stack: RunningStack, config: Config, count: number, env: NodeJS.ProcessEnv = {}): Promise<WorkerProcess[]> {
  const specs = Array.from({ length: count }, (_, i) => ({ name: `worker process ${i + 1}`, roles: WORKER_ROLES }));
  return startWorkerProcessesWithRoles(stack, config, specs, env);
}

/**
 * Starts one worker process per spec, each polling its roles. The first one hosting the orders service serves the
 * services' read APIs where the API reaches them (stack.serviceUrls); the others serve theirs, or /metrics only, on
 * free ports (two cannot listen on one).
 */
export async function startWorkerProcessesWithRoles(
  stack: RunningStack,
  config: Config,
  specs: { name: string; roles: readonly WorkerRole[] }[],
  env: NodeJS.ProcessEnv = {},
): Promise<WorkerProcess[]> {
  const servingReadApis = specs.findIndex((spec) => spec.roles.includes('orders'));
  const ports: string[] = [];
  for (let i = 0; i < specs.length; i++) ports.push(i === servingReadApis ? new URL(stack.serviceUrls.orders).port : String(await freePort()));
  const started = await Promise.allSettled(
    specs.map((spec, i) => startWorkerProcess(spec.name, ports[i], { ...workerEnvironment(stack, config, ports[i], spec.roles), ...env })),
  );
  const workers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) {
    await stopAll(workers);
    throw failure.reason;
  }
  return workers;
}

export async function stopAll(workers: WorkerProcess[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.stop()));
}

async function startWorkerProcess(name: string, serviceApiPort: string, env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [compiledEntry('src/worker/index.ts')], {
    cwd: PROJECT_ROOT,
    // The image's environment unless the benchmark's own says otherwise (MALLOC_ARENA_MAX=16, say, for glibc's default).
    env: { ...IMAGE_ENVIRONMENT, ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never outlive the benchmark, whatever way it ends.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
  // The last lines it wrote, to say why it did not start; the output is read all along so that its pipe never fills.
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    tail.push(...chunk.toString().split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 20));
  };
  child.stderr!.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not poll within ${START_TIMEOUT_MS / 1000} s:\n${tail.join('\n')}`)), START_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (READY.test(chunk.toString())) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it polled:\n${tail.join('\n')}`));
    });
  }).catch(async (error) => {
    await stop(child);
    throw error;
  });
  return { name, pid: child.pid!, metricsUrl: `http://127.0.0.1:${serviceApiPort}/metrics`, stop: () => stop(child) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
