// Runs the HTTP API against the service databases and a Temporal server.
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Config, DatabaseUrls } from '../config';
import { connectInventoryDb } from '../activities/inventory/db';
import { connectOrdersDb } from '../activities/orders/db';
import { connectPaymentsDb } from '../activities/payments/db';
import { connectShippingDb } from '../activities/shipping/db';
import { createApp } from './app';
import { OrderWorkflows } from './order-workflows';

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(options: {
  config: Config;
  databaseUrls: DatabaseUrls;
  temporalAddress: string;
  log?: (line: string) => void;
}): Promise<ApiServer> {
  const { config } = options;
  // Lazy: the API starts, and answers 503, while Temporal is down, and recovers when it is back.
  const connection = Connection.lazy({ address: options.temporalAddress, connectTimeout: '3s' });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const databases = {
    orders: connectOrdersDb(options.databaseUrls.orders),
    inventory: connectInventoryDb(options.databaseUrls.inventory),
    payments: connectPaymentsDb(options.databaseUrls.payments),
    shipping: connectShippingDb(options.databaseUrls.shipping),
  };
  const app = createApp({ workflows: new OrderWorkflows(client, config.saga), databases, config, log: options.log });
  const server = app.listen(config.api.port, config.api.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host}:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all([connection.close(), ...Object.values(databases).map((db) => db.$disconnect())]);
    },
  };
}
