// What the floor workflow (floor-workflow.ts) and the benchmark that drives it share: its task queues, its
// activity and its signal. Importable outside a workflow.
import { defineSignal } from '@temporalio/workflow';

export const FLOOR_QUEUES = {
  saga: 'bench-floor',
  orders: 'bench-floor-orders',
  inventory: 'bench-floor-inventory',
  payments: 'bench-floor-payments',
  shipping: 'bench-floor-shipping',
} as const;

export interface FloorActivities {
  noop(step: string): Promise<string>;
}

export const floorConfirmed = defineSignal('floorConfirmed');

