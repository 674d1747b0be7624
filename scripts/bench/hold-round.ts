// Many sagas open at once in one worker process: how much memory a worker needs for the sagas it keeps waiting
// (issue 8's target: under 300 MiB at 200). Its layout: `split` (the default) as docker compose runs the workers, the
// saga's worker alone (the one that holds the sagas) and the four services' activities in a second process; `one`,
// every role in one process, as `npm run worker` without WORKER_ROLES. The orders go through a second API, on the same
// stack, whose saga policy has a dispatch window of an hour: each is answered at its decision (ACCEPTED) and then sits in AWAITING_DISPATCH,
// a timer in a workflow the worker keeps cached. After the hold they are terminated, so that none is left running
// (their timers would fire an hour later into whatever runs then).
import { Client, Connection } from '@temporalio/client';
import { startApiServer } from '../../src/api/server';
import type { BenchStack } from './bench-stack';
import { orderClient, round, RUNNING_SAGAS, sleep, type RoundResult } from './closed-loop';
import { measureResources, memoryOf, resetPeakRss, type ResourceOptions, type ResourceUse } from './resources';
import { SERVICES, WORKER_ROLES } from '../../src/config';
import { startWorkerProcessesWithRoles, stopAll } from './worker-processes';

export type HoldLayout = 'split' | 'one';

/** Longer than any hold: the sagas wait in their dispatch window until terminated. */
const HOLD_DISPATCH_DELAY = '1h';
/** Issue 8's target for the worker's memory at 200 open sagas. */
const TARGET_MIB = 300;

export interface HoldResult {
  sagas: number;
  dispatchDelay: string;
  layout: HoldLayout;
  /** The measured process: the saga worker (split) or the one worker process. */
  workerName: string;
  /** The worker's WORKFLOW_CACHE_SIZE; null: the SDK's default (sized from the heap limit, some 2,300 here). */
  workflowCache: number | null;
  /** Placing them: answered at the decision, ACCEPTED (latency: to the decision). */
  placing: RoundResult;
  /** Sagas running once all were placed (Temporal's visibility). */
  open: number;
  holdSeconds: number;
  /** The worker process's resident memory, in MiB. */
  worker: {
    /** Polling, before the first order: resident, of which anonymous and file-backed. */
    idle: Memory;
    /** The kernel's mark of the peak from the process's start to then (its start bundles the workflows). */
    startPeakRssMiB: number;
    /** The highest of the one-second samples while placing and holding. */
    peakRssMiB: number;
    /** The kernel's mark of the peak over the round (VmHWM, reset at its start); null if it could not be reset. */
    kernelPeakRssMiB: number | null;
    /** At the end of the hold, every saga still open. */
    end: Memory;
    targetMiB: number;
  };
  /** Resources while the sagas were only held (nothing else running). */
  holding: ResourceUse;
  terminated: number;
}

interface Memory {
  rssMiB: number;
  anonMiB: number;
  fileMiB: number;
  /**
   * What the process says of its own memory on GET /metrics (prom-client's nodejs_* gauges): the JavaScript heap, and
   * memory outside it that V8 knows of (external: buffers, WebAssembly instances). The rest of the anonymous memory
   * is native (the Temporal Core runtime, the allocator). Absent if the scrape failed.
   */
  heap?: { usedMiB: number; totalMiB: number; externalMiB: number };
}

async function memory(pid: number, metricsUrl: string): Promise<Memory> {
  const { rssMiB = 0, anonMiB = 0, fileMiB = 0 } = memoryOf(pid) ?? {};
  return { rssMiB, anonMiB, fileMiB, heap: await heapOf(metricsUrl) };
}

async function heapOf(metricsUrl: string): Promise<Memory['heap']> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) })).text();
    const mib = (name: string) => {
      const value = Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
      return Number.isFinite(value) ? Math.round(value / 2 ** 20) : NaN;
    };
    const heap = { usedMiB: mib('nodejs_heap_size_used_bytes'), totalMiB: mib('nodejs_heap_size_total_bytes'), externalMiB: mib('nodejs_external_memory_bytes') };
    return Object.values(heap).every(Number.isFinite) ? heap : undefined;
  } catch {
    return undefined;
  }
}

