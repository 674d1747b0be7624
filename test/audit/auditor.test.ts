// The consistency auditor on real databases: quiet on books the sagas left balanced, and loud on each
// kind of half-done order or unbalanced book.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Prisma } from '../../generated/prisma/orders';
import { httpPaymentProvider, type PaymentProvider } from '../../src/activities/payments/provider';
import { startPaymentProvider, type RunningPaymentProvider } from '../../src/payment-provider/start';
import { createTimeSkippingEnv } from '../support/temporal';
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
  let env: TestWorkflowEnvironment;
  let sandbox: RunningPaymentProvider;
  let provider: PaymentProvider;
  let providerDir: string;
  let db: { orders: OrdersDb; inventory: InventoryDb; payments: PaymentsDb; shipping: ShippingDb };

  const violationsOf = (report: AuditReport, name: RegExp) => report.checks.filter((check) => name.test(check.name)).reduce((n, c) => n + c.violations, 0);

  before(async function () {
    env = await createTimeSkippingEnv();
    providerDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-audit-provider-'));
    sandbox = await startPaymentProvider({
      dataDir: providerDir,
      apiKey: 'audit-provider-key',
      webhookSecret: 'audit-webhook-secret',
      callbackUrl: 'http://127.0.0.1:9/payments/callback',
      confirmDelayMs: 0,
      log: () => {},
    });
    provider = httpPaymentProvider({ url: sandbox.url, apiKey: 'audit-provider-key' });
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
    const payments = createPaymentsActivities(db.payments, provider);
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
    await sandbox?.stop();
    if (providerDir) rmSync(providerDir, { recursive: true, force: true });
    await env?.teardown();
  });

  /** Starts a workflow for the order that nobody works on: to Temporal, the saga is running. */
  async function runningSaga(orderId: string) {
    return env.client.workflow.start('OrderSaga', { workflowId: orderId, taskQueue: 'audit-nobody-polls', args: [] });
  }

  it('finds no violation in books the sagas left balanced, and counts in-flight orders apart', async function () {
    const handle = await runningSaga('ord_running');
    try {
      const report = await auditDatabases(urls, { temporal: env.client, provider });
      assert.equal(report.violations, 0, JSON.stringify(report.checks, null, 2));
      assert.deepEqual(report.orders, { total: 3, completed: 1, rejected: 1, cancelled: 0, inFlight: 1, needsAttention: 0 });
      assert.ok(report.checks.every((check) => check.checked > 0), 'every check looked at something');
    } finally {
      await handle.terminate('test over');
    }
  });

  it('fails on a half-done order whose saga is no longer running (terminated) or unknown to Temporal', async function () {
    const handle = await runningSaga('ord_running');
    await handle.terminate('an operator terminated it by mistake');
    const terminated = await auditDatabases(urls, { temporal: env.client });
    assert.equal(violationsOf(terminated, /have a running saga/), 1);
    assert.match(terminated.checks.find((c) => /have a running saga/.test(c.name))!.examples[0], /ord_running is PENDING but its workflow is TERMINATED/);
    assert.equal(terminated.orders.inFlight, 0, 'a half-done order with no saga is not "in flight"');

    await db.orders.order.create({ data: { id: 'ord_orphan', customerId: 'cust-alice', totalCents: 1 } });
    try {
      const unknown = await auditDatabases(urls, { temporal: env.client });
      assert.equal(violationsOf(unknown, /have a running saga/), 2);
    } finally {
      await db.orders.order.delete({ where: { id: 'ord_orphan' } });
    }
  });

  it('reports an order waiting for an operator until it is resolved', async function () {
    await db.orders.order.update({
      where: { id: 'ord_running' },
      data: { status: 'NEEDS_ATTENTION', attention: { phase: 'COMPENSATION', step: 'releaseStock', error: 'boom' } },
    });
    try {
      const report = await auditDatabases(urls);
      assert.equal(violationsOf(report, /waits for an operator/), 1);
      assert.equal(report.orders.needsAttention, 1);
    } finally {
      await db.orders.order.update({ where: { id: 'ord_running' }, data: { status: 'PENDING', attention: Prisma.DbNull } });
    }
  });

  it('reports a payment the provider holds differently from the payments database', async function () {
    await db.payments.payment.update({ where: { orderId: 'ord_undone' }, data: { status: 'AUTHORIZED' } });
    await db.payments.customer.update({ where: { id: 'cust-alice' }, data: { creditUsedCents: { increment: 17_800 } } });
    try {
      const report = await auditDatabases(urls, { provider });
      assert.equal(violationsOf(report, /payment provider records/), 1, JSON.stringify(report.checks, null, 2));
    } finally {
      await db.payments.payment.update({ where: { orderId: 'ord_undone' }, data: { status: 'VOIDED' } });
      await db.payments.customer.update({ where: { id: 'cust-alice' }, data: { creditUsedCents: { decrement: 17_800 } } });
    }
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
