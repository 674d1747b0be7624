// The benchmark (`npm run bench`): the real system, started on embedded defaults in a scratch folder, driven over
// HTTP by closed-loop clients (each places an order with POST /orders?wait=… and places the next once answered),
// and, on the same Temporal server in the same run, the floor: a workflow of the saga's shape that does no work
// (floor-workflow.ts). The headline is the ratio saga/floor at each concurrency. Timings are measured here and
// only reported; nothing asserts them.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { restockProduct, SEED_PRODUCTS } from '../../src/activities/inventory/catalog';
import { connectInventoryDb } from '../../src/activities/inventory/db';
import { setCreditLimit } from '../../src/activities/payments/customers';
import { connectPaymentsDb } from '../../src/activities/payments/db';
import { loadConfig } from '../../src/config';
import { freePort } from '../../src/local-stack/free-port';
import { startStack, type RunningStack } from '../../src/local-stack/stack';
import { FLOOR_QUEUES, floorConfirmed, type FloorActivities } from './floor-definitions';
import { measureResources, type ResourceUse } from './resources';

export interface BenchOptions {
  /** Concurrent clients of each measured round. */
  concurrencies: number[];
  /** Orders (or floor workflows) per client in each round; at least `minPerRound` in all. */
  perClient: number;
  minPerRound: number;
  /** Offered rates (orders per second) of the open-loop rounds, answered at the decision. */
  rates: number[];
  /** How long each open-loop round offers its load. */
  openSeconds: number;
  progress?: (line: string) => void;
}

export interface RoundResult {
  subject: 'floor' | 'saga';
  concurrency: number;
  completed: number;
  /** Answered 202 once the wait was over: accepted, not finished in time (it finishes later). */
  late: number;
  failed: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Answers 503 overloaded the clients waited out (Retry-After) before sending the same order again. */
  refusals: number;
  /** CPU and peak memory of each program of the benchmark during the round. */
  resources: ResourceUse;
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
  /** 503 overloaded: refused at once, nothing placed. */
  refused: number;
  failed: number;
  /** Answered per second, from the first order sent to the last answer (the load and its drain). */
  answeredPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  refusedLatencyMs: { p50: number; p99: number };
  resources: ResourceUse;
}

export interface BenchReport {
  at: string;
  machine: { cpus: number; memoryGiB: number; node: string };
  settings: { dispatchDelay: string; sandboxConfirmDelayMs: number; perClient: number; minPerRound: number };
  rounds: RoundResult[];
  /** saga orders per second ÷ floor workflows per second, per concurrency. */
  ratios: Record<string, number>;
  openLoop: OpenLoopResult[];
  /** Offered twice the peak closed-loop rate, answered at the end: completions per second against the peak. */
  overload?: { peakPerSecond: number; result: OpenLoopResult; ratioToPeak: number };
}

