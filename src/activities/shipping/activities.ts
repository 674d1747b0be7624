// Shipping activities. Each is idempotent, keyed by the order id: the shipments table's primary key decides
// whether the work was already done. Dispatch is the saga's point of no return: a dispatched shipment
// cannot be cancelled. Every change records its event (ShipmentScheduled, ShipmentCancelled, ShipmentDispatched)
// in the outbox in the same transaction; a call that changes nothing records nothing.
import { ApplicationFailure } from '@temporalio/activity';
import { appendEvents, orderEvent } from '../../events/outbox';
import { Refusal, type OrderLine } from '../../domain';
import { refuse } from '../refuse';
import type { ShippingDb } from './db';

export interface ShipmentResult {
  orderId: string;
  /** SCHEDULED, or CANCELLED when a cancellation got there first (a late retry after compensation). */
  status: 'SCHEDULED' | 'CANCELLED' | 'DISPATCHED';
  trackingCode: string | null;
}

/** The carrier takes at most this many units in one shipment; a bigger order is refused. */
export const MAX_UNITS_PER_SHIPMENT = 200;

export function createShippingActivities(db: ShippingDb) {
  async function current(orderId: string): Promise<ShipmentResult> {
    const shipment = await db.shipment.findUniqueOrThrow({ where: { orderId } });
    return { orderId, status: shipment.status, trackingCode: shipment.trackingCode };
  }

  return {
    async scheduleShipment(input: { orderId: string; lines: OrderLine[] }): Promise<ShipmentResult> {
      const units = input.lines.reduce((sum, line) => sum + line.quantity, 0);
      if (units > MAX_UNITS_PER_SHIPMENT) {
        throw refuse(Refusal.ShipmentRefused, `the carrier takes at most ${MAX_UNITS_PER_SHIPMENT} units per shipment, this order has ${units}`);
      }
      const lines = input.lines.map(({ sku, quantity }) => ({ sku, quantity }));
      await db.$transaction(async (tx) => {
        const created = await tx.shipment.createMany({ data: [{ orderId: input.orderId, status: 'SCHEDULED', lines }], skipDuplicates: true });
        if (created.count === 1) await appendEvents(tx, [orderEvent('Shipment', input.orderId, 'ShipmentScheduled', { lines })]);
      });
      return current(input.orderId);
    },

    /**
     * Compensation of scheduleShipment. If nothing was scheduled yet it leaves a tombstone, so that a
     * scheduling still in flight cannot create a shipment afterwards.
     */
    async cancelShipment(input: { orderId: string }): Promise<ShipmentResult> {
      await db.$transaction(async (tx) => {
        const tombstone = await tx.shipment.createMany({ data: [{ orderId: input.orderId, status: 'CANCELLED' }], skipDuplicates: true });
        const cancelled = tombstone.count === 1 ? 0 : (await tx.shipment.updateMany({ where: { orderId: input.orderId, status: 'SCHEDULED' }, data: { status: 'CANCELLED' } })).count;
        if (tombstone.count === 1 || cancelled === 1) {
          await appendEvents(tx, [orderEvent('Shipment', input.orderId, 'ShipmentCancelled', { beforeScheduling: tombstone.count === 1 })]);
        }
      });
      const shipment = await current(input.orderId);
      if (shipment.status === 'DISPATCHED') {
        // The saga never compensates after dispatch; reaching this is a bug, and it must not pass silently.
        throw ApplicationFailure.nonRetryable(`shipment of order ${input.orderId} was already dispatched`, 'ShipmentAlreadyDispatched');
      }
      return shipment;
    },

    /** Hands the parcel to the carrier. After this the order can no longer be cancelled. */
    async dispatchShipment(input: { orderId: string }): Promise<ShipmentResult> {
      await db.$transaction(async (tx) => {
        const trackingCode = `TRK-${input.orderId}`;
        const dispatched = await tx.shipment.updateMany({
          where: { orderId: input.orderId, status: 'SCHEDULED' },
          data: { status: 'DISPATCHED', dispatchedAt: new Date(), trackingCode },
        });
        if (dispatched.count === 1) await appendEvents(tx, [orderEvent('Shipment', input.orderId, 'ShipmentDispatched', { trackingCode })]);
      });
      const shipment = await current(input.orderId);
      if (shipment.status !== 'DISPATCHED') {
        throw ApplicationFailure.nonRetryable(`shipment of order ${input.orderId} cannot be dispatched: it is ${shipment.status}`, 'ShipmentNotDispatchable');
      }
      return shipment;
    },
  };
}

export type ShippingActivities = ReturnType<typeof createShippingActivities>;
