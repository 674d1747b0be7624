// The API's metrics: a registry per app (src/api/app.ts mounts both handlers before authentication).
import type { NatsConnection } from '@nats-io/nats-core';
import type { RequestHandler } from 'express';
import { PROJECTOR_CONSUMERS } from '../query/projector';
import { httpMetrics, httpTracing, metricsHandler } from './http';
import { createApiMetrics, type ApiMetrics } from './metrics';

/**
 * The middleware that traces (when tracing is on), counts and times every request, and GET /metrics. With `nats`, a
 * scrape also reads how far the query views' consumers are behind their streams (what GET /orders, the catalog and
 * the order checks answer from).
 */
export function apiObservability(nats: NatsConnection | undefined): { metrics: ApiMetrics; middleware: RequestHandler; handler: RequestHandler } {
  const metrics = createApiMetrics({ nats, consumers: PROJECTOR_CONSUMERS });
  const traced = httpTracing();
  const counted = httpMetrics(metrics);
  // The span first: the rest of the request, the metrics' own listener included, runs in its context.
  const middleware: RequestHandler = (req, res, next) => traced(req, res, () => counted(req, res, next));
  return { metrics, middleware, handler: metricsHandler(metrics.metrics) };
}
