// The benchmark (`npm run bench`): the real system, started on embedded defaults in a scratch folder, driven over
// HTTP by closed-loop clients (each places an order with POST /orders?wait=… and places the next once answered),
// and, on the same Temporal server in the same run, the floor: a workflow of the saga's shape that does no work
// (floor-workflow.ts). The headline is the ratio saga/floor at each concurrency. Timings are measured here and
// only reported; nothing asserts them.
//
// Two stacks, one after the other:
// - the workers in this process (as `npm start` runs them): floor and saga rounds, the event path of each saga round
//   (event-path.ts), the relays' drain of a backlog (relay-drain.ts), the open-loop rounds and overload;
// - the workers in processes of their own (worker-rounds.ts): the saga round on 1 and on 2 worker processes, and
//   many sagas held open in one (hold-round.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { CONFIRM_DELAY_MS, DISPATCH_DELAY, startBenchStack } from './bench-stack';
import { bar, describeResources, median, ORDER, percentile, round, sagaClient, untilNoSagaRuns, type RoundResult } from './closed-loop';
import { EventProbe, total, withEventPath, type EventPathResult } from './event-path';
import { FLOOR_QUEUES, floorConfirmed, type FloorActivities } from './floor-definitions';
import { measureDrain, type DrainResult } from './relay-drain';
import { measureResources, type ResourceUse } from './resources';
import { runWorkerProcessRounds, type WorkerProcessReport } from './worker-rounds';
import type { HoldLayout, HoldResult } from './hold-round';

export type { RoundResult } from './closed-loop';

export interface BenchOptions {
  /** Concurrent clients of each measured round (none: no floor or saga rounds). */
  concurrencies: number[];
  /** Orders (or floor workflows) per client in each round; at least `minPerRound` in all. */
  perClient: number;
  minPerRound: number;
  /** Offered rates (orders per second) of the open-loop rounds, answered at the decision. */
  rates: number[];
  /** How long each open-loop round offers its load. */
  openSeconds: number;
  /** Floor and saga rounds at each concurrency, alternating; the ratio is between their medians. */
  repeat: number;
  /** Measure the event path of every saga round (commit to query view, relayed per second). */
  eventPath: boolean;
  /** Orders placed while the relays are paused, to time their drain; 0: no drain round. */
  drainOrders: number;
  /** Numbers of worker processes of their own, one saga round each (none: no such round). */
  workerProcesses: number[];
  /** Clients of the worker-process rounds (and of the placing of held sagas). */
  workerClients: number;
  /** Sagas held open in one worker process; 0: no hold round. */
  hold: number;
  holdSeconds: number;
  /** WORKFLOW_CACHE_SIZE of the hold's worker; the SDK's default if absent. */
  holdCache?: number;
  /** The hold's worker processes: the saga's worker alone (as compose runs it) or one with every role. */
  holdLayout: HoldLayout;
  progress?: (line: string) => void;
}

/** Orders offered at a fixed rate whatever the answers (open loop), as real callers do. */
export interface OpenLoopResult {
  /** `decision`: POST /orders?wait=30&until=decision; `end`: POST /orders?wait=60. */
  answer: 'decision' | 'end';
  offeredPerSecond: number;
  seconds: number;
  sent: number;
  /** Answered within the wait: decided (decision) or COMPLETED (end). */
  answered: number;
  late: number;
  /** 503: refused, nothing placed (overloaded, or a dependency did not answer). */
  refused: number;
  failed: number;
  /** Answered per second, from the first order sent to the last answer (the load and its drain). */
  answeredPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  refusedLatencyMs: { p50: number; p99: number };
  /** Per 5 s from the first order sent: orders answered (in the sense above) and refused, by when the answer came. */
  timeline: { answered: number[]; refused: number[] };
  resources: ResourceUse;
}

export interface BenchReport {
  at: string;
  machine: { cpus: number; memoryGiB: number; node: string };
  /** The options the run had, and how the stack was set up. */
  settings: Omit<BenchOptions, 'concurrencies' | 'rates' | 'openSeconds' | 'progress'> & {
    dispatchDelay: string;
    sandboxConfirmDelayMs: number;
    relayMode: string;
  };
  /** With the workers in this process. */
  rounds: RoundResult[];
  /** saga orders per second ÷ floor workflows per second, per concurrency. */
  ratios: Record<string, number>;
  openLoop: OpenLoopResult[];
  /** Offered twice the peak closed-loop rate, answered at the end: completions per second against the peak. */
  overload?: { peakPerSecond: number; result: OpenLoopResult; ratioToPeak: number };
  /** The relays publishing a backlog built while they were paused (workers in this process). */
  relayDrain?: DrainResult;
  /** With the workers in processes of their own. */
  workerProcesses?: WorkerProcessReport;
}

