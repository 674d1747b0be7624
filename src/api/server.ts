// Runs the HTTP API against Temporal, the query database, NATS and the services' read APIs (no service database).
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Config, ServiceName } from '../config';
import { connectNats } from '../events/nats-connection';
import type { Logger } from '../observability/logging';
import { clientTracingInterceptors } from '../observability/temporal-tracing';
import type { Tracing } from '../observability/tracing';
import { connectQueryDb } from '../query/db';
import { temporalConnectionOptions } from '../temporal-connection';
import { Admission, temporalBacklogProbe } from './admission';
import { createApp } from './app';
import { OrderWorkflows } from './order-workflows';
import { httpServiceReads } from './service-reads';
import { apiConnectionInterceptors } from './temporal-delivery';

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The API's Temporal connection: the configured server (TLS, API key), lazy, so that the API starts, and answers
 * 503, while Temporal is down, and recovers when it is back; with delivery tracking, so that a write that timed
 * out is known to have reached the server or not.
 */
export function apiTemporalConnection(temporal: Config['temporal'], address?: string): Connection {
  return Connection.lazy({ ...temporalConnectionOptions(temporal, address).client, connectTimeout: '3s', interceptors: apiConnectionInterceptors() });
}

export async function startApiServer(options: {
  config: Config;
  /** Each service's read API (closed orders, idempotent replays, an order's events, GET /orders/:id/details). */
  serviceUrls: Record<ServiceName, string>;
  queryDatabaseUrl: string;
  /** NATS, to tell how far the query database is behind the streams; unset: reported as unknown. */
  natsServers?: string[];
  temporalAddress: string;
  /** Deadline of each Temporal call (default 5 s). */
  rpcTimeoutMs?: number;
  /** The process's logger (src/observability/logging.ts); silent if absent. */
  logger?: Logger;
  /** The process's tracing (src/observability/tracing.ts): when on, the Temporal client's calls are spans too. */
  tracing?: Tracing;
}): Promise<ApiServer> {
  const { config } = options;
  const connection = apiTemporalConnection(config.temporal, options.temporalAddress);
  const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: { workflow: clientTracingInterceptors(options.tracing) } });
  const services = httpServiceReads(options.serviceUrls);
  const queryDb = connectQueryDb(options.queryDatabaseUrl);
  const nats: NatsConnection | undefined = options.natsServers ? await connectNats(options.natsServers, 'order-saga-api') : undefined;
  const workflows = new OrderWorkflows(client, config.saga, options.rpcTimeoutMs);
  const admission = new Admission(temporalBacklogProbe(client, config.temporal.namespace), config.api.maxBacklogAgeMs);
  const app = createApp({ workflows, services, query: { db: queryDb, nats }, config, admission, logger: options.logger });
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
      await Promise.all([connection.close(), queryDb.$disconnect(), nats?.close()]);
    },
  };
}
