// The chaos run: real PostgreSQL, a real Temporal dev server, NATS JetStream, and the worker, API, relay,
// projector and payment provider as processes of their own, driven by concurrent clients placing a mix of
// orders while activities fail at random, the worker is killed and restarted, PostgreSQL, NATS and the API are
// restarted, the relay and the projector (a consumer) are killed. Then it waits for every saga to end and audits
// the four databases and the event path. Used by `npm run chaos` (1000 orders) and by the smaller test in
// `npm test`.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { restockProduct, SEED_PRODUCTS } from '../../src/activities/inventory/catalog';
import { connectInventoryDb } from '../../src/activities/inventory/db';
import { setCreditLimit } from '../../src/activities/payments/customers';
import { httpPaymentProvider } from '../../src/activities/payments/provider';
import { connectPaymentsDb } from '../../src/activities/payments/db';
import { auditDatabases, type AuditReport } from '../../src/audit/auditor';
import { SERVICES, type DatabaseUrls } from '../../src/config';
import { connectNats } from '../../src/events/nats-connection';
import { ensureStreams } from '../../src/events/streams';
import { startNatsServer } from '../../src/local-stack/nats';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/local-stack/postgres';
import { provisionDatabases } from '../../src/local-stack/provision';
import { startTemporalDevServer } from '../../src/local-stack/temporal-dev-server';
import { diagnose } from './diagnostics';
import { ManagedProcess } from './processes';
import { freePort } from '../../src/local-stack/free-port';

export interface ChaosOptions {
  orders: number;
  clients: number;
  /** Probability that any activity attempt fails transiently. */
  faultRate: number;
  workerKills: number;
  restartPostgres: boolean;
  restartApi: boolean;
  /** Kill the payment provider (kill -9) once, mid-run, and start it again on its store. */
  killProvider: boolean;
  /** Kill the outbox relay process (kill -9) once, mid-run, and start it again. */
  killRelay?: boolean;
  /** Stop the NATS server once, mid-run, and start it again on its store. */
  restartNats?: boolean;
  /** Kill the projector, the query side's consumer process (kill -9), once, mid-run, and start it again. */
  killProjector?: boolean;
  /**
   * Activities the worker runs at once per service queue (ACTIVITY_CONCURRENCY); unset: as many as its pool has
   * connections (DB_POOL_SIZE), the sized-together default. A larger value reproduces unsized pools.
   */
  activityConcurrency?: number;
  /** Connections per service database in the worker (DB_POOL_SIZE); unset: the default. */
  poolSize?: number;
  /** How long to wait, after the last order is placed, for every saga to end. */
  settleTimeoutMs: number;
  progress?: (line: string, final?: boolean) => void;
  keepData?: boolean;
}

export interface ChaosSummary {
  submitted: number;
  accepted: number;
  refusedAtSubmission: number;
  /** Why orders were refused at submission, e.g. { '400 validation_failed': 1, 'gave up after 5 minutes: 503 service_unavailable': 2 }. */
  refusalReasons: Record<string, number>;
  /** Answers 503 overloaded (back-pressure) the clients waited out before sending the same order again. */
  overloadedAnswers: number;
  /** The longest an order took to be accepted from its first attempt, in ms: how long an outage kept clients out. */
  longestPlacementMs: number;
  terminal: { COMPLETED: number; REJECTED: number; CANCELLED: number };
  /** How each kind of order ended, e.g. { approval: { COMPLETED: 10, REJECTED: 3 } }. */
  byKind: Record<string, Record<string, number>>;
  stillRunning: number;
  lost: number;
  /** Orders that ended in a way their kind does not allow (e.g. a happy order REJECTED), with examples. */
  unexpectedOutcomes: number;
  unexpectedExamples: string[];
  /** Orders whose cancel the API accepted (202) and that were shipped all the same: each breaks a promise. */
  acceptedCancelsShipped: number;
  /** Orders rejected because the provider's confirmation never reached the saga. */
  confirmationTimeouts: number;
  /** Retried activities whose previous attempt timed out (start-to-close, or waiting for a pooled connection). */
  timeoutRetries: number;
  /** Of those, the attempts that failed waiting for a free database connection (pg-pool's connection timeout). */
  poolTimeoutRetries: number;
  retriesObserved: number;
  restarts: { worker: number; postgres: number; api: number; provider: number; relay: number; nats: number; projector: number };
  /** Processes that exited without being killed or stopped (ManagedProcess.unexpectedExits): each one a crash. */
  crashes: string[];
  /** The event path's figures, from the audit: events lost, on a stream twice, dead-lettered; orders whose
   *  event-sourced state or query view differs from the service databases. */
  events: { streamed: number; lost: number; duplicated: number; deadLettered: number; foldMismatches: number; viewMismatches: number };
  violations: number;
  duplicateEffects: number;
  audit: AuditReport;
  seconds: number;
  logDir: string;
  /** When the run missed its target: the event path's state, the relays' connections and the processes' warnings (diagnostics.ts). */
  diagnostics?: string;
}

