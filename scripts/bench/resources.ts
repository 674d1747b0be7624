// CPU time and memory of the benchmark's own processes (this Node process and everything it started: the
// Temporal dev server, PostgreSQL, NATS, worker processes), read from /proc, grouped by program. Other processes on
// the machine are left out. Linux only; elsewhere the groups are empty.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

interface ProcessSample extends RawProcess {
  group: string;
}

/** What this Node process hosts when the workers run in it (the stack's default). */
export const IN_PROCESS_NODE = 'node (workers, API, relays, projector, provider)';

export interface ResourceOptions {
  /**
   * Processes measured apart, each with its descendants, under their own name (e.g. `worker process 1`): one line
   * per process rather than one per program.
   */
  named?: ReadonlyMap<number, string>;
  /** The name of this Node process's group (IN_PROCESS_NODE unless given). */
  selfName?: string;
}

function groupOf(comm: string, selfName: string): string {
  if (comm.startsWith('postgres')) return 'postgres';
  if (comm.startsWith('temporal')) return 'temporal server';
  if (comm.startsWith('nats')) return 'nats-server';
  if (comm === 'node' || comm.startsWith('node')) return selfName;
  return comm;
}

interface RawProcess {
  pid: number;
  ppid: number;
  comm: string;
  cpuSeconds: number;
  rssMiB: number;
}

function readProcesses(): RawProcess[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const samples: RawProcess[] = [];
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command is in parentheses and may contain spaces: the fields after it are split on spaces.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      samples.push({
        pid: Number(pid),
        ppid: Number(fields[1]),
        comm,
        cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
        rssMiB: rssKiB / 1024,
      });
    } catch {
      // The process ended while being read.
    }
  }
  return samples;
}

/** This process and its descendants, each in its group: a named process's descendants take its name. */
function ownProcesses({ named = new Map(), selfName = IN_PROCESS_NODE }: ResourceOptions): ProcessSample[] {
  const all = readProcesses();
  const children = new Map<number, RawProcess[]>();
  for (const sample of all) children.set(sample.ppid, [...(children.get(sample.ppid) ?? []), sample]);
  const own: ProcessSample[] = [];
  const queue: { process: RawProcess; inherited?: string }[] = all.filter((sample) => sample.pid === process.pid).map((p) => ({ process: p }));
  while (queue.length > 0) {
    const { process: next, inherited } = queue.shift()!;
    const name = named.get(next.pid) ?? inherited;
    own.push({ ...next, group: name ?? groupOf(next.comm, selfName) });
    queue.push(...(children.get(next.pid) ?? []).map((child) => ({ process: child, inherited: name })));
  }
  return own;
}

/**
 * A process's memory in MiB: resident now, split into anonymous (heaps, stacks) and file-backed (the binary, shared
 * libraries, native addons) pages, and the kernel's mark of its peak (VmHWM); undefined once it is gone.
 */
export function memoryOf(pid: number): { rssMiB: number; anonMiB: number; fileMiB: number; peakRssMiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const mib = (field: string) => Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
    return { rssMiB: mib('VmRSS'), anonMiB: mib('RssAnon'), fileMiB: mib('RssFile'), peakRssMiB: mib('VmHWM') };
  } catch {
    return undefined;
  }
}

/**
 * Resets the kernel's peak-RSS mark of a process (`5` to /proc/<pid>/clear_refs, Linux 4.0 on), so that VmHWM
 * tells the peak from now on rather than since the process started (a worker's start, which bundles the workflows,
 * has a peak of its own). False where that is not allowed.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface ResourceUse {
  /** Per program: CPU seconds used during the measurement, CPU share of one core, peak resident memory (MiB, all its processes). */
  groups: Record<string, { cpuSeconds: number; coresBusy: number; peakRssMiB: number }>;
  seconds: number;
}

/** Samples every second until stopped; CPU is the difference between the first and the last reading. */
export function measureResources(options: ResourceOptions = {}): { stop(): ResourceUse } {
  const startedAt = performance.now();
  const cpuAt = (samples: ProcessSample[]) => {
    const byPid = new Map<number, ProcessSample>();
    for (const sample of samples) byPid.set(sample.pid, sample);
    return byPid;
  };
  const first = cpuAt(ownProcesses(options));
  const peak = new Map<string, number>();
  const sample = () => {
    const rss = new Map<string, number>();
    for (const process of ownProcesses(options)) rss.set(process.group, (rss.get(process.group) ?? 0) + process.rssMiB);
    for (const [group, mib] of rss) peak.set(group, Math.max(peak.get(group) ?? 0, mib));
  };
  sample();
  const timer = setInterval(sample, 1_000);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const seconds = (performance.now() - startedAt) / 1000;
      const last = ownProcesses(options);
      const groups: ResourceUse['groups'] = {};
      for (const process of last) {
        const before = first.get(process.pid)?.cpuSeconds ?? 0;
        const group = (groups[process.group] ??= { cpuSeconds: 0, coresBusy: 0, peakRssMiB: Math.round(peak.get(process.group) ?? 0) });
        group.cpuSeconds += process.cpuSeconds - before;
      }
      for (const group of Object.values(groups)) {
        group.cpuSeconds = Number(group.cpuSeconds.toFixed(1));
        group.coresBusy = Number((group.cpuSeconds / seconds).toFixed(2));
      }
      return { groups, seconds: Number(seconds.toFixed(1)) };
    },
  };
}