export async function holdSagas(
  { stack, config, clientKey }: BenchStack,
  env: NodeJS.ProcessEnv,
  options: {
    sagas: number;
    clients: number;
    holdSeconds: number;
    layout: HoldLayout;
    /** The saga worker's WORKFLOW_CACHE_SIZE; the SDK's default if absent. */
    workflowCache?: number;
    resourceOptions: ResourceOptions;
    progress: (line: string) => void;
  },
): Promise<HoldResult> {
  const { progress } = options;
  const workerEnv = options.workflowCache === undefined ? env : { ...env, WORKFLOW_CACHE_SIZE: String(options.workflowCache) };
  const specs =
    options.layout === 'split'
      ? [
          { name: 'saga worker', roles: ['saga' as const] },
          { name: 'services worker', roles: [...SERVICES] },
        ]
      : [{ name: 'worker process', roles: WORKER_ROLES }];
  progress(`hold: starting ${specs.map((spec) => spec.name).join(' and ')}`);
  // Fresh workers: their memory is that of the held sagas, not of earlier rounds.
  const workers = await startWorkerProcessesWithRoles(stack, config, specs, workerEnv);
  const [worker] = workers;
  const stops: (() => Promise<unknown>)[] = [() => stopAll(workers)];
  try {
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
    stops.push(() => client.connection.close());
    const api = await startApiServer({
      config: { ...config, api: { ...config.api, port: 0 }, saga: { ...config.saga, dispatchDelay: HOLD_DISPATCH_DELAY } },
      serviceUrls: stack.serviceUrls,
      queryDatabaseUrl: stack.queryDatabaseUrl,
      natsServers: stack.natsServers,
      temporalAddress: stack.temporalAddress,
    });
    stops.push(() => api.close());
    const resourceOptions = { ...options.resourceOptions, named: new Map(workers.map((started) => [started.pid, started.name])) };
    const { metricsUrl } = worker;
    const idle = await memory(worker.pid, metricsUrl);
    const startPeakRssMiB = memoryOf(worker.pid)?.peakRssMiB ?? 0;
    const kernelPeakReset = resetPeakRss(worker.pid);
    progress(`hold: placing ${options.sagas} orders, each answered once it waits in its dispatch window`);
    const accepted = orderClient(api.url, clientKey, '?wait=60&until=decision', (body) => body.decision === 'ACCEPTED');
    const placing = await round('hold', Math.min(options.clients, options.sagas), options.sagas, accepted, progress, resourceOptions);
    const { count: open } = await client.workflow.count(RUNNING_SAGAS);
    progress(`hold: ${open} sagas open; holding them ${options.holdSeconds} s`);
    const holdingUse = measureResources(resourceOptions);
    await sleep(options.holdSeconds * 1000);
    const holding = holdingUse.stop();
    const end = await memory(worker.pid, metricsUrl);
    const kernelPeak = kernelPeakReset ? (memoryOf(worker.pid)?.peakRssMiB ?? null) : null;
    const peakOf = (use: ResourceUse) => use.groups[worker.name]?.peakRssMiB ?? 0;
    const result: HoldResult = {
      sagas: options.sagas,
      dispatchDelay: HOLD_DISPATCH_DELAY,
      layout: options.layout,
      workerName: worker.name,
      workflowCache: options.workflowCache ?? null,
      placing,
      open,
      holdSeconds: options.holdSeconds,
      worker: {
        idle,
        startPeakRssMiB,
        peakRssMiB: Math.max(peakOf(placing.resources), peakOf(holding)),
        kernelPeakRssMiB: kernelPeak,
        end,
        targetMiB: TARGET_MIB,
      },
      holding,
      terminated: 0,
    };
    progress('hold: terminating the held sagas');
    result.terminated = await terminateRunningSagas(client);
    return result;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

/** Terminates every running saga, 20 at a time; answers how many. */
async function terminateRunningSagas(client: Client): Promise<number> {
  const ids: string[] = [];
  for await (const execution of client.workflow.list({ query: RUNNING_SAGAS })) ids.push(execution.workflowId);
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(ids.slice(i, i + 20).map((id) => client.workflow.getHandle(id).terminate('bench: the hold round is over')));
  }
  return ids.length;
}