const MANAGER_TOKEN = 'chaos-manager-token';
const WEBHOOK_SECRET = 'chaos-webhook-secret';
const PROVIDER_KEY = 'chaos-provider-key';
const BALANCE_CHECKS = /^(stock|units consumed|credit used|captured payments)/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Kind = 'happy' | 'declined' | 'out-of-stock' | 'approval' | 'cancellation';

/** How each kind of order may end. A cancellation that arrives after the point of no return is refused (409). */
const ALLOWED_OUTCOMES: Record<Kind, string[]> = {
  happy: ['COMPLETED'],
  declined: ['REJECTED'],
  'out-of-stock': ['REJECTED'],
  approval: ['COMPLETED', 'REJECTED'],
  cancellation: ['CANCELLED', 'COMPLETED'],
};
const KINDS: Kind[] = ['happy', 'happy', 'happy', 'declined', 'out-of-stock', 'approval', 'cancellation'];

function orderFor(kind: Kind, i: number) {
  switch (kind) {
    case 'happy':
      return { customerId: i % 2 ? 'cust-alice' : 'cust-dave', lines: [{ sku: ['KB-001', 'MS-002', 'CB-005'][i % 3], quantity: 1 }] };
    case 'declined':
      return { customerId: 'cust-carol', lines: [{ sku: 'CB-005', quantity: 1 }] };
    case 'out-of-stock':
      return { customerId: 'cust-dave', lines: [{ sku: 'GPU-006', quantity: 3 }] };
    case 'approval':
      return { customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] };
    case 'cancellation':
      return { customerId: 'cust-alice', lines: [{ sku: 'MN-003', quantity: 1 }] };
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const startedAt = Date.now();
  const progress = options.progress ?? (() => {});
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-chaos-'));
  // PostgreSQL runs as its own user (when we are root) and must be able to reach its data folder inside.
  chmodSync(dataDir, 0o755);
  const logFile = path.join(dataDir, 'processes.log');
  const log = ManagedProcess.logFile(logFile);
  const cleanups: (() => Promise<unknown>)[] = [];
  const restarts = { worker: 0, postgres: 0, api: 0, provider: 0, relay: 0, nats: 0, projector: 0 };

  try {
    // --- the system -------------------------------------------------------------------------------
    const pgPort = await freePort();
    let postgres: RunningPostgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), port: pgPort });
    cleanups.push(() => postgres.stop());
    const urls: DatabaseUrls = postgres.urls;
    await provisionDatabases(urls, postgres.queryUrl);
    // Plenty of stock and credit, so that most orders can complete: the point is the failures.
    const inventory = connectInventoryDb(urls.inventory);
    const payments = connectPaymentsDb(urls.payments);
    for (const { sku } of SEED_PRODUCTS.filter(({ sku }) => sku !== 'GPU-006')) await restockProduct(inventory, sku, 100_000);
    for (const customerId of ['cust-alice', 'cust-dave']) await setCreditLimit(payments, customerId, 1_000_000_000);
    await Promise.all([inventory.$disconnect(), payments.$disconnect()]);

    // The message stream, with its relay and the query side's projector as their own processes.
    const natsPort = await freePort();
    let nats = await startNatsServer({ port: natsPort, storeDir: path.join(dataDir, 'nats') });
    cleanups.push(() => nats.stop());
    const streams = await connectNats([nats.url], 'chaos-setup');
    await ensureStreams(streams, { replicas: 1 }).finally(() => streams.close());

    const temporal = await startTemporalDevServer({ port: await freePort(), dbFile: path.join(dataDir, 'temporal.sqlite') });
    cleanups.push(() => temporal.stop());

    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    // The worker serves the services' read APIs here; the API reaches them there, and no service database.
    const serviceApiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      TEMPORAL_ADDRESS: temporal.address,
      ...Object.fromEntries(SERVICES.map((s) => [`${s.toUpperCase()}_DATABASE_URL`, urls[s]])),
      QUERY_DATABASE_URL: postgres.queryUrl,
      NATS_URL: nats.url,
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      PAYMENT_PROVIDER: 'sandbox',
      PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      PAYMENT_CALLBACK_URL: `${apiUrl}/payments/callback`,
      SANDBOX_CONFIRM_DELAY_MS: '200',
      PAYMENT_CONFIRMATION_TIMEOUT: '30s',
      PAYMENT_CHECK_INTERVAL: '3s',
      APPROVAL_TIMEOUT: '2m',
      DISPATCH_DELAY: '2s',
      // The clients place, read and cancel as one client application; approvals come with the manager's key.
      API_KEYS: `client:chaos-shop=chaos-client-key,manager:chaos=${MANAGER_TOKEN}`,
      // INFO: ManagedProcess waits for each process's start line (`polling`, `listening on`…), which is at that level.
      LOG_LEVEL: 'INFO',
    };
    // The sandbox payment provider, its own process with its own store, killed and restarted like the others.
    const providerPort = await freePort();
    const provider = new ManagedProcess(
      'payment-provider',
      'src/payment-provider/index.ts',
      { ...env, PROVIDER_PORT: String(providerPort), PROVIDER_DATA_DIR: path.join(dataDir, 'payment-provider'), PAYMENT_PROVIDER_API_KEY: PROVIDER_KEY },
      /payment-provider: listening/,
      log,
    );
    await provider.start();
    cleanups.push(() => provider.stop());
    const worker = new ManagedProcess(
      'worker',
      'src/worker/index.ts',
      {
        ...env,
        PAYMENT_PROVIDER_URL: `http://127.0.0.1:${providerPort}`,
        PAYMENT_PROVIDER_API_KEY: PROVIDER_KEY,
        SERVICE_API_PORT: String(serviceApiPort),
        FAULT_INJECTION: `*:transient=${options.faultRate}`,
        ...(options.poolSize ? { DB_POOL_SIZE: String(options.poolSize) } : {}),
        ...(options.activityConcurrency ? { ACTIVITY_CONCURRENCY: String(options.activityConcurrency) } : {}),
      },
      /"msg":"polling /,
      log,
    );
    const apiEnv = Object.fromEntries(Object.entries(env).filter(([name]) => !/_DATABASE_URL$/.test(name) || name === 'QUERY_DATABASE_URL'));
    const serviceUrls = Object.fromEntries(SERVICES.map((s) => [`${s.toUpperCase()}_SERVICE_URL`, `http://127.0.0.1:${serviceApiPort}`]));
    const api = new ManagedProcess('api', 'src/api/index.ts', { ...apiEnv, ...serviceUrls }, /"msg":"listening on /, log);
    const relay = new ManagedProcess('relay', 'src/relay/index.ts', env, /"msg":"publishing the outboxes /, log);
    const projector = new ManagedProcess('projector', 'src/query/index.ts', env, /"msg":"applying events /, log);
    await relay.start();
    cleanups.push(() => relay.stop());
    await projector.start();
    cleanups.push(() => projector.stop());
    await worker.start();
    cleanups.push(() => worker.stop());
    await api.start();
    cleanups.push(() => api.stop());
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    cleanups.push(() => client.connection.close());

    // --- the clients --------------------------------------------------------------------------------
    const accepted = new Map<string, Kind>();
    let submitted = 0;
    let refusedAtSubmission = 0;
    const refusalReasons: Record<string, number> = {};
    let overloadedAnswers = 0;
    let longestPlacementMs = 0;
    const refuse = (reason: string) => {
      refusedAtSubmission++;
      refusalReasons[reason] = (refusalReasons[reason] ?? 0) + 1;
    };
    let chaosBusy = false;

    async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
      const response = await fetch(`${apiUrl}${url}`, {
        method,
        // The client application's key, unless the caller brings another (a manager approving).
        headers: { 'content-type': 'application/json', authorization: 'Bearer chaos-client-key', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      return { status: response.status, retryAfter: Number(response.headers.get('retry-after') ?? 0), body: (await response.json().catch(() => ({}))) as Record<string, any> };
    }

    /**
     * Places one order, retrying with the same Idempotency-Key until the API answers, for up to 5 minutes in all.
     * Told the system is overloaded (503 overloaded), it waits the Retry-After it is given, as the API asks; an outage
     * (no answer, or another 503: a service the API needs is restarting) is retried half a second to 2 s apart. How
     * long the slowest order took to be placed is in the summary.
     */
    async function place(i: number): Promise<void> {
      const kind = KINDS[i % KINDS.length];
      const key = `chaos-${i}`;
      submitted++;
      const firstAttempt = Date.now();
      const giveUpAt = firstAttempt + 300_000;
      let last = 'no answer';
      for (let attempt = 0; Date.now() < giveUpAt; ) {
        try {
          const response = await call('POST', '/orders', orderFor(kind, i), { 'Idempotency-Key': key });
          if (response.status === 202 || response.status === 200) {
            longestPlacementMs = Math.max(longestPlacementMs, Date.now() - firstAttempt);
            accepted.set(response.body.orderId, kind);
            void followUp(response.body.orderId, kind);
            return;
          }
          last = `${response.status} ${response.body?.error?.code ?? ''}`.trim();
          if (response.status < 500) return refuse(last);
          if (response.body?.error?.code === 'overloaded') {
            overloadedAnswers++;
            await sleep(response.retryAfter * 1000 || 1_000);
            continue;
          }
        } catch (error) {
          // The API is down or restarting: the same key makes the retry safe.
          last = `no answer (${error instanceof Error ? error.message : String(error)})`;
        }
        attempt++;
        await sleep(Math.min(500 * 1.2 ** attempt, 2_000));
      }
      refuse(`gave up after 5 minutes: ${last}`);
    }

    /** Orders whose cancel was answered 202: they must end CANCELLED. */
    const cancelsAccepted = new Set<string>();
    /** What a person does after placing: a manager approves (or rejects), a customer cancels. */
    async function followUp(orderId: string, kind: Kind): Promise<void> {
      // The out-of-stock order is above the approval threshold too: approved, it then fails at reservation.
      if (kind !== 'approval' && kind !== 'cancellation' && kind !== 'out-of-stock') return;
      for (let attempt = 0; attempt < 200; attempt++) {
        await sleep(kind === 'cancellation' ? 300 + Math.random() * 2_000 : 500);
        try {
          if (kind === 'cancellation') {
            const response = await call('POST', `/orders/${orderId}/cancel`, { reason: 'chaos: customer cancelled' });
            if (response.status === 202) cancelsAccepted.add(orderId);
            if (response.status < 500) return;
          } else {
            const state = await call('GET', `/orders/${orderId}`);
            if (state.body.status === 'AWAITING_APPROVAL') {
              const action = kind === 'approval' && orderId.charCodeAt(orderId.length - 1) % 4 === 0 ? 'reject' : 'approve';
              const response = await call('POST', `/orders/${orderId}/${action}`, { manager: 'chaos' }, { authorization: `Bearer ${MANAGER_TOKEN}` });
              if (response.status < 500) return;
            } else if (state.status === 200 && !['PENDING', 'AWAITING_APPROVAL'].includes(state.body.status)) return;
          }
        } catch {
          // Outage: try again.
        }
      }
    }

    // --- the chaos ----------------------------------------------------------------------------------
    const events: { at: number; name: string; run: () => Promise<void> }[] = [];
    for (let k = 1; k <= options.workerKills; k++) {
      events.push({ at: k / (options.workerKills + 1), name: 'kill worker', run: async () => { await worker.restart(); restarts.worker++; } });
    }
    if (options.restartPostgres) {
      events.push({
        at: 0.45,
        name: 'restart PostgreSQL',
        run: async () => {
          await postgres.stop();
          await sleep(1_000);
          postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), port: pgPort });
          restarts.postgres++;
        },
      });
    }
    if (options.restartApi) events.push({ at: 0.6, name: 'restart API', run: async () => { await api.restart(); restarts.api++; } });
    if (options.killProvider) {
      events.push({ at: 0.3, name: 'kill payment provider', run: async () => { await provider.restart(); restarts.provider++; } });
    }
    if (options.killRelay) events.push({ at: 0.35, name: 'kill relay', run: async () => { await relay.restart(); restarts.relay++; } });
    if (options.restartNats) {
      events.push({
        at: 0.5,
        name: 'restart NATS',
        run: async () => {
          await nats.stop();
          await sleep(1_000);
          nats = await startNatsServer({ port: natsPort, storeDir: path.join(dataDir, 'nats') });
          restarts.nats++;
        },
      });
    }
    if (options.killProjector) events.push({ at: 0.7, name: 'kill projector', run: async () => { await projector.restart(); restarts.projector++; } });
    events.sort((a, b) => a.at - b.at);

    let next = 0;
    const report = () =>
      progress(
        `${bar(submitted / options.orders)} placed ${submitted}/${options.orders}, accepted ${accepted.size}, restarts: worker ${restarts.worker}, postgres ${restarts.postgres}, api ${restarts.api}`,
      );
    const ticker = setInterval(report, 1_000);
    try {
      const queue = Array.from({ length: options.orders }, (_, i) => i);
      await Promise.all(
        Array.from({ length: options.clients }, async () => {
          for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
            while (!chaosBusy && next < events.length && submitted / options.orders >= events[next].at) {
              chaosBusy = true;
              const event = events[next++];
              void event
                .run()
                .catch((error) => progress(`chaos event "${event.name}" failed: ${String(error)}`))
                .finally(() => (chaosBusy = false));
            }
            await place(i);
          }
        }),
      );
      while (chaosBusy || next < events.length) {
        if (!chaosBusy && next < events.length) {
          chaosBusy = true;
          await events[next++].run().finally(() => (chaosBusy = false));
        }
        await sleep(200);
      }

      // --- the end: every saga terminal, every accepted order found, the books balanced ---------------
      const deadline = Date.now() + options.settleTimeoutMs;
      let running = Infinity;
      while (Date.now() < deadline) {
        running = (await client.workflow.count(`ExecutionStatus = 'Running'`)).count;
        const sample: string[] = [];
        if (running > 0 && running <= 3) {
          for await (const execution of client.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
            const state = await call('GET', `/orders/${execution.workflowId}`).catch(() => undefined);
            sample.push(`${accepted.get(execution.workflowId)}:${state?.body.status}`);
          }
        }
        progress(`${bar(1)} waiting for ${running} saga(s) still running ${sample.join(' ')}`);
        if (running === 0) break;
        await sleep(2_000);
      }
    } finally {
      clearInterval(ticker);
    }

    const terminal = { COMPLETED: 0, REJECTED: 0, CANCELLED: 0 };
    let stillRunning = 0;
    let lost = 0;
    let retriesObserved = 0;
    let unexpectedOutcomes = 0;
    let confirmationTimeouts = 0;
    let timeoutRetries = 0;
    let poolTimeoutRetries = 0;
    let acceptedCancelsShipped = 0;
    const unexpectedExamples: string[] = [];
    const byKind: Record<string, Record<string, number>> = {};
    const ids = [...accepted.keys()];
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map(async (orderId) => {
          const state = await call('GET', `/orders/${orderId}`);
          const outcome = state.status === 404 ? 'LOST' : String(state.body.status);
          const kind = (byKind[accepted.get(orderId)!] ??= {});
          kind[outcome] = (kind[outcome] ?? 0) + 1;
          if (state.status === 404) lost++;
          const orderKind = accepted.get(orderId)!;
          if (state.status !== 404 && state.body.status in terminal && !ALLOWED_OUTCOMES[orderKind].includes(state.body.status)) {
            unexpectedOutcomes++;
            if (unexpectedExamples.length < 5) unexpectedExamples.push(`${orderId} (${orderKind}): ${state.body.status} ${state.body.failureReason ?? ''}`);
          }
          if (cancelsAccepted.has(orderId) && state.body.status === 'COMPLETED') {
            acceptedCancelsShipped++;
            if (unexpectedExamples.length < 5) unexpectedExamples.push(`${orderId}: cancel answered 202, then COMPLETED`);
          }
          if (/did not confirm within/.test(state.body.failureReason ?? '')) confirmationTimeouts++;
          if (state.status === 404) return;
          if (state.body.status in terminal) terminal[state.body.status as keyof typeof terminal]++;
          else stillRunning++;
          const history = await client.workflow.getHandle(orderId).fetchHistory();
          for (const event of history.events ?? []) {
            const started = event.activityTaskStartedEventAttributes;
            const attempt = started?.attempt ?? 1;
            if (attempt > 1) retriesObserved++;
            const lastFailure = started?.lastFailure?.message ?? '';
            if (attempt > 1 && /time(d)? ?out/i.test(lastFailure)) timeoutRetries++;
            if (attempt > 1 && /timeout exceeded when trying to connect/i.test(lastFailure)) poolTimeoutRetries++;
          }
        }),
      );
      progress(`checked ${Math.min(i + 20, ids.length)}/${ids.length} orders`);
    }
    progress('auditing the databases and the event path');
    const auditNats = await connectNats([nats.url], 'chaos-audit');
    cleanups.push(() => auditNats.close());
    const audit = await auditDatabases(urls, {
      temporal: client,
      provider: httpPaymentProvider({ url: `http://127.0.0.1:${providerPort}`, apiKey: PROVIDER_KEY }),
      events: { queryDatabaseUrl: postgres.queryUrl, nats: auditNats, settleMs: 120_000 },
    });
    const violationsOf = (name: RegExp) => audit.checks.filter((check) => name.test(check.name)).reduce((n, check) => n + check.violations, 0);
    const eventFigures = {
      streamed: audit.checks.find((check) => /^no event twice/.test(check.name))?.checked ?? 0,
      lost: violationsOf(/^no event lost/),
      duplicated: violationsOf(/^no event twice|recorded twice|applied exactly once/),
      deadLettered: violationsOf(/^no event dead-lettered/),
      foldMismatches: violationsOf(/^order streams: each order's fold/),
      viewMismatches: violationsOf(/^query side: /),
    };
    const duplicateEffects = audit.checks.filter((check) => BALANCE_CHECKS.test(check.name)).reduce((n, check) => n + check.violations, 0);
    const summary: ChaosSummary = {
      submitted,
      accepted: accepted.size,
      refusedAtSubmission,
      refusalReasons,
      overloadedAnswers,
      longestPlacementMs,
      terminal,
      byKind,
      stillRunning,
      lost,
      unexpectedOutcomes,
      unexpectedExamples,
      acceptedCancelsShipped,
      confirmationTimeouts,
      timeoutRetries,
      poolTimeoutRetries,
      retriesObserved,
      restarts,
      crashes: [provider, worker, api, relay, projector].flatMap((process) => process.unexpectedExits),
      events: eventFigures,
      violations: audit.violations,
      duplicateEffects,
      audit,
      seconds: Math.round((Date.now() - startedAt) / 1000),
      logDir: dataDir,
    };
    if (!metTarget(summary)) summary.diagnostics = await diagnose({ databaseUrls: urls, clusterUrl: postgres.queryUrl, nats: auditNats, logFile });
    progress('', true);
    return summary;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    log.end();
    if (!options.keepData) rmSync(dataDir, { recursive: true, force: true });
  }
}

