// `npm run bench`: saga throughput and latency against the floor measured in the same run on the same Temporal
// server (scripts/bench/run-bench.ts), the event path, the relays' drain, 1 against 2 worker processes, and a
// worker's memory with many sagas open. Prints the tables and writes the raw figures to bench/results/. The flags
// are in USAGE below (`npm run bench -- --help`).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { formatBench, runBench } from './bench/run-bench';

const USAGE = `npm run bench -- [flags]        (each flag also as the variable in parentheses)

With the workers in this process (as npm start runs them):
  --concurrency=1,32,128   (BENCH_CONCURRENCY)   closed-loop clients: a floor and a saga round each; empty: none
  --per-client=4           (BENCH_PER_CLIENT)    orders (floor workflows) per client in a round ...
  --min=20                 (BENCH_MIN)           ... and at least this many
  --repeat=1               (BENCH_REPEAT)        floor and saga rounds at each concurrency, alternating; the ratio
                                                 is between their medians (one round of each moves by a fifth)
  --rates=5,10,20          (BENCH_RATES)         open-loop rounds answered at the decision; empty: none
  --open-seconds=30        (BENCH_OPEN_SECONDS)  length of each open-loop round, and of the overload round
                                                 (twice the peak closed-loop rate, answered at the end)
  --event-path=on          (BENCH_EVENT_PATH)    after each saga round, the same round again with its commit-to-
                                                 query-view latency and events relayed per second measured (so that
                                                 the headline rounds run without the instruments); off: skip
  --drain=128              (BENCH_DRAIN)         orders placed (32 clients at most) with the outbox relays paused,
                                                 then the time the relays take to publish the backlog; 0: skip

With the workers in processes of their own (a second stack, started with runWorkers false):
  --worker-processes=1,2   (BENCH_WORKER_PROCESSES)  a saga round on that many worker processes each; empty: none
  --worker-clients=32      (BENCH_WORKER_CLIENTS)    clients of those rounds (orders: clients x per-client, >= min)
  --hold=200               (BENCH_HOLD)          sagas held open at once in one worker process (a dispatch window
                                                 of an hour), its peak RSS reported; terminated after; 0: skip
  --hold-seconds=10        (BENCH_HOLD_SECONDS)  how long they are held once all are open
  --hold-layout=split      (BENCH_HOLD_LAYOUT)   split: the saga's worker alone, holding the sagas, and the four
                                                 services in a second process (as docker compose runs them); one:
                                                 every role in one process. The memory reported is the saga's worker's
  --hold-cache=            (BENCH_HOLD_CACHE)    that worker's WORKFLOW_CACHE_SIZE (sagas kept in memory between
                                                 their tasks); empty: the SDK's default
The worker processes load the workflows bundled beforehand (WORKFLOW_BUNDLE), as the image's workers do.

A quick look:
  npm run bench -- --concurrency=8 --per-client=2 --min=10 --rates= --drain=32 --worker-processes=1,2 --worker-clients=8 --hold=50`;

function flag(name: string, env: string, fallback: string): string {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[env] ?? fallback;
}

function whole(name: string, raw: string, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be a whole number of at least ${min}, got "${raw}"`);
  return value;
}

const positive = (name: string, raw: string) => whole(name, raw, 1);
/** Empty: not given. */
const optionalWhole = (name: string, raw: string, min: number) => (raw.trim() === '' ? undefined : whole(name, raw, min));
const list = (name: string, raw: string) => raw.split(',').map((item) => item.trim()).filter(Boolean).map((item) => positive(name, item));

function oneOf<T extends string>(name: string, raw: string, choices: readonly T[]): T {
  if (!choices.includes(raw as T)) throw new Error(`--${name} must be one of ${choices.join(', ')}, got "${raw}"`);
  return raw as T;
}

function onOff(name: string, raw: string): boolean {
  if (raw !== 'on' && raw !== 'off') throw new Error(`--${name} must be on or off, got "${raw}"`);
  return raw === 'on';
}

async function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const options = {
    concurrencies: list('concurrency', flag('concurrency', 'BENCH_CONCURRENCY', '1,32,128')),
    perClient: positive('per-client', flag('per-client', 'BENCH_PER_CLIENT', '4')),
    minPerRound: positive('min', flag('min', 'BENCH_MIN', '20')),
    repeat: positive('repeat', flag('repeat', 'BENCH_REPEAT', '1')),
    rates: list('rates', flag('rates', 'BENCH_RATES', '5,10,20')),
    openSeconds: positive('open-seconds', flag('open-seconds', 'BENCH_OPEN_SECONDS', '30')),
    eventPath: onOff('event-path', flag('event-path', 'BENCH_EVENT_PATH', 'on')),
    drainOrders: whole('drain', flag('drain', 'BENCH_DRAIN', '128'), 0),
    workerProcesses: list('worker-processes', flag('worker-processes', 'BENCH_WORKER_PROCESSES', '1,2')),
    workerClients: positive('worker-clients', flag('worker-clients', 'BENCH_WORKER_CLIENTS', '32')),
    hold: whole('hold', flag('hold', 'BENCH_HOLD', '200'), 0),
    holdSeconds: positive('hold-seconds', flag('hold-seconds', 'BENCH_HOLD_SECONDS', '10')),
    holdLayout: oneOf('hold-layout', flag('hold-layout', 'BENCH_HOLD_LAYOUT', 'split'), ['split', 'one'] as const),
    holdCache: optionalWhole('hold-cache', flag('hold-cache', 'BENCH_HOLD_CACHE', ''), 2),
  };
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const tty = process.stdout.isTTY;
  const report = await runBench({ ...options, progress: (line) => (tty ? process.stdout.write(`\r\x1b[K${line}`) : console.log(line)) });
  if (tty) process.stdout.write('\r\x1b[K');
  console.log(formatBench(report));
  const dir = path.join(__dirname, '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${report.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nraw figures: ${path.relative(process.cwd(), file)}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
