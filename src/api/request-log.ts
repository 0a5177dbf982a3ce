/**
 * One log line per HTTP request, in pino-http's shape (`req`, `res`, `responseTime` in ms,
 * "request completed" / "request aborted"), at the level `logging.requests` names ("silent": none).
 * No headers (they carry tokens), no bodies (PHI). `req.url` is the full URL, which carries patient
 * ids: the logger's redaction masks it unless `logging.unmask` is set; `req.route` is the route it
 * matched, which identifies no one.
 */
import { performance } from "node:perf_hooks";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { LogLevel } from "../ops/config.js";
import type { Logger } from "../ops/logging.js";

const ROUTES: [RegExp, string][] = [
  [/^\/v1\/gateway(\/|$|\?)/, "/v1/gateway/{fhirPath}"],
  [/^\/v1\/data(\/|$|\?)/, "/v1/data/{path}"],
  [/^\/v1\/(decision|filter)(\?|$)/, ""],
  [/^\/(health|ready|status|metrics|openapi\.yaml)(\?|$)/, ""],
];

export function requestLogger(logger: Logger, level: LogLevel): RequestHandler {
  if (level === "silent") return (_req, _res, next) => next();
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.once("close", () => {
      const decisionId = res.getHeader("X-Decision-Id");
      logger[level](
        {
          req: {
            method: req.method,
            url: req.originalUrl,
            route: routeOf(req.originalUrl),
            remoteAddress: req.socket.remoteAddress,
            remotePort: req.socket.remotePort,
          },
          res: { statusCode: res.statusCode },
          responseTime: Math.round((performance.now() - started) * 1000) / 1000,
          ...(typeof decisionId === "string" ? { decision_id: decisionId } : {}),
        },
        res.writableFinished ? "request completed" : "request aborted",
      );
    });
    next();
  };
}

/** The route a URL matched, without anything that identifies a patient. */
function routeOf(url: string): string {
  for (const [pattern, route] of ROUTES) {
    if (pattern.test(url)) return route || url.split("?", 1)[0]!;
  }
  return "(no route)";
}
