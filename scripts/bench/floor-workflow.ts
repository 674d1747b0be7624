// The floor of the benchmark: a workflow of the saga's shape that does no work. Ten activities on the four
// service task queues, in the saga's order, and one signal (the payment provider's confirmation), each
// activity returning at once. What the same Temporal server takes to run it is the cost of orchestration
// alone; the saga's throughput is reported as a ratio of it (scripts/bench/run-bench.ts).
import { condition, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import { FLOOR_QUEUES, floorConfirmed, type FloorActivities } from './floor-definitions';

const options = { startToCloseTimeout: '10s', retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } } as const;
const on = (queue: string) => proxyActivities<FloorActivities>({ ...options, taskQueue: queue });
const orders = on(FLOOR_QUEUES.orders);
const inventory = on(FLOOR_QUEUES.inventory);
const payments = on(FLOOR_QUEUES.payments);
const shipping = on(FLOOR_QUEUES.shipping);

/** The saga's steps, each a no-op; `dispatchDelayMs` is the saga's dispatch window. */
export async function FloorSaga(dispatchDelayMs: number): Promise<number> {
  let confirmed = false;
  setHandler(floorConfirmed, () => void (confirmed = true));
  await inventory.noop('priceOrder');
  await orders.noop('createOrder');
  await inventory.noop('reserveStock');
  await payments.noop('authorizePayment');
  await condition(() => confirmed);
  await payments.noop('confirmPayment');
  await shipping.noop('scheduleShipment');
  await sleep(dispatchDelayMs);
  await shipping.noop('dispatchShipment');
  await payments.noop('capturePayment');
  await inventory.noop('consumeReservation');
  await orders.noop('closeOrder');
  return 10;
}
