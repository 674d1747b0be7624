// The services' read APIs, served by the process that runs their workers: each service answers reads about its
// own data itself (src/activities/<service>/read-api.ts), on the database pool its activities use. A process
// hosting several services serves all their routes on one port; the public API reaches each service at its
// *_SERVICE_URL (src/api/service-reads.ts).
//
// Every worker process also serves GET /metrics here (Prometheus, no key: src/observability/metrics.ts), a process
// hosting no service (the saga's workflows alone) with that route only.
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { ServiceName } from '../config';
import type { InventoryDb } from '../activities/inventory/db';
import { inventoryReadApi } from '../activities/inventory/read-api';
import type { OrdersDb } from '../activities/orders/db';
import { ordersReadApi } from '../activities/orders/read-api';
import type { PaymentsDb } from '../activities/payments/db';
import { paymentsReadApi } from '../activities/payments/read-api';
import type { ShippingDb } from '../activities/shipping/db';
import { shippingReadApi } from '../activities/shipping/read-api';
import { metricsHandler } from '../observability/http';
import type { MetricsRegistry } from '../observability/metrics';

/** The databases of the services a process hosts. */
export interface ServiceDatabases {
  orders?: OrdersDb;
  inventory?: InventoryDb;
  payments?: PaymentsDb;
  shipping?: ShippingDb;
}

export interface ServiceApi {
  url: string;
  services: ServiceName[];
  close(): Promise<void>;
}

export async function startServiceApi({
  databases,
  host,
  port,
  metrics,
}: {
  databases: ServiceDatabases;
  host: string;
  port: number;
  /** The worker set's metrics, served on GET /metrics. */
  metrics?: MetricsRegistry;
}): Promise<ServiceApi> {
  const app = express();
  app.disable('x-powered-by');
  if (metrics) app.get('/metrics', metricsHandler(metrics));
  const services: ServiceName[] = [];
  const routers = {
    orders: databases.orders && ordersReadApi(databases.orders),
    inventory: databases.inventory && inventoryReadApi(databases.inventory),
    payments: databases.payments && paymentsReadApi(databases.payments),
    shipping: databases.shipping && shippingReadApi(databases.shipping),
  };
  for (const [service, router] of Object.entries(routers)) {
    if (!router) continue;
    app.use(router);
    services.push(service as ServiceName);
  }
  // Anything else is not a route of the services hosted here: a JSON 404 the caller does not take for "unknown".
  app.use((req, res) => {
    res.status(404).json({ error: { code: 'no_route', message: `no route for ${req.method} ${req.path} (this process serves ${services.join(', ') || 'no service'})` } });
  });
  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`,
    services,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