function bar(fraction: number): string {
  const width = 30;
  const filled = Math.round(Math.min(1, fraction) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(Math.min(1, fraction) * 100)}%`;
}

export function formatSummary(s: ChaosSummary): string {
  const total = s.terminal.COMPLETED + s.terminal.REJECTED + s.terminal.CANCELLED;
  return [
    `orders submitted           ${s.submitted}`,
    `orders accepted            ${s.accepted}   (refused at submission: ${s.refusedAtSubmission}${s.refusedAtSubmission ? `: ${Object.entries(s.refusalReasons).map(([reason, n]) => `${reason} ×${n}`).join(', ')}` : ''})`,
    `overloaded answers waited  ${s.overloadedAnswers}   (503 overloaded: the client waited Retry-After and sent the same order again)`,
    `longest placement          ${(s.longestPlacementMs / 1000).toFixed(1)} s   (from an order's first attempt to its acceptance, outages and overload included)`,
    `terminal                   ${total} = COMPLETED ${s.terminal.COMPLETED}, REJECTED ${s.terminal.REJECTED}, CANCELLED ${s.terminal.CANCELLED}   (${s.accepted ? ((100 * total) / s.accepted).toFixed(1) : '0'} %)`,
    ...Object.entries(s.byKind).map(([kind, outcomes]) => `  ${kind.padEnd(24)} ${Object.entries(outcomes).map(([status, n]) => `${status} ${n}`).join(', ')}`),
    `still running              ${s.stillRunning}`,
    `orders lost                ${s.lost}`,
    `unexpected outcomes        ${s.unexpectedOutcomes}${s.unexpectedExamples.map((e) => `\n    ✗ ${e}`).join('')}`,
    `accepted cancels shipped   ${s.acceptedCancelsShipped}   (cancel answered 202, order COMPLETED anyway)`,
    `confirmation timeouts      ${s.confirmationTimeouts}   (orders rejected because no confirmation reached the saga)`,
    `timed-out attempts retried ${s.timeoutRetries}   (of which waiting for a database connection: ${s.poolTimeoutRetries})`,
    `activity retries observed  ${s.retriesObserved}`,
    `restarts                   worker ${s.restarts.worker}, PostgreSQL ${s.restarts.postgres}, API ${s.restarts.api}, payment provider ${s.restarts.provider}, ` +
      `relay ${s.restarts.relay}, NATS ${s.restarts.nats}, projector ${s.restarts.projector}`,
    `processes crashed          ${s.crashes.length === 0 ? 'none' : s.crashes.join(', ')}`,
    `events on the streams      ${s.events.streamed}`,
    `events lost                ${s.events.lost}`,
    `events twice               ${s.events.duplicated}   (on a stream, or applied by a consumer)`,
    `events dead-lettered       ${s.events.deadLettered}`,
    `event-sourced ≠ stored     ${s.events.foldMismatches}   (orders whose stream does not fold to the stored state)`,
    `query views ≠ services     ${s.events.viewMismatches}`,
    `invariant violations       ${s.violations}`,
    `duplicate effects          ${s.duplicateEffects}`,
    `duration                   ${s.seconds} s`,
  ].join('\n');
}

export function metTarget(s: ChaosSummary): boolean {
  return s.accepted > 0 && s.crashes.length === 0 && s.stillRunning === 0 && s.lost === 0 && s.violations === 0 && s.duplicateEffects === 0 &&
    s.events.lost === 0 && s.events.duplicated === 0 && s.events.deadLettered === 0 && s.events.foldMismatches === 0 && s.events.viewMismatches === 0 &&
    s.unexpectedOutcomes === 0 && s.acceptedCancelsShipped === 0 && s.confirmationTimeouts === 0 &&
    s.terminal.COMPLETED + s.terminal.REJECTED + s.terminal.CANCELLED === s.accepted;
}
