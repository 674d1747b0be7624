// The API's way to the services' own data: their read APIs (src/activities/<service>/read-api.ts), never their
// databases. Each call has a deadline; a service that does not answer in time, cannot be reached or says its
// database is down is a ServiceUnavailable naming it, so that the API can answer 503 for a read that needs it,
// or name the missing part of a composed answer (GET /orders/:id/details).
import type { ServiceName } from '../config';
import type { OrderHistory, OrderRecord } from '../activities/orders/read-model';
import type { OutboxStatus } from '../events/relay-status';

export interface ReservationRead {
  orderId: string;
  status: string;
  lines: { sku: string; quantity: number }[];
  createdAt: string;
  updatedAt: string;
}

export interface PaymentRead {
  orderId: string;
  customerId: string;
  amountCents: number;
  status: string;
  providerRef: string;
  createdAt: string;
  updatedAt: string;
}

export interface ShipmentRead {
  orderId: string;
  status: string;
  lines: unknown;
  trackingCode: string | null;
  createdAt: string;
  updatedAt: string;
  dispatchedAt: string | null;
}

/** A service did not answer a read: unreachable, too slow, or its database is down. Nothing was changed. */
export class ServiceUnavailable extends Error {
  constructor(
    readonly service: ServiceName,
    reason: string,
  ) {
    super(`the ${service} service did not answer: ${reason}`);
    this.name = 'ServiceUnavailable';
  }
}

export interface ServiceReads {
  /** undefined: the orders service does not know the order. */
  order(orderId: string): Promise<OrderRecord | undefined>;
  orderHistory(orderId: string): Promise<OrderHistory | undefined>;
  reservation(orderId: string): Promise<ReservationRead | undefined>;
  payment(orderId: string): Promise<PaymentRead | undefined>;
  shipment(orderId: string): Promise<ShipmentRead | undefined>;
  /** Resolves, with its outbox's status, when the service and its database answer; rejects with ServiceUnavailable otherwise. */
  health(service: ServiceName): Promise<{ outbox?: OutboxStatus }>;
}

/** The default deadline of one call to a service's read API. */
export const SERVICE_READ_TIMEOUT_MS = 2_000;

export function httpServiceReads(urls: Record<ServiceName, string>, timeoutMs = SERVICE_READ_TIMEOUT_MS): ServiceReads {
  async function get<T>(service: ServiceName, path: string): Promise<T | undefined> {
    let response: Response;
    try {
      response = await fetch(`${urls[service].replace(/\/$/, '')}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const reason = (error as Error)?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `unreachable (${(error as Error)?.message ?? error})`;
      throw new ServiceUnavailable(service, reason);
    }
    const body = (await response.json().catch(() => undefined)) as (T & { error?: string | { code?: string; message?: string } }) | undefined;
    // Only the service's own "not found" means the thing is unknown: a 404 from anything else (a proxy, a process
    // that does not serve this service) is a service not answering.
    if (response.status === 404 && typeof body?.error === 'object' && body.error.code === 'not_found') return undefined;
    if (!response.ok || body === undefined) {
      const said = typeof body?.error === 'string' ? body.error : body?.error?.message;
      throw new ServiceUnavailable(service, `answered ${response.status}${said ? `: ${said}` : ''}`);
    }
    return body;
  }
  const id = (orderId: string) => encodeURIComponent(orderId);
  return {
    order: (orderId) => get<OrderRecord>('orders', `/orders/${id(orderId)}`),
    orderHistory: (orderId) => get<OrderHistory>('orders', `/orders/${id(orderId)}/events`),
    reservation: (orderId) => get<ReservationRead>('inventory', `/reservations/${id(orderId)}`),
    payment: (orderId) => get<PaymentRead>('payments', `/payments/${id(orderId)}`),
    shipment: (orderId) => get<ShipmentRead>('shipping', `/shipments/${id(orderId)}`),
    async health(service) {
      const answer = await get<{ outbox?: OutboxStatus }>(service, `/health/${service}`);
      if (answer === undefined) throw new ServiceUnavailable(service, 'it has no health endpoint');
      return answer;
    },
  };
}
