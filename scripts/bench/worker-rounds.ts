// The rounds with the workers in processes of their own (as docker compose runs them), on a stack started with
// `runWorkers: false`: the saga's closed-loop round once per number of worker processes (1 against 2: whether a
// second process, free to use the second core, adds throughput), then, optionally, many sagas held open in one
// worker process (hold-round.ts). Each worker process's CPU and memory is reported apart.
import path from 'node:path';
import { buildWorkflowBundle } from '../../src/worker/workflow-bundle';
import { startBenchStack, type BenchStack } from './bench-stack';
import { round, sagaClient, type RoundResult } from './closed-loop';
import { EventProbe, withEventPath } from './event-path';
import { holdSagas, type HoldLayout, type HoldResult } from './hold-round';
import type { ResourceOptions } from './resources';
import { startWorkerProcesses, stopAll } from './worker-processes';

/** What this process hosts when the workers run elsewhere (and the benchmark's clients). */
const WITHOUT_WORKERS = 'node (API, relays, projector, provider)';

export interface WorkerProcessOptions {
  /** Numbers of worker processes, one saga round each, e.g. [1, 2]. */
  processCounts: number[];
  /** Closed-loop clients of those rounds, and of the placing of the held sagas. */
  clients: number;
  /** Orders per round. */
  total: number;
  /** Sagas held open in one worker process; 0: no hold round. */
  hold: number;
  holdSeconds: number;
  /** WORKFLOW_CACHE_SIZE of the hold's worker process; the SDK's default if absent. */
  holdCache?: number;
  holdLayout: HoldLayout;
  eventPath: boolean;
  progress: (line: string) => void;
}

export interface WorkerProcessReport {
  /** RELAY_MODE of the stack's relays. */
  relayMode: string;
  clients: number;
  /** Saga rounds, each with `workerProcesses`. */
  rounds: RoundResult[];
  hold?: HoldResult;
}

export async function runWorkerProcessRounds(dataDir: string, options: WorkerProcessOptions): Promise<WorkerProcessReport> {
  const { progress } = options;
  progress('worker processes: starting PostgreSQL, Temporal, NATS, the provider and the API, without workers');
  const bench = await startBenchStack(dataDir, { runWorkers: false });
  const { stack } = bench;
  let probe: EventProbe | undefined;
  try {
    // The worker processes run as the image runs them: from the workflows bundled beforehand (WORKFLOW_BUNDLE).
    const bundle = path.join(dataDir, 'workflow-bundle.js');
    progress('worker processes: bundling the workflows');
    await buildWorkflowBundle(bundle);
    const env = { WORKFLOW_BUNDLE: bundle };
    probe = options.eventPath ? await EventProbe.connect(stack.databaseUrls, stack.queryDatabaseUrl, stack.natsServers, progress) : undefined;
    const rounds: RoundResult[] = [];
    for (const count of options.processCounts) rounds.push(await sagaRoundOn(count, bench, env, options, probe));
    const hold =
      options.hold > 0
        ? await holdSagas(bench, env, {
            sagas: options.hold,
            clients: options.clients,
            holdSeconds: options.holdSeconds,
            layout: options.holdLayout,
            workflowCache: options.holdCache,
            resourceOptions: { selfName: WITHOUT_WORKERS },
            progress,
          })
        : undefined;
    return { relayMode: bench.config.events.relayMode, clients: options.clients, rounds, hold };
  } finally {
    await probe?.close();
    await stack.stop();
  }
}

/** One saga round on `count` fresh worker processes, stopped after it. */
async function sagaRoundOn(
  count: number,
  { stack, config, clientKey }: BenchStack,
  env: NodeJS.ProcessEnv,
  options: WorkerProcessOptions,
  probe: EventProbe | undefined,
): Promise<RoundResult> {
  const { progress } = options;
  progress(`worker processes: starting ${count}`);
  const workers = await startWorkerProcesses(stack, config, count, env);
  try {
    const resourceOptions: ResourceOptions = { selfName: WITHOUT_WORKERS, named: new Map(workers.map((worker) => [worker.pid, worker.name])) };
    progress(`saga on ${count} worker process(es), ${options.clients} client(s), ${options.total} orders`);
    const result = await withEventPath(probe, () => round('saga', options.clients, options.total, sagaClient(stack.apiUrl, clientKey), progress, resourceOptions));
    return { ...result, workerProcesses: count };
  } finally {
    await stopAll(workers);
  }
}
