// `npm run chaos`: the chaos run (scripts/chaos/run-chaos.ts). Options as flags or environment:
//   --orders=N (CHAOS_ORDERS, 1000)  --clients=N (CHAOS_CLIENTS, 20)  --fault-rate=P (CHAOS_FAULT_RATE, 0.2)
//   --worker-kills=N (CHAOS_WORKER_KILLS, 3)  --keep-data (keep the processes' logs and databases)
//   --pool-size=N (DB_POOL_SIZE of the worker)  --activity-concurrency=N (ACTIVITY_CONCURRENCY of the worker;
//   above the pool size it reproduces unsized pools, for comparison)
// Exits 0 when the target is met: every accepted order terminal and found, no invariant violated, no event lost or
// applied twice, every order's event-sourced state and query view equal to the service databases.
import { formatReport } from '../src/audit/auditor';
import { formatSummary, metTarget, runChaos } from './chaos/run-chaos';

function option(name: string, env: string, fallback: number): number {
  const flag = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
  const value = Number(flag ?? process.env[env] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`);
  return value;
}

async function main() {
  const options = {
    orders: option('orders', 'CHAOS_ORDERS', 1000),
    clients: option('clients', 'CHAOS_CLIENTS', 20),
    faultRate: option('fault-rate', 'CHAOS_FAULT_RATE', 0.2),
    workerKills: option('worker-kills', 'CHAOS_WORKER_KILLS', 3),
    restartPostgres: true,
    restartApi: true,
    killProvider: true,
    killRelay: true,
    restartNats: true,
    killProjector: true,
    poolSize: option('pool-size', 'DB_POOL_SIZE', 0) || undefined,
    activityConcurrency: option('activity-concurrency', 'ACTIVITY_CONCURRENCY', 0) || undefined,
    settleTimeoutMs: 15 * 60_000,
    keepData: process.argv.includes('--keep-data'),
  };
  console.log(`chaos: ${options.orders} orders from ${options.clients} clients, ${options.faultRate * 100} % of activity attempts failing, ` +
    `${options.workerKills} worker kills, one PostgreSQL, NATS and API restart each, one payment provider, relay and projector kill each`);
  const tty = process.stdout.isTTY;
  const summary = await runChaos({
    ...options,
    progress: (line, final) => {
      if (tty) process.stdout.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
      else if (line) console.log(line);
    },
  });
  console.log('\n' + formatSummary(summary) + '\n');
  console.log(formatReport(summary.audit));
  if (summary.diagnostics) console.log(`\n${summary.diagnostics}`);
  if (options.keepData) console.log(`\nlogs and data kept in ${summary.logDir}`);
  const ok = metTarget(summary);
  console.log(ok ? '\nTARGET MET' : '\nTARGET MISSED');
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
