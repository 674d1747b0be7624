// Records the histories the replay test checks (`npm run record-histories`), one per way a saga can end.
// A recorded history stands for the workflows already running in production: new workflow code must still
// replay it. So the recorder only writes histories that are missing; it never overwrites a checked-in one
// unless asked by name (`npm run record-histories -- --overwrite=completed-order`), and then on purpose.
// Runs on the time-skipping server with the in-memory services of the workflow tests.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Refusal } from '../../src/domain';
import { approveOrder, AWAIT_DECISION_UPDATE_ID, awaitDecision, cancelOrder, rejectOrder, resolveAttention } from '../../src/workflows/definitions';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { inSpan, startTracing } from '../../src/observability/tracing';
import type { OrderSaga } from '../../src/workflows/order-saga';
import { failuresForGood, refusal } from '../support/fake-services';
import { POLICY, SagaTestEnv, type SagaHandle } from '../support/saga-test-env';

const CHEAP = [{ sku: 'CHEAP', quantity: 2 }];
const PRICEY = [{ sku: 'PRICEY', quantity: 1 }];

interface Scenario {
  lines: { sku: string; quantity: number }[];
  /** Started, updated and queried with a sampled trace context, as the API does with tracing on. */
  traced?: boolean;
  /** Sets the fakes up before the saga starts. */
  arrange?: (saga: SagaTestEnv) => void;
  /** Plays the people around the saga: managers, customers, operators. */
  drive?: (saga: SagaTestEnv, handle: SagaHandle) => Promise<void>;
}

const operator = (action: 'retry' | 'resolved-manually' | 'abort') => async (saga: SagaTestEnv, handle: SagaHandle) => {
  await saga.waitForStatus(handle, 'NEEDS_ATTENTION');
  await handle.executeUpdate(resolveAttention, { args: [{ action, operator: 'recorder' }] });
};

export const SCENARIOS: Record<string, Scenario> = {
  // Recorded before the saga asked the provider while waiting (patch ask-provider-while-waiting): kept as they
  // were, they prove that sagas started by the old code still replay.
  'completed-order': { lines: CHEAP },
  'approved-then-cancelled-order': {
    lines: PRICEY,
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(approveOrder, { args: [{ manager: 'recorder' }] });
      await saga.waitForStatus(handle, 'AWAITING_DISPATCH');
      await handle.executeUpdate(cancelOrder, { args: [{ reason: 'recorded cancellation' }] });
    },
  },
  // Every other terminal path, recorded with the current code.
  'completed-after-asking-provider': { lines: CHEAP, arrange: (saga) => (saga.services.callbackLost = true) },
  'rejected-unknown-sku': { lines: CHEAP, arrange: (saga) => saga.services.behaviours.set('priceOrder', refusal(Refusal.UnknownSku)) },
  'rejected-out-of-stock': { lines: CHEAP, arrange: (saga) => saga.services.behaviours.set('reserveStock', refusal(Refusal.OutOfStock)) },
  'rejected-insufficient-credit': { lines: CHEAP, arrange: (saga) => saga.services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined)) },
  'rejected-declined-by-provider': { lines: CHEAP, arrange: (saga) => (saga.services.providerAnswer = 'DECLINED') },
  'rejected-confirmation-timeout': { lines: CHEAP, arrange: (saga) => (saga.services.providerAnswer = 'NONE') },
  'rejected-shipment-refused': { lines: CHEAP, arrange: (saga) => saga.services.behaviours.set('scheduleShipment', refusal(Refusal.ShipmentRefused)) },
  'rejected-by-manager': {
    lines: PRICEY,
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(rejectOrder, { args: [{ manager: 'recorder', note: 'recorded rejection' }] });
    },
  },
  'rejected-approval-timeout': { lines: PRICEY },
  // Recorded once the saga records the manager's decision with the order (patch record-approval-decision).
  'approved-decision-recorded': {
    lines: PRICEY,
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(approveOrder, { args: [{ manager: 'recorder', note: 'recorded approval' }] });
    },
  },
  'rejected-decision-recorded': {
    lines: PRICEY,
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(rejectOrder, { args: [{ manager: 'recorder', note: 'recorded rejection' }] });
    },
  },
  'cancelled-awaiting-approval': {
    lines: PRICEY,
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_APPROVAL');
      await handle.executeUpdate(cancelOrder, { args: [{ reason: 'recorded cancellation' }] });
    },
  },
  'cancelled-through-temporal': {
    lines: CHEAP,
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_DISPATCH');
      await handle.cancel();
    },
  },
  'needs-attention-compensation-retried': {
    lines: CHEAP,
    arrange: (saga) => {
      saga.services.behaviours.set('scheduleShipment', refusal(Refusal.ShipmentRefused));
      saga.services.behaviours.set('voidPayment', failuresForGood(1));
    },
    drive: operator('retry'),
  },
  'needs-attention-compensation-resolved-manually': {
    lines: CHEAP,
    arrange: (saga) => {
      saga.services.behaviours.set('authorizePayment', refusal(Refusal.PaymentDeclined));
      saga.services.behaviours.set('releaseStock', failuresForGood(1));
    },
    drive: operator('resolved-manually'),
  },
  'needs-attention-forward-aborted': {
    lines: CHEAP,
    arrange: (saga) => saga.services.behaviours.set('reserveStock', failuresForGood(1)),
    drive: operator('abort'),
  },
  'needs-attention-after-dispatch-resolved-manually': {
    lines: CHEAP,
    arrange: (saga) => saga.services.behaviours.set('capturePayment', failuresForGood(1)),
    drive: async (saga, handle) => {
      await saga.waitForStatus(handle, 'AWAITING_DISPATCH');
      await saga.env.sleep(POLICY.dispatchDelay);
      await operator('resolved-manually')(saga, handle);
    },
  },
  // Recorded once callers could ask for the decision (the awaitDecision update, answered before the end).
  'completed-decision-asked': {
    lines: CHEAP,
    drive: async (_saga, handle) => {
      await handle.executeUpdate(awaitDecision, { updateId: AWAIT_DECISION_UPDATE_ID });
    },
  },
  'rejected-decision-asked': {
    lines: CHEAP,
    arrange: (saga) => saga.services.behaviours.set('reserveStock', refusal(Refusal.OutOfStock)),
    drive: async (_saga, handle) => {
      await handle.executeUpdate(awaitDecision, { updateId: AWAIT_DECISION_UPDATE_ID });
    },
  },
};