const DISPATCH_DELAY = '1ms';
const CONFIRM_DELAY_MS = 1;
const ORDER = (i: number) => ({ customerId: 'cust-alice', lines: [{ sku: ['KB-001', 'MS-002', 'CB-005'][i % 3], quantity: 1 }] });

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const progress = options.progress ?? (() => {});
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-bench-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    progress('starting PostgreSQL, Temporal, NATS, the provider, the workers and the API');
    const config = loadConfig({
      PORT: String(await freePort()),
      PAYMENT_PROVIDER: 'sandbox',
      SANDBOX_CONFIRM_DELAY_MS: String(CONFIRM_DELAY_MS),
      DISPATCH_DELAY,
      APPROVAL_THRESHOLD_CENTS: '100000000',
    });
    const stack: RunningStack = await startStack({
      config,
      dataDir,
      postgresPort: await freePort(),
      temporalPort: await freePort(),
      temporalUiPort: 0,
      providerPort: 0,
      natsPort: await freePort(),
      serviceApiPort: 0,
    });
    stops.push(() => stack.stop());
    const clientKey = config.auth.apiKeys.find((key) => key.role === 'client')!.key;
    await plentyOfStockAndCredit(stack, clientKey);

    const floor = await startFloorWorkers(stack.temporalAddress);
    stops.push(() => floor.stop());
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
    stops.push(() => client.connection.close());

    const rounds: RoundResult[] = [];
    let sequence = 0;
    for (const concurrency of options.concurrencies) {
      const total = Math.max(options.minPerRound, concurrency * options.perClient);
      progress(`floor, ${concurrency} client(s), ${total} workflows`);
      rounds.push(
        await round('floor', concurrency, total, async () => {
          const workflowId = `bench-floor-${++sequence}`;
          const handle = await client.workflow.start('FloorSaga', { taskQueue: FLOOR_QUEUES.saga, workflowId, args: [1] });
          await handle.signal(floorConfirmed);
          await handle.result();
        }, progress),
      );
      progress(`saga, ${concurrency} client(s), ${total} orders`);
      rounds.push(
        await round('saga', concurrency, total, async (i, refused) => {
          const key = `bench-${++sequence}`;
          let response: Response;
          // A client as the API asks: refused with 503 overloaded, it waits Retry-After and sends the same order again.
          for (;;) {
            response = await fetch(`${stack.apiUrl}/orders?wait=60`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}`, 'idempotency-key': key },
              body: JSON.stringify(ORDER(i)),
            });
            if (response.status !== 503) break;
            const refusal = (await response.json()) as { error?: { code?: string } };
            if (refusal.error?.code !== 'overloaded') throw new Error(`answered 503 ${JSON.stringify(refusal)}`);
            refused();
            await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1000));
          }
          const body = (await response.json()) as { status?: string };
          if (response.status === 202) throw new Late();
          if (response.status !== 200 || body.status !== 'COMPLETED') throw new Error(`answered ${response.status} ${body.status ?? JSON.stringify(body)}`);
        }, progress),
      );
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
      progress(`open loop, ${rate} orders/s for ${options.openSeconds} s, answered at the decision`);
      openLoop.push(await openRound('decision', rate, options.openSeconds, (i) => placeOrder('?wait=30&until=decision', i), progress));
    }
    const peakPerSecond = Math.max(...rounds.filter((r) => r.subject === 'saga').map((r) => r.perSecond));
    let overload: BenchReport['overload'];
    if (peakPerSecond > 0) {
      const rate = Number((2 * peakPerSecond).toFixed(1));
      progress(`overload: ${rate} orders/s (twice the peak) for ${options.openSeconds} s, answered at the end`);
      const result = await openRound('end', rate, options.openSeconds, (i) => placeOrder('?wait=60', i), progress);
      overload = { peakPerSecond, result, ratioToPeak: Number((result.answeredPerSecond / peakPerSecond).toFixed(2)) };
    }

    const ratios: Record<string, number> = {};
    for (const concurrency of options.concurrencies) {
      const of = (subject: string) => rounds.find((r) => r.subject === subject && r.concurrency === concurrency)!.perSecond;
      ratios[String(concurrency)] = Number((of('saga') / of('floor')).toFixed(2));
    }
    return {
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      settings: { dispatchDelay: DISPATCH_DELAY, sandboxConfirmDelayMs: CONFIRM_DELAY_MS, perClient: options.perClient, minPerRound: options.minPerRound },
      rounds,
      ratios,
      openLoop,
      overload,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** `total` calls of `one` by `concurrency` closed-loop clients: throughput and latency. */
async function round(
  subject: RoundResult['subject'],
  concurrency: number,
  total: number,
  one: (i: number, refused: () => void) => Promise<void>,
  progress: (line: string) => void,
): Promise<RoundResult> {
  const latencies: number[] = [];
  let failed = 0;
  let late = 0;
  let next = 0;
  let refusals = 0;
  const resources = measureResources();
  const startedAt = performance.now();
  const ticker = setInterval(() => progress(`${subject}, ${concurrency} client(s): ${bar(latencies.length + late + failed, total)}`), 1_000);
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < total; i = next++) {
          const began = performance.now();
          try {
            await one(i, () => refusals++);
            latencies.push(performance.now() - began);
          } catch (error) {
            if (error instanceof Late) {
              late++;
              continue;
            }
            failed++;
            if (failed <= 3) progress(`${subject}: ${String(error)}`);
          }
        }
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  const seconds = (performance.now() - startedAt) / 1000;
  return {
    subject,
    concurrency,
    completed: latencies.length,
    late,
    failed,
    seconds: Number(seconds.toFixed(1)),
    perSecond: Number((latencies.length / seconds).toFixed(2)),
    latencyMs: { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99), max: percentile(latencies, 1) },
    refusals,
    resources: resources.stop(),
  };
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
  let late = 0;
  let failed = 0;
  let lastAnsweredAt = 0;
  const resources = measureResources();
  const startedAt = performance.now();
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
              lastAnsweredAt = Math.max(lastAnsweredAt, at);
            } else if (status === 202) late++;
            else if (status === 503 && body.error?.code === 'overloaded') refusedLatencies.push(ms);
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

/** Enough stock and credit that every order of the run can complete: the point is the machinery, not refusals. */
async function plentyOfStockAndCredit(stack: RunningStack, clientKey: string): Promise<void> {
  const inventory = connectInventoryDb(stack.databaseUrls.inventory);
  const payments = connectPaymentsDb(stack.databaseUrls.payments);
  try {
    for (const { sku } of SEED_PRODUCTS) await restockProduct(inventory, sku, 1_000_000);
    await setCreditLimit(payments, 'cust-alice', 2_000_000_000);
  } finally {
    await Promise.all([inventory.$disconnect(), payments.$disconnect()]);
  }
  // The API checks new orders against the query views: wait until they show the new stock.
  for (let i = 0; i < 100; i++) {
    const response = await fetch(`${stack.apiUrl}/catalog/KB-001`, { headers: { authorization: `Bearer ${clientKey}` } });
    if ((((await response.json()) as { onHand?: number }).onHand ?? 0) >= 1_000_000) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The value at quantile `q` (0..1) of `values`, in whole ms; 0 for none. */
function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
}

/** A saga accepted but not finished within the caller's wait. */
class Late extends Error {}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = Math.round(Math.min(1, done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

export function formatBench(report: BenchReport): string {
  const lines = [
    `machine: ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; dispatch delay ${report.settings.dispatchDelay}, provider confirms after ${report.settings.sandboxConfirmDelayMs} ms`,
    '',
    'subject                        clients  done  late  failed  seconds  per second   p50 ms   p95 ms   p99 ms  503s',
  ];
  for (const r of report.rounds) {
    const name = r.subject === 'floor' ? 'floor (same shape, no work)' : 'saga (POST /orders?wait=60)';
    lines.push(
      `${name.padEnd(30)} ${String(r.concurrency).padStart(7)} ${String(r.completed).padStart(5)} ${String(r.late).padStart(5)} ${String(r.failed).padStart(7)} ${r.seconds.toFixed(1).padStart(8)} ` +
        `${r.perSecond.toFixed(2).padStart(11)} ${String(r.latencyMs.p50).padStart(8)} ${String(r.latencyMs.p95).padStart(8)} ${String(r.latencyMs.p99).padStart(8)} ${String(r.refusals).padStart(5)}`,
    );
  }
  lines.push(
    '',
    `saga/floor throughput: ${Object.entries(report.ratios).map(([c, ratio]) => `${ratio} at ${c} client(s)`).join(', ')}`,
    "done: answered COMPLETED within the wait; late: answered 202 when the wait ran out (the order finishes later); per second counts done only; " +
      '503s: answers 503 overloaded a client waited out (Retry-After) before sending the same order again; latency counts from its first attempt',
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
          `${result.refused} refused with 503 overloaded (p50 ${result.refusedLatencyMs.p50} ms, p99 ${result.refusedLatencyMs.p99} ms)`,
      );
    }
    lines.push('answered/s: answered within the wait, per second, from the first order sent to the last answer');
  }
  lines.push('', 'resources per round: cores busy (CPU seconds ÷ round seconds) / peak resident memory, per program');
  const describe = (use: ResourceUse) =>
    Object.entries(use.groups)
      .sort((a, b) => b[1].cpuSeconds - a[1].cpuSeconds)
      .map(([group, g]) => `${group} ${g.coresBusy.toFixed(2)} / ${g.peakRssMiB} MiB`)
      .join('; ');
  for (const r of report.rounds) lines.push(`${r.subject} at ${r.concurrency} client(s): ${describe(r.resources)}`);
  for (const r of report.openLoop) lines.push(`decision at ${r.offeredPerSecond}/s: ${describe(r.resources)}`);
  if (report.overload) lines.push(`overload at ${report.overload.result.offeredPerSecond}/s: ${describe(report.overload.result.resources)}`);
  return lines.join('\n');
}
