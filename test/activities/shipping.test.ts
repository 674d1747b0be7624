// Shipping activities against a real PostgreSQL: one shipment per order however often scheduling runs, a
// cancellation that comes first leaves a tombstone, and dispatch is the point of no return.
import assert from 'node:assert/strict';
import { Refusal } from '../../src/domain';
import { createShippingActivities, MAX_UNITS_PER_SHIPMENT, type ShippingActivities } from '../../src/activities/shipping/activities';
import { connectShippingDb, type ShippingDb } from '../../src/activities/shipping/db';
import { createServiceDatabases } from '../support/postgres';
import { assertNonRetryable, concurrently } from './refusals';

describe('shipping activities (PostgreSQL)', function () {
  let db: ShippingDb;
  let shipping: ShippingActivities;
  let sequence = 0;
  const newOrderId = () => `ord_test_${++sequence}`;
  const lines = [
    { sku: 'KB-001', quantity: 1 },
    { sku: 'CB-005', quantity: 3 },
  ];

  before(async function () {
    const urls = await createServiceDatabases('act_shipping');
    db = connectShippingDb(urls.shipping);
    shipping = createShippingActivities(db);
  });

  after(async function () {
    await db?.$disconnect();
  });

  async function shipment(orderId: string) {
    return db.shipment.findUnique({ where: { orderId } });
  }

  describe('scheduleShipment', function () {
    it('schedules one shipment with the order lines; run twice returns the same result and keeps one shipment', async function () {
      const orderId = newOrderId();

      const first = await shipping.scheduleShipment({ orderId, lines });
      const second = await shipping.scheduleShipment({ orderId, lines });

      assert.deepEqual(first, { orderId, status: 'SCHEDULED', trackingCode: null });
      assert.deepEqual(second, first);
      assert.equal(await db.shipment.count({ where: { orderId } }), 1);
      const row = await shipment(orderId);
      assert.equal(row?.status, 'SCHEDULED');
      assert.deepEqual(row.lines, lines);
    });

    it('run 5 times concurrently keeps one shipment', async function () {
      const orderId = newOrderId();
      const results = await concurrently(5, () => shipping.scheduleShipment({ orderId, lines }));
      assert.deepEqual(results, Array(5).fill({ orderId, status: 'SCHEDULED', trackingCode: null }));
      assert.equal(await db.shipment.count({ where: { orderId } }), 1);
    });

    it(`refuses more than ${MAX_UNITS_PER_SHIPMENT} units non-retryably (ShipmentRefused) and records nothing`, async function () {
      const orderId = newOrderId();
      await assertNonRetryable(
        shipping.scheduleShipment({
          orderId,
          lines: [
            { sku: 'CB-005', quantity: MAX_UNITS_PER_SHIPMENT },
            { sku: 'KB-001', quantity: 1 },
          ],
        }),
        Refusal.ShipmentRefused,
      );
      assert.equal(await shipment(orderId), null);

      // Exactly the maximum is accepted.
      const atLimit = await shipping.scheduleShipment({ orderId, lines: [{ sku: 'CB-005', quantity: MAX_UNITS_PER_SHIPMENT }] });
      assert.equal(atLimit.status, 'SCHEDULED');
    });
  });

  describe('cancelShipment (compensation of scheduleShipment)', function () {
    it('cancels a scheduled shipment; run twice returns the same result', async function () {
      const orderId = newOrderId();
      await shipping.scheduleShipment({ orderId, lines });

      const first = await shipping.cancelShipment({ orderId });
      const second = await shipping.cancelShipment({ orderId });

      assert.deepEqual(first, { orderId, status: 'CANCELLED', trackingCode: null });
      assert.deepEqual(second, first);
      assert.equal((await shipment(orderId))?.status, 'CANCELLED');
      assert.equal(await db.shipment.count({ where: { orderId } }), 1);
    });

    it('before any scheduling leaves a tombstone, and the late scheduling then creates no live shipment', async function () {
      const orderId = newOrderId();

      assert.deepEqual(await shipping.cancelShipment({ orderId }), { orderId, status: 'CANCELLED', trackingCode: null });
      const tombstone = await shipment(orderId);
      assert.equal(tombstone?.status, 'CANCELLED');
      assert.deepEqual(tombstone.lines, []);

      // The timed-out scheduling attempt commits late: it must find the tombstone and do nothing.
      assert.deepEqual(await shipping.scheduleShipment({ orderId, lines }), { orderId, status: 'CANCELLED', trackingCode: null });
      assert.deepEqual(await shipping.scheduleShipment({ orderId, lines }), { orderId, status: 'CANCELLED', trackingCode: null });

      const row = await shipment(orderId);
      assert.equal(row?.status, 'CANCELLED');
      assert.deepEqual(row.lines, []);
      assert.equal(await db.shipment.count({ where: { orderId } }), 1);
      await assertNonRetryable(shipping.dispatchShipment({ orderId }), 'ShipmentNotDispatchable');
    });

    it('racing a scheduling of the same order always ends cancelled', async function () {
      const orderIds = Array.from({ length: 4 }, newOrderId);
      await Promise.all(orderIds.flatMap((orderId) => [shipping.scheduleShipment({ orderId, lines }), shipping.cancelShipment({ orderId })]));
      for (const orderId of orderIds) assert.equal((await shipment(orderId))?.status, 'CANCELLED');
    });

    it('after dispatch fails non-retryably (ShipmentAlreadyDispatched) and leaves the shipment dispatched', async function () {
      const orderId = newOrderId();
      await shipping.scheduleShipment({ orderId, lines });
      const dispatched = await shipping.dispatchShipment({ orderId });

      await assertNonRetryable(shipping.cancelShipment({ orderId }), 'ShipmentAlreadyDispatched');

      const row = await shipment(orderId);
      assert.equal(row?.status, 'DISPATCHED');
      assert.equal(row.trackingCode, dispatched.trackingCode);
    });
  });

  describe('dispatchShipment', function () {
    it('dispatches with a tracking code; run twice returns the same result and keeps the first dispatch time', async function () {
      const orderId = newOrderId();
      await shipping.scheduleShipment({ orderId, lines });

      const first = await shipping.dispatchShipment({ orderId });
      const dispatchedAt = (await shipment(orderId))?.dispatchedAt;
      assert.ok(dispatchedAt instanceof Date);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const second = await shipping.dispatchShipment({ orderId });

      assert.deepEqual(first, { orderId, status: 'DISPATCHED', trackingCode: `TRK-${orderId}` });
      assert.deepEqual(second, first);
      assert.deepEqual((await shipment(orderId))?.dispatchedAt, dispatchedAt);
    });

    it('fails non-retryably on a cancelled shipment and leaves it cancelled', async function () {
      const orderId = newOrderId();
      await shipping.scheduleShipment({ orderId, lines });
      await shipping.cancelShipment({ orderId });

      const failure = await assertNonRetryable(shipping.dispatchShipment({ orderId }), 'ShipmentNotDispatchable');

      assert.match(failure.message, /CANCELLED/);
      const row = await shipment(orderId);
      assert.equal(row?.status, 'CANCELLED');
      assert.equal(row.trackingCode, null);
      assert.equal(row.dispatchedAt, null);
    });
  });
});
