// The shipping service's internal read API: an order's shipment. A CANCELLED shipment without lines is a
// tombstone (the cancellation came before the scheduling).
import type { Router } from 'express';
import { iso, notFound, readRouter } from '../read-api-support';
import type { ShippingDb } from './db';

export function shippingReadApi(db: ShippingDb): Router {
  const api = readRouter('shipping', db);

  api.get('/shipments/:orderId', async (orderId) => {
    const shipment = await db.shipment.findUnique({ where: { orderId } });
    if (!shipment) throw notFound(`no shipment for order ${orderId}`);
    const { status, lines, trackingCode } = shipment;
    return { orderId, status, lines, trackingCode, createdAt: iso(shipment.createdAt), updatedAt: iso(shipment.updatedAt), dispatchedAt: iso(shipment.dispatchedAt) };
  });

  return api.router;
}
