// The consistency auditor: reads the four service databases directly and checks that every saga that has
// ended left its order fully done or fully undone, and that the books of each service balance.
// Orders still in flight are counted apart: their steps may legitimately be half done. "In flight" is not taken
// on the orders database's word: given a Temporal client, every order that is not closed is checked against its
// workflow, and one whose workflow has closed, failed, been terminated or is unknown is a violation (a half-done
// order nobody is finishing). An order waiting for an operator (NEEDS_ATTENTION) is a violation until resolved,
// and so is a running saga that has retried one step more than a few times. Given the payment provider, its
// records are reconciled with the payments database. Given the message stream and the query database, the event
// path is audited too (events-audit.ts).
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { DatabaseUrls } from '../config';
import { listAllAuthorizations, type PaymentProvider } from '../activities/payments/provider';
import { reconcilePayments } from '../activities/payments/reconciliation';
import { connectInventoryDb } from '../activities/inventory/db';
import { connectOrdersDb } from '../activities/orders/db';
import { connectPaymentsDb } from '../activities/payments/db';
import { connectShippingDb } from '../activities/shipping/db';
import { Check, type CheckResult } from './check';
import { auditEvents, type EventsAuditOptions } from './events-audit';

export type { CheckResult } from './check';

export interface AuditReport {
  orders: { total: number; completed: number; rejected: number; cancelled: number; inFlight: number; needsAttention: number };
  checks: CheckResult[];
  violations: number;
}

const sumBy = <T>(items: T[], value: (item: T) => number) => items.reduce((sum, item) => sum + value(item), 0);

export interface AuditOptions {
  /** Cross-checks every order that is not closed against its workflow (without it, PENDING counts as in flight). */
  temporal?: Client;
  /** Reconciles the provider's records with the payments database. */
  provider?: Pick<PaymentProvider, 'list'>;
  /** A running saga whose current step has failed more often than this is named (default 5). */
  retryThreshold?: number;
  /** Audits the event path too: outboxes, streams, consumers, the orders' event streams, the query database. */
  events?: Omit<EventsAuditOptions, 'databaseUrls'>;
}

/** What Temporal says of an order's workflow: its execution status, and its steps that keep failing. */
async function workflowOf(client: Client, orderId: string): Promise<{ status: string; retrying: string[] }> {
  try {
    const description = await client.workflow.getHandle(orderId).describe();
    const retrying = (description.raw.pendingActivities ?? []).map(
      (activity) => `${activity.activityType?.name} attempt ${activity.attempt}: ${activity.lastFailure?.message ?? 'no failure recorded'}`,
    );
    const attempts = (description.raw.pendingActivities ?? []).map((activity) => activity.attempt ?? 0);
    return { status: description.status.name, retrying: retrying.filter((_, i) => attempts[i] > 0) };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { status: 'NOT_FOUND', retrying: [] };
    throw error;
  }
}

