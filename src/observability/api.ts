// The API's metrics: a registry per app (src/api/app.ts mounts both handlers before authentication).
import type { NatsConnection } from '@nats-io/nats-core';
import type { RequestHandler } from 'express';
import { PROJECTOR_CONSUMERS } from '../query/projector';
import { httpMetrics, metricsHandler } from './http';
import { createApiMetrics, type ApiMetrics } from './metrics';

/**
 * The middleware that counts and times every request, and GET /metrics. With `nats`, a scrape also reads how far the
 * query views' consumers are behind their streams (what GET /orders, the catalog and the order checks answer from).
 */
export function apiObservability(nats: NatsConnection | undefined): { metrics: ApiMetrics; middleware: RequestHandler; handler: RequestHandler } {
  const metrics = createApiMetrics({ nats, consumers: PROJECTOR_CONSUMERS });
  return { metrics, middleware: httpMetrics(metrics), handler: metricsHandler(metrics.metrics) };
}
