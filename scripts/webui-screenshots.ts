// `npm run screenshots`: the Temporal Web UI as a person sees it. Starts the whole system on embedded defaults in a
// scratch folder (as `npm start` does, on free ports), places a few orders through the API (one that completes, one
// that is refused and compensated, one that waits for a manager), opens the Web UI in headless Chromium and saves
// screenshots to docs/images/:
//   webui-orders-by-status.png   the workflow list filtered by the OrderStatus search attribute
//   webui-order-history.png      a completed order's event history
//   webui-compensated-order.png  a refused order's history, with its compensation
// Then it stops everything. Needs Chromium: `apt-get install -y chromium` (or CHROMIUM_PATH=/path/to/chrome).
//   --ui=<url>    use an already-running system instead: its Web UI at <url>, its API at --api=<url>
//                 (default http://127.0.0.1:3000), keys from API_KEYS or the development ones
//   --out=<dir>   where to write the PNGs (default docs/images)
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { chromium, type Page } from 'playwright-core';
import { loadConfig, type Config } from '../src/config';
import { freePort } from '../src/local-stack/free-port';
import { startStack } from '../src/local-stack/stack';
import { createLogger } from '../src/observability/logging';
import { PROJECT_ROOT } from '../src/local-stack/tools';
import { OrderStatusAttribute, SEARCH_ATTRIBUTES, TERMINAL_STATUSES, type OrderStatus } from '../src/workflows/definitions';

const VIEWPORT = { width: 1280, height: 800 };
/** How long the UI may take to show something the API already knows (visibility is eventually consistent). */
const UI_TIMEOUT_MS = 60_000;
const ORDER_TIMEOUT_MS = 90_000;