type InProcessResults = Pick<BenchReport, 'rounds' | 'ratios' | 'openLoop' | 'overload' | 'relayDrain'> & { relayMode: string };

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const progress = options.progress ?? (() => {});
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-bench-'));
  try {
    const inProcess = wantsInProcessStack(options) ? await runInProcessRounds(dataDir, options, progress) : undefined;
    const workerProcesses =
      options.workerProcesses.length > 0 || options.hold > 0
        ? await runWorkerProcessRounds(path.join(dataDir, 'worker-processes'), {
            processCounts: options.workerProcesses,
            clients: options.workerClients,
            total: Math.max(options.minPerRound, options.workerClients * options.perClient),
            hold: options.hold,
            holdSeconds: options.holdSeconds,
            holdCache: options.holdCache,
            holdLayout: options.holdLayout,
            // Not measured there: the commit logs would slow the rounds that compare one and two worker processes.
            eventPath: false,
            progress,
          })
        : undefined;
    const { relayMode, ...results } = inProcess ?? { rounds: [], ratios: {}, openLoop: [], relayMode: workerProcesses?.relayMode ?? '' };
    return {
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      settings: {
        dispatchDelay: DISPATCH_DELAY,
        sandboxConfirmDelayMs: CONFIRM_DELAY_MS,
        perClient: options.perClient,
        minPerRound: options.minPerRound,
        repeat: options.repeat,
        relayMode,
        eventPath: options.eventPath,
        drainOrders: options.drainOrders,
        workerProcesses: options.workerProcesses,
        workerClients: options.workerClients,
        hold: options.hold,
        holdSeconds: options.holdSeconds,
        holdCache: options.holdCache,
        holdLayout: options.holdLayout,
      },
      ...results,
      workerProcesses,
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function wantsInProcessStack(options: BenchOptions): boolean {
  return options.concurrencies.length > 0 || options.rates.length > 0 || options.drainOrders > 0;
}

/** Everything measured with the workers in this process, on one stack. */
async function runInProcessRounds(dataDir: string, options: BenchOptions, progress: (line: string) => void): Promise<InProcessResults> {
  const stops: (() => Promise<unknown>)[] = [];
  try {
    progress('starting PostgreSQL, Temporal, NATS, the provider, the workers and the API');
    const { stack, config, clientKey } = await startBenchStack(dataDir, { runWorkers: true });
    stops.push(() => stack.stop());
    const probe =
      options.eventPath || options.drainOrders > 0 ? await EventProbe.connect(stack.databaseUrls, stack.queryDatabaseUrl, stack.natsServers, progress) : undefined;
    if (probe) stops.push(() => probe.close());

    const floor = await startFloorWorkers(stack.temporalAddress);
    stops.push(() => floor.stop());
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
    stops.push(() => client.connection.close());

    const rounds: RoundResult[] = [];
    let sequence = 0;
    for (const concurrency of options.concurrencies) {
      const total = Math.max(options.minPerRound, concurrency * options.perClient);
      const saga = () => round('saga', concurrency, total, sagaClient(stack.apiUrl, clientKey), progress);
      // Floor and saga alternate, `repeat` times: one round of each moves by a fifth from run to run (the order of
      // the rounds, what the machine does meanwhile), so the ratio is taken between their medians.
      for (let repeat = 1; repeat <= options.repeat; repeat++) {
        const of = options.repeat > 1 ? ` (${repeat} of ${options.repeat})` : '';
        progress(`floor, ${concurrency} client(s), ${total} workflows${of}`);
        rounds.push(
          await round('floor', concurrency, total, async () => {
            const workflowId = `bench-floor-${++sequence}`;
            const handle = await client.workflow.start('FloorSaga', { taskQueue: FLOOR_QUEUES.saga, workflowId, args: [1] });
            await handle.signal(floorConfirmed);
            await handle.result();
          }, progress),
        );
        progress(`saga, ${concurrency} client(s), ${total} orders${of}`);
        rounds.push(await saga());
      }
      // A round of its own, so that the headline rounds above run without the instruments (commit logs, a probe's
      // connections).
      if (options.eventPath && probe) {
        progress(`saga with its event path measured, ${concurrency} client(s), ${total} orders`);
        rounds.push({ ...(await withEventPath(probe, saga)), measuresEventPath: true });
      }
    }

    let relayDrain: DrainResult | undefined;
    if (options.drainOrders > 0 && probe) {
      const clients = Math.min(32, options.drainOrders);
      progress(`relay drain: relays paused, saga, ${clients} client(s), ${options.drainOrders} orders`);
      const placeOrders = () => round('saga', clients, options.drainOrders, sagaClient(stack.apiUrl, clientKey), progress);
      relayDrain = await measureDrain(probe, stack.databaseUrls, placeOrders, progress);
    }

    const placeOrder = async (query: string, i: number) => {
      const began = performance.now();
      const response = await fetch(`${stack.apiUrl}/orders${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}`, 'idempotency-key': `bench-${++sequence}` },
        body: JSON.stringify(ORDER(i)),
      });
      const body = (await response.json()) as { status?: string; decision?: string; error?: { code?: string } };
      return { status: response.status, body, ms: performance.now() - began, at: performance.now() };
    };
    const openLoop: OpenLoopResult[] = [];
    for (const rate of options.rates) {
      await untilNoSagaRuns(client, progress);
      progress(`open loop, ${rate} orders/s for ${options.openSeconds} s, answered at the decision`);
      openLoop.push(await openRound('decision', rate, options.openSeconds, (i) => placeOrder('?wait=30&until=decision', i), progress));
    }
    const headline = (subject: RoundResult['subject'], concurrency: number) =>
      median(rounds.filter((r) => r.subject === subject && r.concurrency === concurrency && !r.measuresEventPath).map((r) => r.perSecond));
    const peakPerSecond = Math.max(...options.concurrencies.map((concurrency) => headline('saga', concurrency)));
    let overload: BenchReport['overload'];
    if (peakPerSecond > 0) {
      const rate = Number((2 * peakPerSecond).toFixed(1));
      await untilNoSagaRuns(client, progress);
      progress(`overload: ${rate} orders/s (twice the peak) for ${options.openSeconds} s, answered at the end`);
      const result = await openRound('end', rate, options.openSeconds, (i) => placeOrder('?wait=60', i), progress);
      overload = { peakPerSecond, result, ratioToPeak: Number((result.answeredPerSecond / peakPerSecond).toFixed(2)) };
    }

    const ratios: Record<string, number> = {};
    for (const concurrency of options.concurrencies) {
      ratios[String(concurrency)] = Number((headline('saga', concurrency) / headline('floor', concurrency)).toFixed(2));
    }
    return { rounds, ratios, openLoop, overload, relayDrain, relayMode: config.events.relayMode };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

/**
 * Sends one order every 1/rate s for `seconds`, without waiting for answers (open loop), then waits for all the
 * answers. Latency is measured per request from when it was sent.
 */
async function openRound(
  answer: OpenLoopResult['answer'],
  rate: number,
  seconds: number,
  place: (i: number) => Promise<{ status: number; body: { status?: string; decision?: string; error?: { code?: string } }; ms: number; at: number }>,
  progress: (line: string) => void,
): Promise<OpenLoopResult> {
  const total = Math.max(1, Math.round(rate * seconds));
  const latencies: number[] = [];
  const refusedLatencies: number[] = [];
  const timeline: OpenLoopResult['timeline'] = { answered: [], refused: [] };
  let late = 0;
  let failed = 0;
  let lastAnsweredAt = 0;
  const resources = measureResources();
  const startedAt = performance.now();
  /** One more answer in `series`, in the 5 s slot its time falls in. */
  const count = (series: number[], at: number) => {
    const slot = Math.max(0, Math.floor((at - startedAt) / 5_000));
    while (series.length <= slot) series.push(0);
    series[slot]++;
  };
  const calls: Promise<void>[] = [];
  const ticker = setInterval(() => progress(`${answer}, ${rate}/s: ${bar(latencies.length + refusedLatencies.length + late + failed, total)}`), 1_000);
  try {
    for (let i = 0; i < total; i++) {
      const due = startedAt + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      calls.push(
        place(i).then(
          ({ status, body, ms, at }) => {
            const answered = answer === 'decision' ? status === 200 && body.decision !== undefined : status === 200 && body.status === 'COMPLETED';
            if (answered) {
              latencies.push(ms);
              count(timeline.answered, at);
              lastAnsweredAt = Math.max(lastAnsweredAt, at);
            } else if (status === 202) late++;
            else if (status === 503) {
              refusedLatencies.push(ms);
              count(timeline.refused, at);
            }
            else {
              failed++;
              if (failed <= 3) progress(`${answer}: answered ${status} ${JSON.stringify(body).slice(0, 200)}`);
            }
          },
          (error) => {
            failed++;
            if (failed <= 3) progress(`${answer}: ${String(error)}`);
          },
        ),
      );
    }
    await Promise.all(calls);
  } finally {
    clearInterval(ticker);
  }
  return {
    answer,
    offeredPerSecond: rate,
    seconds,
    sent: total,
    answered: latencies.length,
    late,
    refused: refusedLatencies.length,
    failed,
    answeredPerSecond: lastAnsweredAt > startedAt ? Number((latencies.length / ((lastAnsweredAt - startedAt) / 1000)).toFixed(2)) : 0,
    latencyMs: { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99), max: percentile(latencies, 1) },
    refusedLatencyMs: { p50: percentile(refusedLatencies, 0.5), p99: percentile(refusedLatencies, 0.99) },
    timeline,
    resources: resources.stop(),
  };
}

/** The floor's workers: its workflow on its own queue, and a no-op activity on a queue per service. */
async function startFloorWorkers(address: string): Promise<{ stop(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address });
  const activities: FloorActivities = { noop: async (step) => step };
  const workers = await Promise.all([
    Worker.create({ connection, taskQueue: FLOOR_QUEUES.saga, workflowsPath: require.resolve('./floor-workflow') }),
    ...[FLOOR_QUEUES.orders, FLOOR_QUEUES.inventory, FLOOR_QUEUES.payments, FLOOR_QUEUES.shipping].map((taskQueue) =>
      Worker.create({ connection, taskQueue, activities }),
    ),
  ]);
  const running = Promise.all(workers.map((worker) => worker.run()));
  return {
    async stop() {
      for (const worker of workers) worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** A closed-loop round's name in the tables. */
function roundName(r: RoundResult): string {
  if (r.subject === 'floor') return 'floor (same shape, no work)';
  if (r.workerProcesses !== undefined) return `saga, ${processes(r.workerProcesses)}`;
  if (r.measuresEventPath) return 'saga, event path measured';
  return 'saga (POST /orders?wait=60)';
}

const processes = (n: number) => `${n} worker process${n === 1 ? '' : 'es'}`;

export function formatBench(report: BenchReport): string {
  const lines = [
    `machine: ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; dispatch delay ${report.settings.dispatchDelay}, provider confirms after ${report.settings.sandboxConfirmDelayMs} ms, relay mode ${report.settings.relayMode}`,
    '',
    'subject                        clients  done  late  failed  seconds  per second   p50 ms   p95 ms   p99 ms  503s',
  ];
  const workerRounds = report.workerProcesses?.rounds ?? [];
  for (const r of [...report.rounds, ...workerRounds]) {
    lines.push(
      `${roundName(r).padEnd(30)} ${String(r.concurrency).padStart(7)} ${String(r.completed).padStart(5)} ${String(r.late).padStart(5)} ${String(r.failed).padStart(7)} ${r.seconds.toFixed(1).padStart(8)} ` +
        `${r.perSecond.toFixed(2).padStart(11)} ${String(r.latencyMs.p50).padStart(8)} ${String(r.latencyMs.p95).padStart(8)} ${String(r.latencyMs.p99).padStart(8)} ${String(r.refusals).padStart(5)}`,
    );
  }
  lines.push('');
  if (report.rounds.length > 0) lines.push(`saga/floor throughput${report.settings.repeat > 1 ? ` (medians of ${report.settings.repeat} rounds each)` : ''}: ${Object.entries(report.ratios).map(([c, ratio]) => `${ratio} at ${c} client(s)`).join(', ')}`);
  if (workerRounds.length > 0) lines.push(formatWorkerProcesses(workerRounds));
  lines.push(
    "done: answered COMPLETED within the wait; late: answered 202 when the wait ran out (the order finishes later); per second counts done only; " +
      '503s: answers 503 (nothing placed: overloaded, or a dependency did not answer) a client waited out (Retry-After) before sending the same order again; latency counts from its first attempt',
  );
  const openLine = (r: OpenLoopResult, name: string) =>
    `${name.padEnd(30)} ${r.offeredPerSecond.toFixed(1).padStart(7)} ${String(r.sent).padStart(5)} ${String(r.answered).padStart(8)} ${String(r.late).padStart(5)} ` +
    `${String(r.refused).padStart(7)} ${String(r.failed).padStart(6)} ${r.answeredPerSecond.toFixed(2).padStart(10)} ${String(r.latencyMs.p50).padStart(8)} ${String(r.latencyMs.p95).padStart(8)} ${String(r.latencyMs.p99).padStart(8)}`;
  if (report.openLoop.length > 0 || report.overload) {
    lines.push('', 'open loop (offered per second, whatever the answers)', 'answer                         offered  sent answered  late refused failed  answered/s   p50 ms   p95 ms   p99 ms');
    for (const r of report.openLoop) lines.push(openLine(r, 'decision (until=decision)'));
    if (report.overload) {
      const { result, peakPerSecond, ratioToPeak } = report.overload;
      lines.push(openLine(result, 'end, twice the peak'));
      lines.push(
        '',
        `overload: offered ${result.offeredPerSecond}/s, twice the peak of ${peakPerSecond}/s; completed ${result.answeredPerSecond}/s from the first order to the last answer (${ratioToPeak} of the peak); ` +
          `${result.refused} refused with 503 (p50 ${result.refusedLatencyMs.p50} ms, p99 ${result.refusedLatencyMs.p99} ms)`,
        `overload, per 5 s from the first order: completed ${result.timeline.answered.join(' ')}; refused ${result.timeline.refused.join(' ')}`,
      );
    }
    lines.push('answered/s: answered within the wait, per second, from the first order sent to the last answer');
  }
  lines.push(...formatEventPath(report));
  if (report.workerProcesses?.hold) lines.push(...formatHold(report.workerProcesses.hold));

  lines.push('', 'resources per round: cores busy (CPU seconds ÷ round seconds) / peak resident memory, per program');
  for (const r of report.rounds) lines.push(`${r.measuresEventPath ? 'saga, event path measured,' : r.subject} at ${r.concurrency} client(s): ${describeResources(r.resources)}`);
  if (report.relayDrain) lines.push(`saga, relays paused, at ${report.relayDrain.orders.concurrency} client(s): ${describeResources(report.relayDrain.orders.resources)}`);
  for (const r of report.openLoop) lines.push(`decision at ${r.offeredPerSecond}/s: ${describeResources(r.resources)}`);
  if (report.overload) lines.push(`overload at ${report.overload.result.offeredPerSecond}/s: ${describeResources(report.overload.result.resources)}`);
  for (const r of workerRounds) lines.push(`saga on ${processes(r.workerProcesses!)} at ${r.concurrency} client(s): ${describeResources(r.resources)}`);
  const hold = report.workerProcesses?.hold;
  if (hold) {
    lines.push(`hold, placing ${hold.sagas} sagas at ${hold.placing.concurrency} client(s): ${describeResources(hold.placing.resources)}`);
    lines.push(`hold, ${hold.open} sagas open for ${hold.holdSeconds} s: ${describeResources(hold.holding)}`);
  }
  return lines.join('\n');
}

/** Throughput on 1, 2… worker processes of their own, each against the first. */
function formatWorkerProcesses(rounds: RoundResult[]): string {
  const base = rounds[0];
  const each = rounds.map((r) => {
    const ratio = r === base || base.perSecond === 0 ? '' : ` (${(r.perSecond / base.perSecond).toFixed(2)} times ${processes(base.workerProcesses!)})`;
    return `${processes(r.workerProcesses!)} ${r.perSecond.toFixed(2)}/s${ratio}`;
  });
  return `worker processes of their own (stack with runWorkers false), ${base.concurrency} clients: ${each.join(', ')}`;
}

/** The event path of each saga round, and the relays' drain. */
function formatEventPath(report: BenchReport): string[] {
  const measured = [...report.rounds, ...(report.workerProcesses?.rounds ?? [])].filter((r): r is RoundResult & { eventPath: EventPathResult } => r.eventPath !== undefined);
  const drain = report.relayDrain;
  if (measured.length === 0 && !drain) return [];
  const lines = ['', "event path: an event's commit in its service's database → its commit in the query views (one PostgreSQL clock)"];
  if (measured.length > 0) {
    lines.push('round                          clients  events per order applied  relayed/s   p50 ms   p95 ms   p99 ms   max ms  relay p50  relay p99');
    for (const r of measured) {
      const e = r.eventPath;
      lines.push(
        `${roundName(r).padEnd(30)} ${String(r.concurrency).padStart(7)} ${String(e.events).padStart(7)} ${e.perOrder.toFixed(1).padStart(9)} ${String(e.applied).padStart(7)} ${e.relayedPerSecond.toFixed(1).padStart(10)} ` +
          `${String(e.commitToViewMs.p50).padStart(8)} ${String(e.commitToViewMs.p95).padStart(8)} ${String(e.commitToViewMs.p99).padStart(8)} ${String(e.commitToViewMs.max).padStart(8)} ` +
          `${String(e.commitToPublishedMs.p50).padStart(10)} ${String(e.commitToPublishedMs.p99).padStart(10)}` +
          `${e.timestamps === 'commit' ? '' : '  (transaction starts)'}${e.settled ? '' : '  (not settled)'}`,
      );
    }
    for (const r of measured) lines.push(...eventPathDetails(r));
    lines.push(
      'relay: commit → published_at (the relay marks the row once JetStream stored it); relayed/s: events the relays published during the round, ' +
        'per second of it (what the orders offered, not what the relays can do: see the drain); commit times from a test_decoding slot of the benchmark, ' +
        'occurred_at and applied_at are their transactions\' starts',
    );
  }
  if (drain) {
    const byService = Object.entries(drain.backlog).map(([service, n]) => `${service} ${n}`).join(', ');
    lines.push(
      `relay drain: ${drain.orders.completed} orders (${drain.orders.concurrency} clients, ${drain.orders.perSecond}/s) placed with the relays paused left ${total(drain.backlog)} events (${byService}); ` +
        `the relays started publishing ${drain.resumeMs} ms after being let go and published them in ${drain.relaySeconds} s: ${drain.relayedPerSecond} events/s; ` +
        `the views applied them in ${drain.viewsSeconds} s from the first: ${drain.appliedPerSecond} events/s${drain.drained ? '' : ' (NOT drained before the timeout)'}`,
    );
  }
  return lines;
}

/** Under a round's event path: how far the recorded columns are from the commits, and the path per service (p50/p99). */
function eventPathDetails(r: RoundResult & { eventPath: EventPathResult }): string[] {
  const e = r.eventPath;
  const q = (x: { p50: number; p99: number } | undefined) => (x ? `${x.p50}/${x.p99}` : '-');
  const lines = [];
  if (e.writerTransactionMs) {
    lines.push(
      `  ${roundName(r)}, ${r.concurrency} clients: occurred_at → commit ${q(e.writerTransactionMs)} ms (writer transactions), ` +
        `applied_at → commit in the views ${q(e.projectorTransactionMs)} ms (projector transactions)`,
    );
  }
  const services = Object.entries(e.byService).map(
    ([service, s]) => `${service} ${q(s.commitToViewMs)} (relay ${q(s.commitToPublishedMs)}${s.writerTransactionMs ? `, writer ${q(s.writerTransactionMs)}` : ''})`,
  );
  lines.push(`  ${roundName(r)}, ${r.concurrency} clients, by service, p50/p99 ms: ${services.join('; ')}`);
  return lines;
}

const memoryLine = (m: HoldResult['worker']['idle']) =>
  `${m.rssMiB} MiB (anonymous ${m.anonMiB}, files ${m.fileMiB}${m.heap ? `; JavaScript heap ${m.heap.usedMiB} used of ${m.heap.totalMiB}, external ${m.heap.externalMiB}` : ''})`;

function formatHold(hold: NonNullable<WorkerProcessReport['hold']>): string[] {
  const { worker, placing } = hold;
  const kernel = worker.kernelPeakRssMiB === null ? '' : `, kernel peak mark ${worker.kernelPeakRssMiB} MiB`;
  return [
    '',
    `hold: ${hold.open} sagas open at once (AWAITING_DISPATCH, dispatch window ${hold.dispatchDelay}; ${hold.layout === 'split' ? 'the saga worker alone, the services in a second process' : 'one worker process with every role'}; ` +
      `workflow cache ${hold.workflowCache ?? "the SDK's default"}): ${hold.workerName} RSS ${memoryLine(worker.idle)} idle (start peak ${worker.startPeakRssMiB} MiB), ` +
      `peak ${worker.peakRssMiB} MiB (1 s samples${kernel}), ${memoryLine(worker.end)} after holding ${hold.holdSeconds} s; target < ${worker.targetMiB} MiB`,
    `hold: placed ${hold.sagas} in ${placing.seconds} s at ${placing.concurrency} clients (${placing.completed} ACCEPTED, ${placing.late} late, ${placing.failed} failed, ${placing.refusals} 503s; ` +
      `decision p50 ${placing.latencyMs.p50} ms, p99 ${placing.latencyMs.p99} ms); ${hold.terminated} terminated at the end`,
  ];
}
