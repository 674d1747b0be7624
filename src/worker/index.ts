// `npm run worker`: hosts the saga's workflows and every service's activities. To scale one service on its
// own, run just its worker: `npm run worker -- --only=inventory` or WORKER_ROLES=inventory,payments.
import { DefaultLogger, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import { loadConfig, WORKER_ROLES, type WorkerRole } from '../config';
import { providerFromConfig } from '../activities/payments/provider';
import { ensureSearchAttributes } from './search-attributes';
import { faultsFromConfig } from './fault-injection';
import { createWorkers } from './workers';

export function parseRoles(argv: string[], env: NodeJS.ProcessEnv): WorkerRole[] {
  const flag = argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  const raw = flag ?? env.WORKER_ROLES;
  if (!raw) return [...WORKER_ROLES];
  const roles = raw.split(',').map((role) => role.trim()).filter(Boolean);
  const unknown = roles.filter((role) => !WORKER_ROLES.includes(role as WorkerRole));
  if (unknown.length > 0) throw new Error(`unknown worker role(s) ${unknown.join(', ')}; choose from ${WORKER_ROLES.join(', ')}`);
  return roles as WorkerRole[];
}

/** Waits for Temporal to come up (containers start in any order) instead of failing at once. */
async function connectWithRetry(address: string): Promise<NativeConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect({ address });
    } catch (error) {
      if (attempt >= 60) throw error;
      console.error(`worker: Temporal at ${address} not reachable yet (${String(error)}); retrying`);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

async function main() {
  const config = loadConfig();
  if (!config.temporal.address || !config.databaseUrls) {
    throw new Error('set TEMPORAL_ADDRESS and the four *_DATABASE_URL variables, or use `npm start`, which runs everything');
  }
  const roles = parseRoles(process.argv.slice(2), process.env);
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'], logger: new DefaultLogger((process.env.LOG_LEVEL ?? 'INFO') as LogLevel) });
  const connection = await connectWithRetry(config.temporal.address);
  const client = await Connection.connect({ address: config.temporal.address });
  await ensureSearchAttributes(client, config.temporal.namespace);
  await client.close();
  const workers = await createWorkers({
    connection,
    namespace: config.temporal.namespace,
    roles,
    databaseUrls: config.databaseUrls,
    paymentProvider: providerFromConfig(config.payments),
    faults: faultsFromConfig(config),
  });
  console.log(`worker: polling ${roles.join(', ')} on ${config.temporal.address}`);
  await workers.run();
  await connection.close();
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
