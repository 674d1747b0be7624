// The API's request log: one line per answered request, named by route as the metrics are (src/observability/http.ts),
// with the order the request was about.
import type { RequestHandler } from 'express';
import { routeTemplate } from './http';
import type { Logger } from './logging';

/** Routes that scrapers and health checks call every few seconds: debug, so that they do not drown the rest. */
const ROUTINE_ROUTES = new Set(['/health', '/metrics']);

/**
 * Logs each request once answered: `method`, `route` (the template, e.g. `/orders/:orderId`), `status`,
 * `durationMs`, `orderId` when the route names an order or the request placed one (`res.locals.orderId`, set by the
 * app), and `errorCode` of an error answer (`res.locals.errorCode`, set by the error handler). A 5xx is a warning;
 * the error behind a 500 has a line of its own, with its stack (src/api/errors.ts).
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      // After the answer, in an event listener: nothing here may throw (it would take the process down).
      try {
        const route = routeTemplate(req);
        const status = res.statusCode;
        const level = status >= 500 ? 'warn' : ROUTINE_ROUTES.has(route) ? 'debug' : 'info';
        if (!logger.isLevelEnabled(level)) return;
        const durationMs = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
        logger[level]({ method: req.method, route, status, durationMs, orderId: res.locals.orderId, errorCode: res.locals.errorCode }, `${req.method} ${route} ${status}`);
      } catch {
        // not logged
      }
    });
    next();
  };
}
