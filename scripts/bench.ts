// `npm run bench`: saga throughput and latency against the floor measured in the same run on the same Temporal
// server (scripts/bench/run-bench.ts). Prints one table and writes the raw figures to bench/results/.
//   --concurrency=1,32,128 (BENCH_CONCURRENCY)   --per-client=N (BENCH_PER_CLIENT, 4)   --min=N (BENCH_MIN, 20)
//   --rates=5,10,20 (BENCH_RATES): open-loop rounds answered at the decision   --open-seconds=N (BENCH_OPEN_SECONDS, 30)
//   The overload round offers twice the peak closed-loop rate for --open-seconds, answered at the end.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { formatBench, runBench } from './bench/run-bench';

function flag(name: string, env: string, fallback: string): string {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[env] ?? fallback;
}

function positive(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number, got "${raw}"`);
  return value;
}

async function main() {
  const concurrencies = flag('concurrency', 'BENCH_CONCURRENCY', '1,32,128').split(',').map((c) => positive('concurrency', c.trim()));
  const perClient = positive('per-client', flag('per-client', 'BENCH_PER_CLIENT', '4'));
  const minPerRound = positive('min', flag('min', 'BENCH_MIN', '20'));
  const rates = flag('rates', 'BENCH_RATES', '5,10,20').split(',').filter(Boolean).map((r) => positive('rates', r.trim()));
  const openSeconds = positive('open-seconds', flag('open-seconds', 'BENCH_OPEN_SECONDS', '30'));
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const tty = process.stdout.isTTY;
  const report = await runBench({
    concurrencies,
    perClient,
    minPerRound,
    rates,
    openSeconds,
    progress: (line) => (tty ? process.stdout.write(`\r\x1b[K${line}`) : console.log(line)),
  });
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