function flag(name: string): string | undefined {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const log = (line: string) => console.log(`screenshots: ${line}`);

interface System {
  apiUrl: string;
  uiUrl: string;
  namespace: string;
  clientKey: string;
  stop(): Promise<void>;
}

/** The system to photograph: an already-running one (--ui), or the whole of it started in a scratch folder. */
async function system(): Promise<System> {
  const ui = flag('ui');
  if (ui) {
    const config = loadConfig();
    return {
      apiUrl: (flag('api') ?? 'http://127.0.0.1:3000').replace(/\/$/, ''),
      uiUrl: ui.replace(/\/$/, ''),
      namespace: config.temporal.namespace,
      clientKey: keyOf(config, 'client'),
      stop: async () => {},
    };
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-screenshots-'));
  log(`starting PostgreSQL, Temporal with its Web UI, NATS, the provider, the workers and the API (data in ${dataDir})`);
  // The embedded defaults, on free ports (an `npm start` may be running), with a short dispatch window so that
  // the completed order does not take DISPATCH_DELAY's 10 s.
  const config = loadConfig({ ...process.env, PORT: String(await freePort()), DISPATCH_DELAY: '2s' });
  const lines: string[] = [];
  try {
    const stack = await startStack({
      config,
      dataDir,
      postgresPort: await freePort(),
      temporalPort: await freePort(),
      temporalUiPort: await freePort(),
      providerPort: 0,
      natsPort: await freePort(),
      serviceApiPort: 0,
      // What the stack says, shown only if it fails.
      logger: createLogger({ service: 'screenshots', format: 'pretty', destination: { write: (line: string) => void lines.push(line.trimEnd()) } }),
    });
    if (!stack.temporalUiUrl) {
      await stack.stop();
      throw new Error('TEMPORAL_ADDRESS names a Temporal server without TEMPORAL_UI_URL: set it, or use --ui=<url>');
    }
    const uiUrl = stack.temporalUiUrl;
    return {
      apiUrl: stack.apiUrl,
      uiUrl,
      namespace: config.temporal.namespace,
      clientKey: keyOf(config, 'client'),
      async stop() {
        log('stopping the API, the workers, the provider, NATS, Temporal and PostgreSQL');
        await stack.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    console.error(lines.join('\n'));
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

function keyOf(config: Config, role: 'client'): string {
  const key = config.auth.apiKeys.find((entry) => entry.role === role)?.key;
  if (!key) throw new Error(`API_KEYS has no ${role} key`);
  return key;
}

interface PlacedOrder {
  orderId: string;
  status: OrderStatus;
}

/** Places an order and waits until its saga is in one of `until` (or has ended). */
async function placeOrder(sys: System, name: string, body: object, until: OrderStatus[]): Promise<PlacedOrder> {
  const headers = { authorization: `Bearer ${sys.clientKey}`, 'content-type': 'application/json' };
  const response = await fetch(`${sys.apiUrl}/orders`, {
    method: 'POST',
    headers: { ...headers, 'idempotency-key': `screenshots-${Date.now()}-${name}` },
    body: JSON.stringify(body),
  });
  const placed = (await response.json()) as { orderId?: string; error?: { message: string } };
  if (!placed.orderId) throw new Error(`POST /orders (${name}) answered ${response.status}: ${placed.error?.message ?? JSON.stringify(placed)}`);
  const deadline = Date.now() + ORDER_TIMEOUT_MS;
  for (;;) {
    const state = (await (await fetch(`${sys.apiUrl}/orders/${placed.orderId}`, { headers })).json()) as { status?: OrderStatus };
    if (state.status && (until.includes(state.status) || TERMINAL_STATUSES.includes(state.status))) {
      log(`order ${placed.orderId} (${name}): ${state.status}`);
      return { orderId: placed.orderId, status: state.status };
    }
    if (Date.now() > deadline) throw new Error(`order ${placed.orderId} (${name}) is still ${state.status} after ${ORDER_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function chromiumPath(): string {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(
      `no Chromium at ${executablePath}: install it with \`apt-get install -y chromium\` (as root), or set CHROMIUM_PATH to a Chrome or Chromium executable`,
    );
  }
  return executablePath;
}

/**
 * Opens `url` and waits until every one of `texts` shows. The list is read from Temporal's visibility store,
 * which may lag the workflows by a moment: the page is loaded again until they show, up to UI_TIMEOUT_MS.
 */
async function openShowing(page: Page, url: string, texts: string[]): Promise<void> {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  await page.goto(url);
  for (;;) {
    try {
      for (const text of texts) await page.getByText(text).first().waitFor({ state: 'visible', timeout: 5_000 });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the Web UI did not show ${texts.join(' and ')} at ${url} within ${UI_TIMEOUT_MS / 1000} s`, { cause: error });
      await page.reload();
    }
  }
}

/**
 * The list's columns as an operator wants them: the order's own status and customer (the saga's search
 * attributes) beside Temporal's status, which says only whether the workflow is running or closed. The UI keeps
 * the choice in the browser's local storage, as it does for a person who configures it.
 */
async function showSearchAttributeColumns(page: Page): Promise<void> {
  await page.getByTestId('workflows-summary-table-configuration-button').click();
  for (const column of ['Run ID', 'Type']) await page.getByTestId(`orderable-list-item-${column}-remove-button`).click();
  for (const attribute of SEARCH_ATTRIBUTES) {
    const add = page.getByTestId(`orderable-list-item-${attribute.name}-add-button`);
    if (!(await add.count())) throw new Error(`the Web UI does not offer the search attribute ${attribute.name} as a column: is it registered?`);
    await add.click();
  }
  // Next to the workflow id, before Start and End.
  for (const attribute of SEARCH_ATTRIBUTES) {
    for (let i = 0; i < 2; i++) await page.getByTestId(`orderable-list-item-${attribute.name}-move-up-button`).click();
  }
  await page.getByTestId('drawer-close-button').click();
  await page.getByTestId('drawer-close-button').waitFor({ state: 'hidden' });
  for (const attribute of SEARCH_ATTRIBUTES) await page.getByTestId(`workflows-summary-table-header-cell-${attribute.name}`).waitFor();
}

/**
 * A workflow's page, on its Event History tab in the compact view (one row per activity, timer or signal),
 * oldest first so that it reads like the saga, scrolled to the history; waits until `step` shows in it.
 */
async function openHistory(page: Page, url: string, step: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId('history-tab').click();
  await page.getByTestId('compact').click();
  // The history's details need the width: fold the navigation away, as a person would (the UI remembers it).
  const collapse = page.getByTitle('Collapse Navigation');
  if (await collapse.count()) await collapse.click();
  const sort = page.getByRole('button', { name: /^(Descending|Ascending)$/ });
  if ((await sort.textContent())?.trim() === 'Descending') await sort.click();
  await page.getByRole('button', { name: 'Ascending' }).waitFor();
  await page.getByTestId('event-summary-row').filter({ hasText: step }).first().waitFor({ timeout: UI_TIMEOUT_MS });
  await page.locator('h2', { hasText: 'Event History' }).evaluate((heading) => heading.scrollIntoView({ block: 'start' }));
}

async function main() {
  Runtime.install({ shutdownSignals: [], logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const outDir = path.resolve(flag('out') ?? path.join(PROJECT_ROOT, 'docs', 'images'));
  const executablePath = chromiumPath();
  const started = performance.now();
  // Chromium first: without it, nothing else is worth starting.
  const browser = await chromium.launch({ executablePath }).catch((error: Error) => {
    throw new Error(`Chromium at ${executablePath} did not start (${error.message.split('\n')[0]}); \`apt-get install -y chromium\` installs it with its libraries`);
  });
  let sys: System | undefined;
  try {
    sys = await system();
    log(`API ${sys.apiUrl}, Web UI ${sys.uiUrl}`);
    const [completed, alsoCompleted, refused, awaiting] = await Promise.all([
      placeOrder(sys, 'completed', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 2 }] }, ['COMPLETED']),
      placeOrder(sys, 'also-completed', { customerId: 'cust-dave', lines: [{ sku: 'MS-002', quantity: 3 }] }, ['COMPLETED']),
      // Bob's credit is too small: the payment is refused after the stock was reserved, which is released.
      placeOrder(sys, 'refused', { customerId: 'cust-bob', lines: [{ sku: 'MN-003', quantity: 1 }] }, ['REJECTED']),
      // Above the approval threshold (unless the system's is set higher): waits for a manager.
      placeOrder(sys, 'awaiting-approval', { customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] }, ['AWAITING_APPROVAL']),
    ]);
    for (const order of [completed, alsoCompleted]) {
      if (order.status !== 'COMPLETED') throw new Error(`order ${order.orderId} ended ${order.status}, not COMPLETED`);
    }
    if (refused.status !== 'REJECTED') throw new Error(`order ${refused.orderId} ended ${refused.status}, not REJECTED`);
    if (awaiting.status !== 'AWAITING_APPROVAL') log(`order ${awaiting.orderId} did not wait for approval (${awaiting.status}): APPROVAL_THRESHOLD_CENTS is above its total`);
    else if (flag('ui')) log(`order ${awaiting.orderId} waits for a manager: POST /orders/${awaiting.orderId}/approve or /reject decides it`);

    const page = await browser.newPage({ viewport: VIEWPORT });
    const ns = encodeURIComponent(sys.namespace);
    mkdirSync(outDir, { recursive: true });
    const shot = async (file: string) => {
      await page.mouse.move(VIEWPORT.width - 1, VIEWPORT.height - 1); // no hover effects or tooltips in the picture
      // Transitions still running (a drawer closing) are finished first.
      await page.screenshot({ path: path.join(outDir, file), animations: 'disabled' });
      log(`saved ${path.relative(process.cwd(), path.join(outDir, file))}`);
    };

    // The workflow list, filtered by the order's status, with the order's own status and customer as columns.
    const query = `${OrderStatusAttribute.name}="COMPLETED"`;
    await openShowing(page, `${sys.uiUrl}/namespaces/${ns}/workflows?query=${encodeURIComponent(query)}`, [completed.orderId, alsoCompleted.orderId]);
    await showSearchAttributeColumns(page);
    await shot('webui-orders-by-status.png');

    await openHistory(page, `${sys.uiUrl}/namespaces/${ns}/workflows/${completed.orderId}`, 'closeOrder');
    await shot('webui-order-history.png');

    await openHistory(page, `${sys.uiUrl}/namespaces/${ns}/workflows/${refused.orderId}`, 'releaseStock');
    await shot('webui-compensated-order.png');
  } finally {
    await browser.close().catch(() => {});
    await sys?.stop();
  }
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`screenshots: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
