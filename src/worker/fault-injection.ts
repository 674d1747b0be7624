// Fault injection for reliability tests and the chaos run. Off unless FAULT_INJECTION is set in the
// worker's environment (or a test passes a plan); nothing in the HTTP API can turn it on.
//
// FAULT_INJECTION is a list of `activity:fault=value` separated by `;`. `*` stands for every activity;
// an activity's own entry adds to the `*` entry. Faults:
//   transient=P         each attempt fails with a retryable error before doing anything, with probability P
//   fail-first=N        the first N attempts fail before doing anything
//   commit-then-fail=N  the first N attempts do their work (and commit) and then fail, as a call whose
//                       answer was lost: the retry must not apply the work twice
//   commit-then-stall=N the first N attempts do their work (and commit) and then hang past their
//                       start-to-close timeout, so that Temporal times them out and retries them
//   duplicate=N         the first N attempts run the activity twice, as a message delivered twice
//   delay=MS            every attempt waits MS milliseconds first (a slow step)
//   broken=N            the first N executions of the activity for each workflow (counted across retries and
//                       new schedules) throw an unexpected error, as a bug does: after a few attempts the
//                       worker gives up on it and the saga stops in NEEDS_ATTENTION until an operator acts
// Example: FAULT_INJECTION='*:transient=0.2;reserveStock:commit-then-fail=1;releaseStock:fail-first=3'
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInterceptorsFactory, Next, ActivityInboundCallsInterceptor } from '@temporalio/worker';

export interface Faults {
  transient?: number;
  failFirst?: number;
  commitThenFail?: number;
  commitThenStall?: number;
  duplicate?: number;
  delayMs?: number;
  broken?: number;
}

export type FaultPlan = Record<string, Faults>;

/** What the injector did, for the chaos run's summary. */
export interface FaultStats {
  injectedFailures: number;
  duplicatedCalls: number;
}

export class InjectedFault extends Error {
  override name = 'InjectedFault';
}

/** What `broken=N` throws: no transient fault, but what a bug looks like to the worker. */
export class InjectedBug extends Error {
  override name = 'InjectedBug';
}

const KEYS: Record<string, keyof Faults> = {
  transient: 'transient',
  'fail-first': 'failFirst',
  'commit-then-fail': 'commitThenFail',
  'commit-then-stall': 'commitThenStall',
  duplicate: 'duplicate',
  delay: 'delayMs',
  broken: 'broken',
};

export function parseFaultPlan(spec: string): FaultPlan {
  const plan: FaultPlan = {};
  for (const entry of spec.split(';').map((part) => part.trim()).filter(Boolean)) {
    const match = /^([\w*]+):([\w-]+)=([\d.]+)$/.exec(entry);
    const key = match && KEYS[match[2]];
    const value = match ? Number(match[3]) : NaN;
    if (!match || !key || !Number.isFinite(value) || (key === 'transient' && value > 1)) {
      throw new Error(`FAULT_INJECTION: cannot read "${entry}"; expected activity:fault=value with fault one of ${Object.keys(KEYS).join(', ')}`);
    }
    plan[match[1]] = { ...plan[match[1]], [key]: value };
  }
  return plan;
}

export function faultInjector(plan: FaultPlan, stats: FaultStats = { injectedFailures: 0, duplicatedCalls: 0 }, random = Math.random): ActivityInterceptorsFactory {
  /** Executions per `workflowId/activityType`, for `broken=N`. */
  const executions = new Map<string, number>();
  return (ctx) => {
    const { activityType, attempt } = ctx.info;
    const faults: Faults = { ...plan['*'], ...plan[activityType] };
    const fail = (what: string) => {
      stats.injectedFailures++;
      throw new InjectedFault(`injected fault: ${what} (${activityType}, attempt ${attempt})`);
    };
    const inbound: ActivityInboundCallsInterceptor = {
      async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
        if (faults.delayMs) await Context.current().sleep(faults.delayMs);
        if (faults.broken) {
          const key = `${ctx.info.workflowExecution?.workflowId}/${activityType}`;
          const n = (executions.get(key) ?? 0) + 1;
          executions.set(key, n);
          if (n <= faults.broken) {
            stats.injectedFailures++;
            throw new InjectedBug(`injected bug: ${activityType} execution ${n} of ${faults.broken} for this order`);
          }
        }
        if (faults.failFirst && attempt <= faults.failFirst) fail('failed before doing anything');
        if (faults.transient && random() < faults.transient) fail('transient failure');
        let result = await next(input);
        if (faults.duplicate && attempt <= faults.duplicate) {
          stats.duplicatedCalls++;
          result = await next(input);
        }
        if (faults.commitThenFail && attempt <= faults.commitThenFail) fail('work committed, answer lost');
        if (faults.commitThenStall && attempt <= faults.commitThenStall) {
          // Outlive the attempt's timeout: Temporal gives up on it and schedules a retry; this answer is discarded.
          await new Promise((resolve) => setTimeout(resolve, (ctx.info.startToCloseTimeoutMs ?? 10_000) + 2_000));
          fail('work committed, then timed out');
        }
        return result;
      },
    };
    return { inbound };
  };
}

/** The plan FAULT_INJECTION asks for, announced loudly: it must never be on by accident. */
export function faultsFromConfig(config: { faultInjection?: string }, warn: (line: string) => void = (line) => console.warn(`worker: ${line}`)): { plan: FaultPlan } | undefined {
  if (!config.faultInjection) return undefined;
  const plan = parseFaultPlan(config.faultInjection);
  warn(`FAULT INJECTION IS ON: ${config.faultInjection}`);
  return { plan };
}
