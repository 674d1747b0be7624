// The orders service's internal read API: an order as its snapshot row records it, and as its event stream.
// Internal (no authentication, an internal port): the record keeps requestFingerprint and clientId, which the
// public API needs to check a replayed Idempotency-Key and who may see the order.
import type { Router } from 'express';
import { notFound, readRouter } from '../read-api-support';
import type { OrdersDb } from './db';
import { findOrder, readOrderHistory } from './read-model';

export function ordersReadApi(db: OrdersDb): Router {
  const api = readRouter('orders', db);

  api.get('/orders/:orderId', async (orderId) => {
    const record = await findOrder(db, orderId);
    if (!record) throw notFound(`order ${orderId} not found`);
    return record;
  });

  // 404 while the stream is empty: the saga records its order only once it is priced.
  api.get('/orders/:orderId/events', async (orderId) => {
    const history = await readOrderHistory(db, orderId);
    if (!history) throw notFound(`order ${orderId} has no events`);
    return { orderId, version: history.events.length, events: history.events, state: history.state };
  });

  return api.router;
}
