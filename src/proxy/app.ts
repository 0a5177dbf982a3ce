/**
 * The enforcing proxy's HTTP front door: a FHIR R4 REST API under `proxy.base_path` that verifies
 * the SMART token, decides with the policy, and carries the decision out against the FHIR server
 * (search.ts, instance.ts, batch.ts). Only JSON is spoken: XML requests are refused (406/415), and
 * the server is asked for JSON only. `metadata` and `.well-known/smart-configuration` are public.
 * Every answer is a FHIR resource (an OperationOutcome when refused) with an X-Request-Id.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import express, { type NextFunction, type Request, type Response } from "express";
import { TokenError } from "../auth/tokens.js";
import { describeError } from "../core/errors.js";
import type { AppContext } from "../api/context.js";
import { boundsDenial, checkRequestBounds } from "../api/limits.js";
import { clientKey, rateLimitDenial, retryAfterSeconds } from "../api/rate-limit.js";
import { handleBatch } from "./batch.js";
import { denialOnStoredResource, hintNeedsStoredResource } from "./hinted-denial.js";
import { type Exchange, type ProxyRuntime, decisionRequest, upstreamFailure } from "./exchange.js";
import { handleConditional, handleCreate, handleRead, handleWrite } from "./instance.js";
import {
  classify,
  queryValues,
  serverPagingParam,
  targetOf,
  withQuery,
  withoutParams,
  type Interaction,
} from "./interaction.js";
import { ProxyError, denial, tokenRefusal, type ProxyAnswer } from "./outcome.js";
import { isObject } from "./release.js";
import { rewriteCapabilityStatement } from "./rewrite.js";
import { handlePage, handleSearch, isSearchLike } from "./search.js";
import { UpstreamError, type ClientInfo } from "./upstream.js";

const JSON_FORMATS = new Set(["json", "application/json", "application/fhir+json", "application/json+fhir"]);
const JSON_BODY = /^application\/(fhir\+json|json|json\+fhir|json-patch\+json)$/;
const XML_BODY = /(^|\/|\+)xml$/;

export function createProxyApp(ctx: AppContext, rt: ProxyRuntime): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");
  app.use((req, res, next) => {
    ctx.metrics.inFlight.inc();
    res.on("close", () => ctx.metrics.inFlight.dec());
    if (ctx.shuttingDown()) res.setHeader("Connection", "close");
    next();
  });
  app.use(express.raw({ type: () => true, limit: rt.config.bodyLimitBytes }));
  app.use(async (req, res) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    res.setHeader("X-Request-Id", requestId);
    const seen: { interaction: string } = { interaction: "unknown" };
    let answer: ProxyAnswer;
    try {
      answer = await handle(ctx, rt, req, requestId, seen);
    } catch (err) {
      answer = failure(ctx, rt, err, requestId);
    }
    send(res, req.method, answer);
    ctx.metrics.proxyRequests.inc({
      interaction: seen.interaction,
      status: `${Math.floor(answer.status / 100)}xx`,
    });
    // One line per request; never the URL, the token or FHIR content (they identify patients).
    rt.logger.info({
      msg: "proxy request",
      request_id: requestId,
      method: req.method,
      interaction: seen.interaction,
      status: answer.status,
      latency_ms: Math.round((performance.now() - started) * 1000) / 1000,
    });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: unknown; status?: unknown };
    const answer =
      e?.type === "entity.too.large"
        ? new ProxyError(
            413,
            "too-costly",
            `the request body is over the ${rt.config.bodyLimitBytes}-byte limit`,
          ).answer()
        : typeof e?.status === "number" && e.status >= 400 && e.status < 500
          ? new ProxyError(e.status, "invalid", "the request could not be read").answer()
          : failure(ctx, rt, err, "-");
    if (res.headersSent) {
      res.end();
      return;
    }
    send(res, req.method, answer);
  });
  return app;
}

function send(res: Response, method: string, answer: ProxyAnswer): void {
  for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
  res.status(answer.status);
  if (answer.body === undefined || answer.status === 304 || answer.status === 204) {
    res.end();
    return;
  }
  const text = JSON.stringify(answer.body);
  res.setHeader("Content-Type", "application/fhir+json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(method === "HEAD" ? undefined : text);
}

function failure(ctx: AppContext, rt: ProxyRuntime, err: unknown, requestId: string): ProxyAnswer {
  if (err instanceof ProxyError) return err.answer();
  if (err instanceof UpstreamError) {
    ctx.metrics.errors.inc({ kind: "upstream" });
    rt.logger.warn(
      { request_id: requestId, upstream_error: err.kind, error: err.message },
      "FHIR server call failed",
    );
    return new ProxyError(err.status, err.kind === "timeout" ? "timeout" : "exception", err.message).answer();
  }
  ctx.metrics.errors.inc({ kind: "internal" });
  rt.logger.error({ request_id: requestId, err: describeError(err) }, "proxy request failed");
  return new ProxyError(500, "exception", "internal error").answer();
}

function requestIdOf(req: Request): string {
  const given = req.get("x-request-id");
  return given !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
}

async function handle(
  ctx: AppContext,
  rt: ProxyRuntime,
  req: Request,
  requestId: string,
  seen: { interaction: string },
): Promise<ProxyAnswer> {
  const target = targetOf(req.originalUrl, rt.config.basePath);
  if (target === undefined) throw new ProxyError(404, "not-found", "not a FHIR endpoint of this proxy");
  if ("error" in target) throw new ProxyError(400, "invalid", target.error);
  const method = req.method.toUpperCase();
  if (!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].includes(method))
    throw new ProxyError(405, "not-supported", `${method} is not a FHIR interaction`);
  const interaction = classify(method, target.segments, target.query !== "");
  seen.interaction = interaction.kind;
  checkFormats(req, target.query);
  refuseServerPaging(target.query);
  const client = clientInfo(rt, req, requestId);

  if (interaction.kind === "capabilities") return capabilities(rt, interaction.which, target.query, client);

  const { body, contentType } = parseBody(req, interaction);
  if (typeof body === "string") {
    refuseServerPaging(body);
    refuseNonJsonFormat(body);
  }
  const verified = await verifyToken(ctx, req);
  if ("answer" in verified) return verified.answer;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  const ex: Exchange = {
    method,
    target,
    interaction,
    claims: verified.claims,
    token: verified.token,
    headers,
    body,
    rawBody: Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined,
    contentType,
    client,
  };
  // A client whose requests keep running into the policy's deadline waits (limits.policy_timeouts).
  const waitMs = rt.decider.limiter.retryAfterMs(clientKey(ex.claims, undefined));
  if (waitMs > 0) {
    ctx.metrics.rateLimited.inc({ endpoint: "proxy" });
    return {
      ...denial(rateLimitDenial(waitMs)),
      headers: { "retry-after": String(retryAfterSeconds(waitMs)) },
    };
  }
  if (interaction.kind === "page") return handlePage(rt, ex);

  const request = decisionRequest(ex);
  // Requests beyond the bounds the policy is evaluated within are refused before it runs (limits.*).
  const violation = checkRequestBounds(request, ctx.config.limits);
  if (violation) return denial(boundsDenial(violation));
  const decision = await rt.decider.decide(ex.claims, request, { requestId: ex.client.requestId });
  if (decision.decision === "deny") {
    if (hintNeedsStoredResource(decision, interaction)) return denialOnStoredResource(rt, ex, interaction);
    return denial(decision);
  }
  if (decision.decision === "filter" && rt.config.narrowing.strategy === "auto")
    await rt.capabilities.ensureKnown();
  return dispatch(rt, ex, interaction, decision);
}

function dispatch(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Interaction,
  decision: Parameters<typeof handleBatch>[2],
): Promise<ProxyAnswer> {
  switch (i.kind) {
    case "read":
      return handleRead(rt, ex, i, decision);
    case "update":
    case "patch":
    case "delete":
      return handleWrite(rt, ex, i, decision);
    case "create":
      return handleCreate(rt, ex, i, decision);
    case "conditional":
      return handleConditional(rt, ex, i, decision);
    case "batch":
      return handleBatch(rt, ex, decision);
    default:
      if (isSearchLike(i)) return handleSearch(rt, ex, i, decision);
      throw new ProxyError(
        400,
        "not-supported",
        i.kind === "unsupported" ? i.message : "not supported by the proxy",
      );
  }
}

function refuseServerPaging(query: string): void {
  const name = serverPagingParam(query);
  if (name !== undefined)
    throw new ProxyError(400, "invalid", `${name} is not accepted: follow the paging links the proxy gives`);
}

/** JSON only: `_format` and `Accept` must allow JSON (406), bodies must be JSON (415). */
function checkFormats(req: Request, query: string): void {
  refuseNonJsonFormat(query);
  const accept = req.get("accept");
  if (accept !== undefined && accept.trim() !== "") refuseNonJsonAccept(accept);
}

