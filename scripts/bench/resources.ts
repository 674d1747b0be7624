// CPU time and memory of the benchmark's own processes (this Node process and everything it started: the
// Temporal dev server, PostgreSQL, NATS), read from /proc, grouped by program. Other processes on the machine are
// left out. Linux only; elsewhere the groups are empty.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

interface ProcessSample {
  pid: number;
  ppid: number;
  group: string;
  cpuSeconds: number;
  rssMiB: number;
}

function groupOf(comm: string): string {
  if (comm.startsWith('postgres')) return 'postgres';
  if (comm.startsWith('temporal')) return 'temporal server';
  if (comm.startsWith('nats')) return 'nats-server';
  if (comm === 'node' || comm.startsWith('node')) return 'node (workers, API, relays, projector, provider)';
  return comm;
}

function readProcesses(): ProcessSample[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const samples: ProcessSample[] = [];
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
        group: groupOf(comm),
        cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
        rssMiB: rssKiB / 1024,
      });
    } catch {
      // The process ended while being read.
    }
  }
  return samples;
}

/** This process and its descendants. */
function ownProcesses(): ProcessSample[] {
  const all = readProcesses();
  const children = new Map<number, ProcessSample[]>();
  for (const sample of all) children.set(sample.ppid, [...(children.get(sample.ppid) ?? []), sample]);
  const own: ProcessSample[] = [];
  const queue = all.filter((sample) => sample.pid === process.pid);
  while (queue.length > 0) {
    const next = queue.shift()!;
    own.push(next);
    queue.push(...(children.get(next.pid) ?? []));
  }
  return own;
}

export interface ResourceUse {
  /** Per program: CPU seconds used during the measurement, CPU share of one core, peak resident memory (MiB, all its processes). */
  groups: Record<string, { cpuSeconds: number; coresBusy: number; peakRssMiB: number }>;
  seconds: number;
}

/** Samples every second until stopped; CPU is the difference between the first and the last reading. */
export function measureResources(): { stop(): ResourceUse } {
  const startedAt = performance.now();
  const cpuAt = (samples: ProcessSample[]) => {
    const byPid = new Map<number, ProcessSample>();
    for (const sample of samples) byPid.set(sample.pid, sample);
    return byPid;
  };
  const first = cpuAt(ownProcesses());
  const peak = new Map<string, number>();
  const sample = () => {
    const rss = new Map<string, number>();
    for (const process of ownProcesses()) rss.set(process.group, (rss.get(process.group) ?? 0) + process.rssMiB);
    for (const [group, mib] of rss) peak.set(group, Math.max(peak.get(group) ?? 0, mib));
  };
  sample();
  const timer = setInterval(sample, 1_000);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const seconds = (performance.now() - startedAt) / 1000;
      const last = ownProcesses();
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
