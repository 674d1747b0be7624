// The system the benchmark measures: the whole stack on embedded defaults in a scratch folder (as `npm start` runs
// it), with a short dispatch delay, a provider that confirms at once, and enough stock and credit for every order.
import { restockProduct, SEED_PRODUCTS } from '../../src/activities/inventory/catalog';
import { connectInventoryDb } from '../../src/activities/inventory/db';
import { setCreditLimit } from '../../src/activities/payments/customers';
import { connectPaymentsDb } from '../../src/activities/payments/db';
import { loadConfig, type Config } from '../../src/config';
import { freePort } from '../../src/local-stack/free-port';
import { startStack, type RunningStack } from '../../src/local-stack/stack';

export const DISPATCH_DELAY = '1ms';
export const CONFIRM_DELAY_MS = 1;

export interface BenchStack {
  stack: RunningStack;
  config: Config;
  /** The API key of the client application the orders are placed with. */
  clientKey: string;
}

/**
 * Starts the stack in `dataDir`. With `runWorkers` false the workers are left to processes of their own
 * (worker-processes.ts), which serve the services' read APIs on `stack.serviceUrls` for the API.
 */
export async function startBenchStack(dataDir: string, { runWorkers }: { runWorkers: boolean }): Promise<BenchStack> {
  const config = loadConfig({
    PORT: String(await freePort()),
    PAYMENT_PROVIDER: 'sandbox',
    SANDBOX_CONFIRM_DELAY_MS: String(CONFIRM_DELAY_MS),
    DISPATCH_DELAY,
    APPROVAL_THRESHOLD_CENTS: '100000000',
  });
  const stack = await startStack({
    config,
    dataDir,
    postgresPort: await freePort(),
    temporalPort: await freePort(),
    temporalUiPort: 0,
    providerPort: 0,
    natsPort: await freePort(),
    runWorkers,
    // Any free port for the workers here; known in advance for a worker process started later.
    serviceApiPort: runWorkers ? 0 : await freePort(),
  });
  try {
    const clientKey = config.auth.apiKeys.find((key) => key.role === 'client')!.key;
    await plentyOfStockAndCredit(stack, clientKey);
    return { stack, config, clientKey };
  } catch (error) {
    await stack.stop();
    throw error;
  }
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
