// The payments service's internal read API: an order's payment as this service records it (not the provider's
// view of it). A VOIDED payment of 0 cents is a tombstone (the void came before the authorization).
import type { Router } from 'express';
import { iso, notFound, readRouter } from '../read-api-support';
import type { PaymentsDb } from './db';

export function paymentsReadApi(db: PaymentsDb): Router {
  const api = readRouter('payments', db);

  api.get('/payments/:orderId', async (orderId) => {
    const payment = await db.payment.findUnique({ where: { orderId } });
    if (!payment) throw notFound(`no payment for order ${orderId}`);
    const { customerId, amountCents, status, providerRef } = payment;
    return { orderId, customerId, amountCents, status, providerRef, createdAt: iso(payment.createdAt), updatedAt: iso(payment.updatedAt) };
  });

  return api.router;
}
