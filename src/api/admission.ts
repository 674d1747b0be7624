// Back-pressure for new orders. Past saturation, admitting every order makes every saga slower: the task queues
// fill, each saga's next step waits behind everyone else's, callers time out and retry, and completions per
// second fall. So the API refuses a new order with a fast 503 `overloaded` and a Retry-After while the workers
// are behind, and the sagas already admitted keep finishing at full speed.
//
// "Behind" is measured where the work waits: the age of the oldest task in the backlog of the saga's workflow
// task queue and of each service's activity task queue (Temporal's DescribeTaskQueue statistics). An old backlog
// on a queue no worker has polled lately is an outage, not an overload: orders are still admitted then, and wait
// durably for the workers to come back, as they always have. (A worker polls again as soon as it has a free
// slot, so live workers, even busy ones, keep polling; a dead one stops at once, unlike the queue's dispatch
// rate, a trailing average that stays above zero for a while after the last worker died.)
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { SERVICES, TASK_QUEUES } from '../config';

export interface QueueBacklog {
  taskQueue: string;
  kind: 'workflow' | 'activity';
  /** Age of the oldest task waiting for a worker, in ms (0 with no backlog). */
  backlogAgeMs: number;
  backlogCount: number;
  /** Whether a worker has polled the queue lately (within POLLED_WITHIN_MS): workers are alive. */
  polled: boolean;
}

export type AdmissionVerdict =
  | { admit: true }
  | { admit: false; retryAfterSeconds: number; reason: string };

const TASK_QUEUE_TYPE = temporal.api.enums.v1.TaskQueueType;
/** A worker with a free slot polls without pause (each poll waits up to a minute on the server), so a few seconds suffice. */
const POLLED_WITHIN_MS = 10_000;

const NORMAL_KIND = temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL;

/**
 * The saga's workflow queue and each service's activity queue, as DescribeTaskQueue sees them now; within
 * `deadlineMs`, so that a Temporal that does not answer never holds up an order (it is then admitted, and the
 * start answers for itself).
 */
export function temporalBacklogProbe(client: Client, namespace: string, deadlineMs = 1_000): () => Promise<QueueBacklog[]> {
  const queues = [
    { taskQueue: TASK_QUEUES.saga, kind: 'workflow' as const, type: TASK_QUEUE_TYPE.TASK_QUEUE_TYPE_WORKFLOW },
    ...SERVICES.map((service) => ({ taskQueue: TASK_QUEUES[service], kind: 'activity' as const, type: TASK_QUEUE_TYPE.TASK_QUEUE_TYPE_ACTIVITY })),
  ];
  return () =>
    client.withDeadline(Date.now() + deadlineMs, () => Promise.all(
      queues.map(async ({ taskQueue, kind, type }) => {
        const answer = await client.workflowService.describeTaskQueue({
          namespace,
          taskQueue: { name: taskQueue, kind: NORMAL_KIND },
          taskQueueType: type,
          reportStats: true,
        });
        return {
          taskQueue,
          kind,
          backlogAgeMs: optionalTsToMs(answer.stats?.approximateBacklogAge) ?? 0,
          backlogCount: Number(answer.stats?.approximateBacklogCount ?? 0),
          polled: (answer.pollers ?? []).some((poller) => Date.now() - (optionalTsToMs(poller.lastAccessTime) ?? 0) < POLLED_WITHIN_MS),
        };
      }),
    ));
}

export class Admission {
  private verdict?: { at: number; value: AdmissionVerdict };
  private inFlight?: Promise<AdmissionVerdict>;

  constructor(
    private readonly probe: () => Promise<QueueBacklog[]>,
    /** The oldest waiting task a queue may have before new orders are refused; undefined admits everything. */
    private readonly maxBacklogAgeMs: number | undefined,
    /** How long one look at the queues serves: under load, one probe per interval whatever the request rate. */
    private readonly cacheMs = 500,
  ) {}

  async check(): Promise<AdmissionVerdict> {
    if (this.maxBacklogAgeMs === undefined) return { admit: true };
    if (this.verdict && Date.now() - this.verdict.at < this.cacheMs) return this.verdict.value;
    this.inFlight ??= this.look().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async look(): Promise<AdmissionVerdict> {
    let queues: QueueBacklog[];
    try {
      queues = await this.probe();
    } catch {
      // Temporal not answering is not an overload: the start itself answers 503 temporal_unavailable if it must.
      // Remembered like any verdict, so that a stalled server costs one probe per interval, not one per order.
      this.verdict = { at: Date.now(), value: { admit: true } };
      return this.verdict.value;
    }
    const behind = queues.filter((queue) => queue.polled && queue.backlogAgeMs > this.maxBacklogAgeMs!).sort((a, b) => b.backlogAgeMs - a.backlogAgeMs)[0];
    const value: AdmissionVerdict = behind
      ? {
          admit: false,
          retryAfterSeconds: Math.min(30, Math.max(1, Math.ceil(behind.backlogAgeMs / 1000))),
          reason: `the workers are behind: the oldest ${behind.kind} task on ${behind.taskQueue} has waited ${(behind.backlogAgeMs / 1000).toFixed(1)} s (${behind.backlogCount} waiting)`,
        }
      : { admit: true };
    this.verdict = { at: Date.now(), value };
    return value;
  }
}
