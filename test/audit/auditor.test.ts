// The consistency auditor on real databases: quiet on books the sagas left balanced, and loud on each
// kind of half-done order or unbalanced book.
import assert from 'node:assert/strict';
import { auditDatabases, type AuditReport } from '../../src/audit/auditor';
import type { DatabaseUrls } from '../../src/config';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { createOrdersActivities } from '../../src/activities/orders/activities';
import { connectOrdersDb, type OrdersDb } from '../../src/activities/orders/db';
import { createPaymentsActivities } from '../../src/activities/payments/activities';
import { connectPaymentsDb, type PaymentsDb } from '../../src/activities/payments/db';
import { createShippingActivities } from '../../src/activities/shipping/activities';
import { connectShippingDb, type ShippingDb } from '../../src/activities/shipping/db';
import { createServiceDatabases } from '../support/postgres';

describe('consistency auditor', function () {
  let urls: DatabaseUrls;
  let db: { orders: OrdersDb; inventory: InventoryDb; payments: PaymentsDb; shipping: ShippingDb };

  const violationsOf = (report: AuditReport, name: RegExp) => report.checks.filter((check) => name.test(check.name)).reduce((n, c) => n + c.violations, 0);

  before(async function () {
    urls = await createServiceDatabases('audit');
    db = {
      orders: connectOrdersDb(urls.orders),
      inventory: connectInventoryDb(urls.inventory),
      payments: connectPaymentsDb(urls.payments),
      shipping: connectShippingDb(urls.shipping),
    };
    // Three sagas played step by step with the real activities: completed, rejected, and still in flight.
    const orders = createOrdersActivities(db.orders);
    const inventory = createInventoryActivities(db.inventory);
    const payments = createPaymentsActivities(db.payments, { requestConfirmation: async () => {} });
    const shipping = createShippingActivities(db.shipping);
    const lines = [{ sku: 'KB-001', quantity: 2 }];
    const priced = await inventory.priceOrder(lines);
    for (const orderId of ['ord_done', 'ord_undone', 'ord_running']) {
      await orders.createOrder({ orderId, customerId: 'cust-alice', lines: priced });
      await inventory.reserveStock({ orderId, lines });
      await payments.authorizePayment({ orderId, customerId: 'cust-alice', amountCents: 17_800 });
      await shipping.scheduleShipment({ orderId, lines });
    }
    await shipping.dispatchShipment({ orderId: 'ord_done' });
    await payments.capturePayment({ orderId: 'ord_done' });
    await inventory.consumeReservation({ orderId: 'ord_done' });
    const close = { customerId: 'cust-alice', lines: priced, completedSteps: [], compensations: [] };
    await orders.closeOrder({ orderId: 'ord_done', status: 'COMPLETED', ...close });
    await shipping.cancelShipment({ orderId: 'ord_undone' });
    await payments.voidPayment({ orderId: 'ord_undone', customerId: 'cust-alice' });
    await inventory.releaseStock({ orderId: 'ord_undone' });
    await orders.closeOrder({ orderId: 'ord_undone', status: 'REJECTED', failureReason: 'test', ...close });
  });

  after(async function () {
    await Promise.all(Object.values(db ?? {}).map((client) => client.$disconnect()));
  });

  it('finds no violation in books the sagas left balanced, and counts in-flight orders apart', async function () {
    const report = await auditDatabases(urls);
    assert.equal(report.violations, 0, JSON.stringify(report.checks, null, 2));
    assert.deepEqual(report.orders, { total: 3, completed: 1, rejected: 1, cancelled: 0, inFlight: 1 });
    assert.ok(report.checks.every((check) => check.checked > 0), 'every check looked at something');
  });

  it('reports a completed order whose payment was never captured', async function () {
    await db.payments.payment.update({ where: { orderId: 'ord_done' }, data: { status: 'AUTHORIZED' } });
    try {
      const report = await auditDatabases(urls);
      assert.equal(violationsOf(report, /^completed orders/), 1);
      assert.equal(violationsOf(report, /^captured payments/), 1);
    } finally {
      await db.payments.payment.update({ where: { orderId: 'ord_done' }, data: { status: 'CAPTURED' } });
    }
  });

  it('reports a rejected order that still holds a live shipment', async function () {
    await db.shipping.shipment.update({ where: { orderId: 'ord_undone' }, data: { status: 'SCHEDULED' } });
    try {
      assert.equal(violationsOf(await auditDatabases(urls), /^rejected\/cancelled/), 1);
    } finally {
      await db.shipping.shipment.update({ where: { orderId: 'ord_undone' }, data: { status: 'CANCELLED' } });
    }
  });

  it('reports stock that appeared or vanished, and credit that does not match the payments', async function () {
    await db.inventory.product.update({ where: { sku: 'KB-001' }, data: { onHand: { increment: 1 } } });
    await db.payments.customer.update({ where: { id: 'cust-alice' }, data: { creditUsedCents: { increment: 5 } } });
    try {
      const report = await auditDatabases(urls);
      assert.equal(violationsOf(report, /^stock/), 1);
      assert.equal(violationsOf(report, /^credit used/), 1);
      assert.equal(report.violations, 2);
    } finally {
      await db.inventory.product.update({ where: { sku: 'KB-001' }, data: { onHand: { decrement: 1 } } });
      await db.payments.customer.update({ where: { id: 'cust-alice' }, data: { creditUsedCents: { decrement: 5 } } });
    }
  });

  it('reports a live effect whose order does not exist', async function () {
    await db.shipping.shipment.create({ data: { orderId: 'ord_ghost', status: 'SCHEDULED' } });
    try {
      assert.equal(violationsOf(await auditDatabases(urls), /without its order/), 1);
    } finally {
      await db.shipping.shipment.delete({ where: { orderId: 'ord_ghost' } });
    }
  });
});
