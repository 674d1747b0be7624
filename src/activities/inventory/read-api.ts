// The inventory service's internal read API: the stock reserved for an order. A RELEASED reservation without
// lines is a tombstone (the release came before the reservation) and is answered as it is.
import type { Router } from 'express';
import { iso, notFound, readRouter } from '../read-api-support';
import type { InventoryDb } from './db';

export function inventoryReadApi(db: InventoryDb): Router {
  const api = readRouter('inventory', db);

  api.get('/reservations/:orderId', async (orderId) => {
    const reservation = await db.reservation.findUnique({ where: { orderId }, include: { lines: true } });
    if (!reservation) throw notFound(`no reservation for order ${orderId}`);
    // Sorted here, by code point, so the order does not depend on the database's collation.
    const lines = reservation.lines.map(({ sku, quantity }) => ({ sku, quantity })).sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    return { orderId, status: reservation.status, lines, createdAt: iso(reservation.createdAt), updatedAt: iso(reservation.updatedAt) };
  });

  return api.router;
}
