/**
 * The sidecar's HTTP application: routes, probes, status, metrics. Each API lives in its own module
 * (decision-api.ts, data-api.ts); this file only wires them into Express. Express 5 forwards a
 * rejected handler promise to the error handler, so handlers are plain async functions.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { describeError } from "../core/errors.js";
import { PACKAGE_ROOT } from "../ops/default-config.js";
import { HttpError, sendError, toHttpError, type ApiContext, type AppContext } from "./context.js";
import { handleData } from "./data-api.js";
import { handleDecision } from "./decision-api.js";
import { sendErrorOutcome, wantsOutcomeBody } from "./outcome-body.js";
import { PARTIAL_BODY_HEADER } from "./gateway-request.js";
import { handleHealth } from "./health.js";
import { TimeoutLimiter } from "./rate-limit.js";
import { requestLogger } from "./request-log.js";

export type { AppContext } from "./context.js";

export function createApp(appContext: AppContext): express.Express {
  const ctx: ApiContext = {
    ...appContext,
    limiter: new TimeoutLimiter(appContext.config.limits.policyTimeouts),
  };
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");

  app.use(requestLogger(ctx.logger, ctx.config.logging.requests));
  app.use((req, res, next) => {
    ctx.metrics.inFlight.inc();
    res.on("close", () => ctx.metrics.inFlight.dec());
    if (ctx.shuttingDown()) res.setHeader("Connection", "close");
    next();
  });
  const json = express.json({
    limit: ctx.config.server.bodyLimitBytes,
    type: ["application/json", "application/*+json"],
    strict: false,
  });

  // A POST _search form body is read as text: the policy parses it like a query string.
  const form = express.text({
    limit: ctx.config.server.bodyLimitBytes,
    type: "application/x-www-form-urlencoded",
  });
  // A body the gateway cut short is not read at all (the decision refuses it).
  const gatewayBody = (req: Request, res: Response, next: NextFunction) => {
    if (req.get(PARTIAL_BODY_HEADER)?.trim().toLowerCase() === "true") return next();
    json(req, res, (err?: unknown) => (err ? next(err) : form(req, res, next)));
  };
  // OPA reads the Data API's body as JSON whatever its Content-Type.
  const anyText = express.text({ limit: ctx.config.server.bodyLimitBytes, type: () => true });

  app.post("/v1/decision", json, (req, res) => handleDecision(ctx, req, res, "decision"));
  app.post("/v1/filter", json, (req, res) => handleDecision(ctx, req, res, "filter"));
  app.all("/v1/gateway{/*path}", gatewayBody, (req, res) => handleDecision(ctx, req, res, "gateway"));
  app.get("/v1/data{/*path}", (req, res) => handleData(ctx, req, res));
  app.post("/v1/data{/*path}", anyText, (req, res) => handleData(ctx, req, res));

  app.get("/health", (req, res) => handleHealth(ctx, req, res));
  app.get("/ready", (_req, res) => {
    const ready = ctx.evaluator.revision() !== undefined && !ctx.shuttingDown();
    res.status(ready ? 200 : 503).json({
      ready,
      ...(ready ? {} : { reason: ctx.shuttingDown() ? "shutting down" : "no policy bundle is active yet" }),
    });
  });
  app.get("/status", (_req, res) => {
    const b = ctx.bundleStatus();
    res.json({
      service: "smart-authz",
      version: ctx.version,
      ready: b.revision !== undefined && !ctx.shuttingDown(),
      bundle: {
        source: b.source,
        revision: b.revision ?? null,
        loaded_at: b.loadedAt ?? null,
        etag: b.etag ?? null,
        last_error: b.lastError ?? null,
        last_error_at: b.lastErrorAt ?? null,
        activations: b.activations,
        failures: b.failures,
      },
      data: Object.fromEntries(
        Object.entries(ctx.dataStatus?.() ?? {}).map(([name, d]) => [
          name,
          {
            source: d.source,
            loaded_at: d.loadedAt ?? null,
            sha256: d.digest ?? null,
            last_error: d.lastError ?? null,
            last_error_at: d.lastErrorAt ?? null,
            activations: d.activations,
            failures: d.failures,
          },
        ]),
      ),
      tokens: {
        issuers: ctx.config.tokens.issuers.map((i) => ({
          issuer: i.issuer,
          jwks: i.jwks.kind,
          algorithms: i.algorithms,
        })),
        trust_forwarded_claims: ctx.config.tokens.trustForwardedClaims,
      },
      demo_issuer_active: ctx.config.demo,
    });
  });
  app.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", ctx.metrics.registry.contentType);
    res.send(await ctx.metrics.registry.metrics());
  });
  app.get("/openapi.yaml", (_req, res) => {
    try {
      res.type("application/yaml").send(readFileSync(join(PACKAGE_ROOT, "openapi.yaml"), "utf8"));
    } catch {
      sendError(
        res,
        new HttpError(404, "resource_not_found", "openapi.yaml is not installed with this package"),
      );
    }
  });

  app.use((req, res) => {
    ctx.metrics.errors.inc({ kind: "not_found" });
    sendError(res, new HttpError(404, "resource_not_found", `no route for ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const httpError = toHttpError(err);
    ctx.metrics.errors.inc({ kind: httpError.status >= 500 ? "internal" : "bad_request" });
    if (httpError.status >= 500) ctx.logger.error({ err: describeError(err) }, "request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    if (wantsOutcomeBody(req)) sendErrorOutcome(res, httpError);
    else sendError(res, httpError);
  });
  return app;
}
