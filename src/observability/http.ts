// GET /metrics, the API's request metrics, and its request spans.
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';
import { METRICS_CONTENT_TYPE, type ApiMetrics, type MetricsRegistry } from './metrics';
import { TRACER_NAME, tracingEnabled } from './tracing';

/** GET /metrics: the registry in the Prometheus text format; no API key (scrapers carry none: keep the port internal). */
export function metricsHandler(metrics: MetricsRegistry): RequestHandler {
  return async (_req, res) => {
    const body = await metrics.render();
    res.set('content-type', METRICS_CONTENT_TYPE).set('cache-control', 'no-store').send(body);
  };
}

/** Express's route layers, as far as this module reads them (express 5's router). */
interface RouteLayer {
  route?: { path: unknown; _handlesMethod?(method: string): boolean };
  matchers?: ((path: string) => unknown)[];
}

/**
 * The route template of a request, e.g. `/orders/:orderId`, never its path (one series per order would be
 * unbounded). A request answered before reaching its route (a 401 from authentication) gets the template it was
 * for; one that matches no route is `unmatched`.
 */
export function routeTemplate(req: Request): string {
  if (typeof req.route?.path === 'string') return `${req.baseUrl ?? ''}${req.route.path}`;
  const stack = (req.app as unknown as { router?: { stack?: RouteLayer[] } }).router?.stack ?? [];
  for (const layer of stack) {
    const route = layer.route;
    if (typeof route?.path !== 'string' || !route._handlesMethod?.(req.method)) continue;
    try {
      if (layer.matchers?.some((match) => match(req.path))) return route.path;
    } catch {
      // A path its parameters cannot be decoded from (bad percent-encoding): no template.
      return 'unmatched';
    }
  }
  return 'unmatched';
}

/**
 * Counts and times every request (order_saga_http_requests_total, order_saga_http_request_duration_seconds), and
 * counts the orders POST /orders accepted (order_saga_orders_started_total): answered 200 or 202, as a new saga, or
 * as an idempotent replay when the answer carries `Idempotent-Replayed: true` (the API's contract for a repeated
 * Idempotency-Key, whether its saga still runs or has closed).
 */
export function httpMetrics(api: ApiMetrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      // After the answer, in an event listener: nothing here may throw (it would take the process down).
      let route = 'unmatched';
      try {
        route = routeTemplate(req);
      } catch {
        // counted as unmatched
      }
      const labels = { method: req.method, route, status: String(res.statusCode) };
      api.httpRequests.inc(labels);
      api.httpDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      if (req.method === 'POST' && route === '/orders' && (res.statusCode === 200 || res.statusCode === 202)) {
        api.ordersStarted.inc({ start: res.get('idempotent-replayed') === 'true' ? 'idempotent_replay' : 'new' });
      }
    });
    next();
  };
}

/**
 * One server span per request while tracing is on (src/observability/tracing.ts), named `<METHOD> <route template>`
 * once answered (e.g. `POST /orders`, never the path with its ids), child of the caller's `traceparent` if it sent one.
 * Everything the request does runs in its context: the Temporal client's StartWorkflow span is its child, and so the
 * whole saga. A 5xx answer marks it failed. With tracing off (and for GET /metrics) it only calls next().
 */
export function httpTracing(): RequestHandler {
  return (req, res, next) => {
    // Prometheus's scrapes are no requests anyone follows.
    if (!tracingEnabled() || req.path === '/metrics') return next();
    const parent = propagation.extract(context.active(), req.headers);
    const span = trace.getTracer(TRACER_NAME).startSpan(
      req.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path, 'url.scheme': req.protocol } },
      parent,
    );
    res.once('close', () => {
      // After the answer, in an event listener: nothing here may throw.
      let route = 'unmatched';
      try {
        route = routeTemplate(req);
      } catch {
        // named unmatched
      }
      span.updateName(`${req.method} ${route}`);
      span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      if (!res.writableFinished) span.setAttribute('http.aborted', true);
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}
