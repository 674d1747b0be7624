// The closed-loop load of the benchmark: clients that each place an order (or start a floor workflow), wait for its
// answer and place the next one; and what a round of it measures (throughput, latency, resources). Shared by the
// rounds with the workers in the benchmark's process (run-bench.ts) and in processes of their own (worker-rounds.ts).
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WORKFLOW_TYPE } from '../../src/workflows/definitions';
import type { EventPathResult } from './event-path';
import { measureResources, type ResourceOptions, type ResourceUse } from './resources';

export interface RoundResult {
  /** `hold`: orders answered at the decision and left open in their dispatch window (worker-rounds.ts). */
  subject: 'floor' | 'saga' | 'hold';
  concurrency: number;
  completed: number;
  /** Answered 202 once the wait was over: accepted, not finished in time (it finishes later). */
  late: number;
  failed: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Answers 503 (nothing placed: overloaded, or a dependency did not answer) the clients waited out (Retry-After)
   *  before sending the same order again. */
  refusals: number;
  /** CPU and peak memory of each program of the benchmark during the round. */
  resources: ResourceUse;
  /** Worker processes of their own the round ran on; absent: the workers ran in the benchmark's process. */
  workerProcesses?: number;
  /** From each event's outbox row to the query side's inbox row for it (the event-path rounds). */
  eventPath?: EventPathResult;
  /** A saga round run again to measure its event path, under its instruments: it sets no peak nor ratio. */
  measuresEventPath?: boolean;
}

/** Temporal's visibility query for the sagas still running. */
export const RUNNING_SAGAS = `WorkflowType="${WORKFLOW_TYPE}" AND ExecutionStatus="Running"`;

/**
 * Waits until no saga runs any more (or `timeoutMs` passed): an open-loop round answered at the decision leaves its
 * sagas to finish after it, and a round that started among them would measure their tail, not its own load.
 * Answers how many still ran at the end.
 */
export async function untilNoSagaRuns(client: Client, progress: (line: string) => void, timeoutMs = 180_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let reported = 0; ; ) {
    const { count } = await client.workflow.count(RUNNING_SAGAS);
    if (count === 0 || Date.now() > deadline) return count;
    if (Date.now() - reported > 5_000) {
      progress(`waiting for ${count} saga(s) of the rounds before to end`);
      reported = Date.now();
    }
    await sleep(500);
  }
}

export const ORDER = (i: number) => ({ customerId: 'cust-alice', lines: [{ sku: ['KB-001', 'MS-002', 'CB-005'][i % 3], quantity: 1 }] });

/** A saga accepted but not finished (or not decided) within the caller's wait. */
export class Late extends Error {}

/**
 * One order placed with `POST /orders<query>` by a client as the API asks: refused with 503 (nothing was placed:
 * overloaded, or a dependency did not answer), it waits Retry-After and sends the same order (same Idempotency-Key)
 * again. Resolves when `done` accepts the answer; a 202 is Late; anything else fails.
 */
export function orderClient(
  apiUrl: string,
  clientKey: string,
  query: string,
  done: (body: { status?: string; decision?: string }) => boolean,
): (i: number, refused: () => void) => Promise<void> {
  return async (i, refused) => {
    const key = `bench-${randomUUID()}`;
    let response: Response;
    for (;;) {
      response = await fetch(`${apiUrl}/orders${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}`, 'idempotency-key': key },
        body: JSON.stringify(ORDER(i)),
      });
      if (response.status !== 503) break;
      const refusal = (await response.json()) as { error?: { code?: string } };
      const retryAfter = response.headers.get('retry-after');
      if (retryAfter === null) throw new Error(`answered 503 without Retry-After ${JSON.stringify(refusal)}`);
      refused();
      await new Promise((resolve) => setTimeout(resolve, Number(retryAfter) * 1000));
    }
    const body = (await response.json()) as { status?: string; decision?: string };
    if (response.status === 202) throw new Late();
    if (response.status !== 200 || !done(body)) throw new Error(`answered ${response.status} ${body.status ?? JSON.stringify(body)}`);
  };
}

/** The saga's closed-loop client: POST /orders?wait=60, done when answered COMPLETED. */
export const sagaClient = (apiUrl: string, clientKey: string) => orderClient(apiUrl, clientKey, '?wait=60', (body) => body.status === 'COMPLETED');

/** `total` calls of `one` by `concurrency` closed-loop clients: throughput and latency. */
export async function round(
  subject: RoundResult['subject'],
  concurrency: number,
  total: number,
  one: (i: number, refused: () => void) => Promise<void>,
  progress: (line: string) => void,
  resourceOptions?: ResourceOptions,
): Promise<RoundResult> {
  const latencies: number[] = [];
  let failed = 0;
  let late = 0;
  let next = 0;
  let refusals = 0;
  const resources = measureResources(resourceOptions);
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

/** The value at quantile `q` (0..1) of `values`, in whole ms; 0 for none. */
export function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
}

/** The middle of `values` (the mean of the two middle ones for an even count), unrounded; 0 for none. */
export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function bar(done: number, total: number): string {
  const width = 30;
  const filled = Math.round(Math.min(1, done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

/** Resources of a round as one line: cores busy / peak resident memory per program, busiest first. */
export function describeResources(use: ResourceUse): string {
  return Object.entries(use.groups)
    .sort((a, b) => b[1].cpuSeconds - a[1].cpuSeconds)
    .map(([group, g]) => `${group} ${g.coresBusy.toFixed(2)} / ${g.peakRssMiB} MiB`)
    .join('; ');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