/** `_format` in a query or a form body must name JSON (406). */
function refuseNonJsonFormat(query: string): void {
  for (const f of queryValues(query, "_format")) {
    if (!JSON_FORMATS.has(f.trim().toLowerCase())) {
      throw new ProxyError(
        406,
        "not-supported",
        `_format=${f} is not supported: this proxy speaks FHIR JSON only`,
      );
    }
  }
}

/** An Accept header must allow a JSON type (406). */
function refuseNonJsonAccept(accept: string): void {
  const ranges = accept.split(",").map((r) => {
    const [type = "", ...params] = r.split(";").map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith("q="));
    return { type, q: q ? Number(q.slice(2)) : 1 };
  });
  const json = ranges.some(
    (r) =>
      r.q > 0 &&
      (r.type === "*/*" ||
        r.type === "application/*" ||
        JSON_FORMATS.has(r.type) ||
        /^application\/[a-z0-9.+-]*\+json$/.test(r.type)),
  );
  if (!json) {
    throw new ProxyError(
      406,
      "not-supported",
      `Accept: ${accept} is not supported: this proxy answers application/fhir+json only`,
    );
  }
}

function parseBody(req: Request, i: Interaction): { body: unknown; contentType: string | undefined } {
  const raw = Buffer.isBuffer(req.body) ? req.body : undefined;
  if (raw === undefined || raw.length === 0) return { body: undefined, contentType: undefined };
  const contentType = (req.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (contentType === "application/x-www-form-urlencoded") {
    if (i.kind !== "search" || !i.post)
      throw new ProxyError(
        415,
        "not-supported",
        "form-encoded bodies are accepted only for POST [type]/_search",
      );
    const text = raw.toString("utf8");
    if (text.includes("\uFFFD")) throw new ProxyError(400, "invalid", "the form body is not UTF-8");
    return { body: text, contentType };
  }
  if (XML_BODY.test(contentType)) {
    throw new ProxyError(
      415,
      "not-supported",
      `${contentType} is not supported: send FHIR JSON (application/fhir+json)`,
    );
  }
  if (!JSON_BODY.test(contentType)) {
    throw new ProxyError(
      415,
      "not-supported",
      `Content-Type ${JSON.stringify(contentType || "(none)")} is not supported: send application/fhir+json`,
    );
  }
  try {
    return { body: JSON.parse(raw.toString("utf8")) as unknown, contentType };
  } catch (err) {
    throw new ProxyError(400, "invalid", `the request body is not valid JSON: ${describeError(err)}`);
  }
}

async function verifyToken(
  ctx: AppContext,
  req: Request,
): Promise<{ claims: Record<string, unknown>; token: string } | { answer: ProxyAnswer }> {
  const header = req.get("authorization");
  let token: string | undefined;
  if (header !== undefined) {
    const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
    if (!m)
      return { answer: tokenRefusal("token-malformed", "the Authorization header is not a Bearer token") };
    token = m[1];
  }
  try {
    const verified = await ctx.tokens.verify(token);
    return { claims: verified.claims, token: token! };
  } catch (err) {
    const e = err instanceof TokenError ? err : new TokenError("token-signature-invalid", describeError(err));
    ctx.metrics.tokenFailures.inc({ reason: e.reason });
    ctx.metrics.decisions.inc({ endpoint: "proxy", outcome: "deny" });
    return { answer: tokenRefusal(e.reason, e.message) };
  }
}

function clientInfo(rt: ProxyRuntime, req: Request, requestId: string): ClientInfo {
  const pub = new URL(rt.urls.publicBase);
  const prior = req.get("x-forwarded-for");
  const remote = req.socket.remoteAddress ?? "";
  return {
    requestId,
    forwardedFor: [prior, remote].filter((s) => s !== undefined && s !== "").join(", "),
    forwardedProto: pub.protocol.replace(":", ""),
    forwardedHost: pub.host,
  };
}

/** `metadata` and the SMART configuration: public, passed through, the server's address replaced by the proxy's. */
async function capabilities(
  rt: ProxyRuntime,
  which: "metadata" | "smart-configuration",
  query: string,
  client: ClientInfo,
): Promise<ProxyAnswer> {
  const path = which === "metadata" ? "metadata" : ".well-known/smart-configuration";
  const res = await rt.upstream.request({
    method: "GET",
    target: withQuery(path, withoutParams(query, ["_format"])),
    client,
  });
  if (res.status !== 200) {
    const f = upstreamFailure(res);
    if (f instanceof ProxyError) throw f;
    return { status: f.status, headers: {}, body: f.body };
  }
  if (!isObject(res.json))
    throw new ProxyError(502, "exception", `the FHIR server's ${path} is not a JSON object`);
  if (which === "metadata") {
    if (res.json.resourceType !== "CapabilityStatement")
      throw new ProxyError(502, "exception", "the FHIR server's metadata is not a CapabilityStatement");
    return { status: 200, headers: {}, body: rewriteCapabilityStatement(res.json, rt.urls) };
  }
  return { status: 200, headers: {}, body: res.json };
}