// Recorded once tracing left the workflow's timing alone (patch tracing-keeps-workflow-timing, marker first): the
// untraced and traced runs of the saga whose operator's update races its next activity (the resolveAttention that
// replayed with a nondeterminism error under the SDK's interceptors), and a traced order with a signal and updates.
Object.assign(SCENARIOS, {
  'timing-kept-needs-attention-compensation-retried': SCENARIOS['needs-attention-compensation-retried'],
  'timing-kept-traced-needs-attention-compensation-retried': { ...SCENARIOS['needs-attention-compensation-retried'], traced: true },
  'timing-kept-traced-approved-then-cancelled-order': { ...SCENARIOS['approved-then-cancelled-order'], traced: true },
  'timing-kept-traced-completed-decision-asked': { ...SCENARIOS['completed-decision-asked'], traced: true },
} satisfies Record<string, Scenario>);

// Recorded once a saga started again for an order that had ended under another saga answers with its record (patch
// order-closed-by-another-saga, recorded only in such a saga).
Object.assign(SCENARIOS, {
  'ended-under-another-saga': {
    lines: CHEAP,
    arrange: (saga) => {
      saga.services.endedBefore = {
        status: 'COMPLETED',
        failureReason: null,
        completedSteps: ['ORDER_CREATED', 'STOCK_RESERVED', 'PAYMENT_AUTHORIZED', 'PAYMENT_CONFIRMED', 'SHIPMENT_SCHEDULED', 'SHIPMENT_DISPATCHED', 'PAYMENT_CAPTURED', 'STOCK_CONSUMED'],
        compensations: [],
        totalCents: 2_000,
        lines: [{ sku: 'CHEAP', quantity: 2, unitPriceCents: 1_000 }],
      };
    },
  },
  'ended-under-another-saga-found-at-close': {
    lines: CHEAP,
    arrange: (saga) => {
      saga.services.behaviours.set('priceOrder', refusal(Refusal.UnknownSku));
      saga.services.endedBefore = {
        status: 'REJECTED',
        failureReason: 'out of stock: CHEAP',
        completedSteps: ['ORDER_CREATED'],
        compensations: ['STOCK_RELEASED'],
        totalCents: 2_000,
        lines: [{ sku: 'CHEAP', quantity: 2, unitPriceCents: 1_000 }],
      };
    },
  },
} satisfies Record<string, Scenario>);

// Recorded once the OrderStatus search attribute is written only where a saga waits, needs a person, compensates
// or ends (patch status-attribute-at-waits, marker in every new saga's first task).
Object.assign(SCENARIOS, {
  'status-at-waits-completed-order': SCENARIOS['completed-order'],
  'status-at-waits-approved-decision-recorded': SCENARIOS['approved-decision-recorded'],
  'status-at-waits-needs-attention-forward-retried': {
    lines: CHEAP,
    arrange: (saga) => saga.services.behaviours.set('reserveStock', failuresForGood(1)),
    drive: operator('retry'),
  },
  'status-at-waits-rejected-insufficient-credit': SCENARIOS['rejected-insufficient-credit'],
} satisfies Record<string, Scenario>);

export const HISTORIES = path.join(__dirname, 'histories');

async function main() {
  const overwrite = new Set(process.argv.filter((arg) => arg.startsWith('--overwrite=')).flatMap((arg) => arg.slice('--overwrite='.length).split(',')));
  for (const name of overwrite) if (!SCENARIOS[name]) throw new Error(`--overwrite: no scenario named ${name}`);
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const tracing = startTracing({ serviceName: 'record-histories', exporter: new InMemorySpanExporter() });
  const saga = await SagaTestEnv.start('replay', { tracing });
  try {
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      const file = path.join(HISTORIES, `${name}.json`);
      if (existsSync(file) && !overwrite.has(name)) {
        console.log(`${name}: kept (recorded before; --overwrite=${name} to record it again)`);
        continue;
      }
      saga.reset();
      scenario.arrange?.(saga);
      const handle = await inSpan(`record ${name}`, {}, async () => {
        const started = await saga.start(scenario.lines, POLICY, scenario.traced ? saga.tracedClient() : saga.env.client);
        await scenario.drive?.(saga, started);
        return started;
      });
      // The environment's own client lets the test server skip time while waiting.
      const result = await saga.env.client.workflow.getHandle<typeof OrderSaga>(handle.workflowId).result();
      writeFileSync(file, historyToJSON(await handle.fetchHistory()) + '\n');
      console.log(`${name}: ${result.status}, history written to ${path.relative(process.cwd(), file)}`);
    }
  } finally {
    await saga.stop();
    await tracing.shutdown();
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