export async function auditDatabases(urls: DatabaseUrls, options: AuditOptions = {}): Promise<AuditReport> {
  const retryThreshold = options.retryThreshold ?? 5;
  const dbs = {
    orders: connectOrdersDb(urls.orders),
    inventory: connectInventoryDb(urls.inventory),
    payments: connectPaymentsDb(urls.payments),
    shipping: connectShippingDb(urls.shipping),
  };
  try {
    // First, so that it waits for the event path to settle before anything is compared.
    const eventChecks = options.events ? await auditEvents({ databaseUrls: urls, ...options.events }) : [];
    const [orders, reservations, products, payments, customers, shipments] = await Promise.all([
      dbs.orders.order.findMany({ select: { id: true, status: true, totalCents: true, customerId: true, attention: true } }),
      dbs.inventory.reservation.findMany({ include: { lines: true } }),
      dbs.inventory.product.findMany(),
      dbs.payments.payment.findMany(),
      dbs.payments.customer.findMany(),
      dbs.shipping.shipment.findMany(),
    ]);
    const reservationOf = new Map(reservations.map((r) => [r.orderId, r]));
    const paymentOf = new Map(payments.map((p) => [p.orderId, p]));
    const shipmentOf = new Map(shipments.map((s) => [s.orderId, s]));
    const orderOf = new Map(orders.map((o) => [o.id, o]));

    const done = new Check('completed orders: stock consumed, payment captured for the total, shipment dispatched');
    const undone = new Check('rejected/cancelled orders: no live reservation, payment or shipment');
    for (const order of orders) {
      const reservation = reservationOf.get(order.id);
      const payment = paymentOf.get(order.id);
      const shipment = shipmentOf.get(order.id);
      if (order.status === 'COMPLETED') {
        done.expect(
          reservation?.status === 'CONSUMED' &&
            payment?.status === 'CAPTURED' &&
            payment.amountCents === order.totalCents &&
            shipment?.status === 'DISPATCHED',
          () => `${order.id}: reservation ${reservation?.status ?? 'none'}, payment ${payment?.status ?? 'none'} ${payment?.amountCents ?? ''}/${order.totalCents}, shipment ${shipment?.status ?? 'none'}`,
        );
      } else if (order.status === 'REJECTED' || order.status === 'CANCELLED') {
        undone.expect(
          (!reservation || reservation.status === 'RELEASED') &&
            (!payment || payment.status === 'VOIDED' || payment.status === 'REFUNDED') &&
            (!shipment || shipment.status === 'CANCELLED'),
          () => `${order.id} (${order.status}): reservation ${reservation?.status ?? 'none'}, payment ${payment?.status ?? 'none'}, shipment ${shipment?.status ?? 'none'}`,
        );
      }
    }

    const orphans = new Check('no live reservation, payment or shipment without its order');
    for (const r of reservations) if (r.status !== 'RELEASED') orphans.expect(orderOf.has(r.orderId), () => `reservation ${r.orderId} (${r.status}) has no order`);
    for (const p of payments) if (p.status === 'AUTHORIZED' || p.status === 'CAPTURED') orphans.expect(orderOf.has(p.orderId), () => `payment ${p.orderId} (${p.status}) has no order`);
    for (const s of shipments) if (s.status !== 'CANCELLED') orphans.expect(orderOf.has(s.orderId), () => `shipment ${s.orderId} (${s.status}) has no order`);

    const stock = new Check('stock: on hand + reserved + shipped = received, per SKU');
    const shippedUnits = new Check('units consumed by reservations = units in dispatched shipments, per SKU');
    const heldBy = (sku: string, status: string) =>
      sumBy(reservations.filter((r) => r.status === status), (r) => sumBy(r.lines.filter((l) => l.sku === sku), (l) => l.quantity));
    const dispatchedLines = shipments
      .filter((s) => s.status === 'DISPATCHED')
      .flatMap((s) => (Array.isArray(s.lines) ? (s.lines as { sku: string; quantity: number }[]) : []));
    for (const product of products) {
      const reserved = heldBy(product.sku, 'RESERVED');
      const consumed = heldBy(product.sku, 'CONSUMED');
      stock.expect(
        product.onHand + reserved + consumed === product.received,
        () => `${product.sku}: on hand ${product.onHand} + reserved ${reserved} + shipped ${consumed} ≠ received ${product.received}`,
      );
      const dispatched = sumBy(dispatchedLines.filter((l) => l.sku === product.sku), (l) => l.quantity);
      shippedUnits.expect(consumed === dispatched, () => `${product.sku}: ${consumed} units consumed, ${dispatched} dispatched`);
    }

    const credit = new Check('credit used = authorized + captured payments, per customer');
    const earned = new Check('captured payments = totals of completed orders, per customer');
    for (const customer of customers) {
      const own = payments.filter((p) => p.customerId === customer.id);
      const held = sumBy(own.filter((p) => p.status === 'AUTHORIZED' || p.status === 'CAPTURED'), (p) => p.amountCents);
      credit.expect(customer.creditUsedCents === held, () => `${customer.id}: credit used ${customer.creditUsedCents}, payments hold ${held}`);
      const captured = sumBy(own.filter((p) => p.status === 'CAPTURED'), (p) => p.amountCents);
      const completed = sumBy(orders.filter((o) => o.customerId === customer.id && o.status === 'COMPLETED'), (o) => o.totalCents);
      earned.expect(captured === completed, () => `${customer.id}: captured ${captured}, completed orders total ${completed}`);
    }

    // Orders that are not closed: in flight only if their saga is running and not stuck.
    const open = orders.filter((o) => o.status === 'PENDING' || o.status === 'NEEDS_ATTENTION');
    const alive = new Check('orders not closed have a running saga (not closed, failed, terminated or unknown)');
    const attended = new Check('no saga waits for an operator (NEEDS_ATTENTION)');
    const moving = new Check(`no running saga has retried a step more than ${retryThreshold} times`);
    const inFlight = new Set<string>();
    for (const order of open) {
      const attention = order.attention as { phase?: string; step?: string; error?: string } | null;
      attended.expect(order.status !== 'NEEDS_ATTENTION', () => `${order.id}: ${attention?.phase} step ${attention?.step} failed: ${attention?.error}`);
      if (!options.temporal) {
        inFlight.add(order.id);
        continue;
      }
      const workflow = await workflowOf(options.temporal, order.id);
      alive.expect(workflow.status === 'RUNNING', () => `${order.id} is ${order.status} but its workflow is ${workflow.status}`);
      if (workflow.status !== 'RUNNING') continue;
      inFlight.add(order.id);
      const stuck = workflow.retrying.filter((line) => Number(/attempt (\d+)/.exec(line)?.[1] ?? 0) > retryThreshold);
      moving.expect(stuck.length === 0, () => `${order.id}: ${stuck.join('; ')}`);
    }

    const withProvider: Check[] = [];
    if (options.provider) {
      const provider = new Check('payment provider records agree with the payments database');
      const authorizations = await listAllAuthorizations(options.provider);
      const mismatches = reconcilePayments(authorizations, payments, { inFlightOrderIds: inFlight });
      // Checked: every payment reference either side knows; each mismatch is one violation among them.
      const references = new Set([...authorizations.map((a) => a.providerRef), ...payments.map((p) => p.providerRef)]);
      for (let agreeing = references.size - mismatches.length; agreeing > 0; agreeing--) provider.expect(true, () => '');
      for (const mismatch of mismatches) provider.expect(false, () => mismatch);
      withProvider.push(provider);
    }

    const checks = [...[done, undone, orphans, alive, attended, moving, stock, shippedUnits, credit, earned, ...withProvider].map((check) => check.done()), ...eventChecks];
    const count = (status: string) => orders.filter((o) => o.status === status).length;
    return {
      orders: {
        total: orders.length,
        completed: count('COMPLETED'),
        rejected: count('REJECTED'),
        cancelled: count('CANCELLED'),
        inFlight: inFlight.size,
        needsAttention: count('NEEDS_ATTENTION'),
      },
      checks,
      violations: sumBy(checks, (check) => check.violations),
    };
  } finally {
    await Promise.all(Object.values(dbs).map((db) => db.$disconnect()));
  }
}

/** The report as the table `npm run audit` prints. */
export function formatReport(report: AuditReport): string {
  const width = Math.max(...report.checks.map((check) => check.name.length));
  const lines = [
    `orders: ${report.orders.total} (completed ${report.orders.completed}, rejected ${report.orders.rejected}, cancelled ${report.orders.cancelled}, ` +
      `in flight ${report.orders.inFlight}, needing attention ${report.orders.needsAttention})`,
    '',
    `${'check'.padEnd(width)}  checked  violations`,
  ];
  for (const check of report.checks) {
    lines.push(`${check.name.padEnd(width)}  ${String(check.checked).padStart(7)}  ${String(check.violations).padStart(10)}`);
    for (const example of check.examples) lines.push(`    ✗ ${example}`);
  }
  lines.push('', report.violations === 0 ? 'OK: no invariant is violated' : `FAILED: ${report.violations} violation(s)`);
  return lines.join('\n');
}
