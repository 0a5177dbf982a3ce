/**
 * The decision API: POST /v1/decision, POST /v1/filter and the gateway front door /v1/gateway/*.
 * It only translates: HTTP request -> validated contract input -> the evaluator -> HTTP response.
 * No policy lives here; anything malformed is a 400 with a precise message.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Request, Response } from "express";
import { TokenError } from "../auth/tokens.js";
import { failClosed, type Decision, type DecisionInput } from "../core/contract.js";
import { describeError } from "../core/errors.js";
import { logDecision } from "../ops/logging.js";
import { HttpError, bad, carryOutAudit, type AppContext } from "./context.js";
import { applyFilter } from "./filter.js";
import { GATEWAY_KEY_HEADER, enforcingGateway, gatewayDecision } from "./gateway-mode.js";

const DECISION_FIELDS = ["token", "claims", "request", "resource", "response", "now"];

const REALM = "smart-authz";

/**
 * `X-Smart-Authz-Body: outcome` (gateway mode only): the body is FHIR, the OperationOutcome alone
 * (`application/fhir+json`), for a gateway that hands the sidecar's answer to the client as it is
 * (examples/nginx: NGINX's error_page asks again for the body auth_request threw away). The
 * decision document, with its internal reasons, then stays between the sidecar and the gateway.
 */
export const BODY_HEADER = "x-smart-authz-body";

export type Endpoint = "decision" | "filter" | "gateway";

interface ParsedDecisionRequest {
  token: string | undefined;
  claims: Record<string, unknown> | undefined;
  input: Omit<DecisionInput, "claims">;
}

export async function handleDecision(
  ctx: AppContext,
  req: Request,
  res: Response,
  endpoint: Endpoint,
): Promise<void> {
  const started = performance.now();
  const decisionId = randomUUID();
  res.setHeader("X-Decision-Id", decisionId);
  const gatewayMode = isGatewayMode(req, endpoint);
  const requestId = plainRequestId(req.get("x-request-id"));
  const fhirBody = endpoint !== "filter" && wantsOutcomeBody(req);
  const parsed = endpoint === "gateway" ? gatewayRequest(ctx, req) : parseDecisionRequest(ctx, req, endpoint);

  let claims = parsed.claims;
  let tokenReason: string | undefined;
  if (!claims) {
    const token = parsed.token ?? bearerFromHeader(req.get("authorization"));
    try {
      claims = (await ctx.tokens.verify(token)).claims;
    } catch (err) {
      const tokenError =
        err instanceof TokenError ? err : new TokenError("token-signature-invalid", describeError(err));
      tokenReason = tokenError.reason;
      ctx.metrics.tokenFailures.inc({ reason: tokenError.reason });
      const decision = tokenDenial(tokenError);
      res.setHeader(
        "WWW-Authenticate",
        tokenError.reason === "token-missing"
          ? `Bearer realm="${REALM}"`
          : `Bearer realm="${REALM}", error="invalid_token", error_description="${quote(tokenError.message)}"`,
      );
      const revision = ctx.evaluator.revision();
      finish(ctx, res, { endpoint, decisionId, decision, started, revision, parsed, tokenReason, requestId });
      if (revision) res.setHeader("X-Policy-Revision", revision);
      res.setHeader("X-Decision", decision.decision);
      if (fhirBody) {
        sendOutcome(res, 401, decision);
        return;
      }
      res
        .status(401)
        .json(endpoint === "filter" ? { decision, status: 401, response: decision.outcome } : decision);
      return;
    }
  }

  const input: DecisionInput = { ...parsed.input, claims, now: parsed.input.now ?? new Date().toISOString() };
  const evaluated = await ctx.evaluator.decide(input);
  const revision = evaluated.revision;
  // The audit records a decision requires are on disk before it is released, or it is refused.
  const audited = await carryOutAudit(ctx, evaluated.decision, decisionId);
  // A gateway that only reads the status gets a 2xx only for what it can carry out.
  const decision =
    gatewayMode && endpoint !== "filter"
      ? gatewayDecision(
          audited,
          enforcingGateway(ctx.config.gateway, req.get(GATEWAY_KEY_HEADER)) !== undefined,
        )
      : audited;
  finish(ctx, res, { endpoint, decisionId, decision, started, revision, parsed, claims, requestId });
  if (revision) res.setHeader("X-Policy-Revision", revision);
  res.setHeader("X-Decision", decision.decision);

  if (endpoint === "filter") {
    const filtered = applyFilter(decision, input.response);
    res
      .status(gatewayMode ? filtered.status : 200)
      .json({ decision, status: filtered.status, response: filtered.response });
    return;
  }
  if (!gatewayMode) {
    res.status(200).json(decision);
    return;
  }
  if (decision.decision === "deny") {
    const status = typeof decision.status === "number" && decision.status >= 400 ? decision.status : 403;
    const scopes = Array.isArray(decision.required_scopes)
      ? decision.required_scopes.filter((s) => typeof s === "string")
      : [];
    if (status === 403 && scopes.length > 0) {
      res.setHeader(
        "WWW-Authenticate",
        `Bearer realm="${REALM}", error="insufficient_scope", scope="${quote(scopes.join(" "))}"`,
      );
    } else if (status === 401) {
      res.setHeader("WWW-Authenticate", `Bearer realm="${REALM}", error="invalid_token"`);
    }
    if (fhirBody) sendOutcome(res, status, decision);
    else res.status(status).json(decision);
    return;
  }
  if (fhirBody) sendOutcome(res, 200, decision);
  else res.status(200).json(decision);
}

/** An X-Request-Id worth logging: a plain token of at most 128 characters, else none. */
function plainRequestId(value: string | undefined): string | undefined {
  return value !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : undefined;
}

/** Gateway mode: `/v1/gateway/*` always, `/v1/decision` with `?mode=gateway` or `X-Smart-Authz-Mode`. */
export function isGatewayMode(req: Request, endpoint: Endpoint): boolean {
  return (
    endpoint === "gateway" ||
    req.query.mode === "gateway" ||
    req.get("x-smart-authz-mode")?.toLowerCase() === "gateway"
  );
}

/** A gateway-mode caller that asked for the FHIR form of the answer (BODY_HEADER). */
export function wantsOutcomeBody(req: Request): boolean {
  const endpoint: Endpoint = req.path.startsWith("/v1/gateway") ? "gateway" : "decision";
  return isGatewayMode(req, endpoint) && req.get(BODY_HEADER)?.trim().toLowerCase() === "outcome";
}

/**
 * The FHIR form of a gateway-mode answer: a deny's OperationOutcome; for a 2xx (the request may be
 * forwarded) an informational one, because there is nothing to refuse.
 */
function sendOutcome(res: Response, status: number, decision: Decision): void {
  const outcome =
    decision.decision === "deny"
      ? (decision.outcome ?? operationOutcome("error", "forbidden", "the request is refused"))
      : operationOutcome("information", "informational", "the request is permitted as it is");
  res.type("application/fhir+json").status(status).json(outcome);
}

/** An HTTP error (malformed forwarded request, body too large, …) in the FHIR form. */
export function sendErrorOutcome(res: Response, err: HttpError): void {
  res
    .type("application/fhir+json")
    .status(err.status)
    .json(operationOutcome("error", err.status >= 500 ? "exception" : "invalid", err.message));
}

function operationOutcome(severity: string, code: string, diagnostics: string): Record<string, unknown> {
  return { resourceType: "OperationOutcome", issue: [{ severity, code, diagnostics }] };
}

function finish(
  ctx: AppContext,
  res: Response,
  e: {
    endpoint: Endpoint;
    decisionId: string;
    decision: Decision;
    started: number;
    revision: string | undefined;
    parsed: ParsedDecisionRequest;
    claims?: Record<string, unknown>;
    tokenReason?: string;
    requestId?: string;
  },
): void {
  const latencyMs = performance.now() - e.started;
  ctx.metrics.decisions.inc({ endpoint: e.endpoint, outcome: e.decision.decision });
  ctx.metrics.latency.observe({ endpoint: e.endpoint }, latencyMs / 1000);
  const reasons = e.decision.reasons;
  if (
    e.decision.decision === "deny" &&
    Array.isArray(reasons) &&
    reasons.some((r) => r?.code === "policy-error")
  ) {
    ctx.metrics.errors.inc({ kind: "policy_error" });
  }
  logDecision(ctx.logger, ctx.config.logging, {
    decisionId: e.decisionId,
    endpoint: e.endpoint,
    revision: e.revision,
    decision: e.decision,
    latencyMs,
    method: e.parsed.input.request.method,
    url: e.parsed.input.request.url,
    claims: e.claims,
    tokenReason: e.tokenReason,
    requestId: e.requestId,
  });
  void res;
}

function tokenDenial(err: TokenError): Decision {
  const decision = failClosed(err.reason, err.message, 401);
  decision.outcome = {
    resourceType: "OperationOutcome",
    issue: [
      {
        severity: "error",
        code: err.reason === "token-missing" ? "login" : "security",
        diagnostics: err.message,
      },
    ],
  };
  return decision;
}

function bearerFromHeader(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(value);
  if (!m) throw new HttpError(400, "invalid_parameter", "the Authorization header is not a Bearer token");
  return m[1];
}

/** A quoted-string for WWW-Authenticate: no quotes, backslashes or control characters. */
function quote(s: string): string {
  return s.replace(/[\\"]/g, "'").replace(/[\x00-\x1f\x7f]/g, " ");
}

function parseDecisionRequest(ctx: AppContext, req: Request, endpoint: Endpoint): ParsedDecisionRequest {
  const body: unknown = req.body;
  if (body === undefined) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      "expected a JSON body with Content-Type: application/json",
    );
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw bad("the body must be a JSON object");
  }
  const o = body as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!DECISION_FIELDS.includes(key)) bad(`unknown field "${key}"; expected ${DECISION_FIELDS.join(", ")}`);
  }
  if (o.token !== undefined && (typeof o.token !== "string" || o.token === ""))
    bad('"token" must be a non-empty string');
  let claims: Record<string, unknown> | undefined;
  if (o.claims !== undefined) {
    if (!ctx.config.tokens.trustForwardedClaims) {
      bad(
        '"claims" are not accepted: send the raw access token in "token" (tokens.trust_forwarded_claims is false)',
      );
    }
    if (o.token !== undefined) bad('send either "token" or "claims", not both');
    if (typeof o.claims !== "object" || o.claims === null || Array.isArray(o.claims))
      bad('"claims" must be an object');
    claims = o.claims as Record<string, unknown>;
  }
  const request = validateRequest(o.request);
  if (o.now !== undefined && (typeof o.now !== "string" || Number.isNaN(Date.parse(o.now)))) {
    bad('"now" must be an RFC 3339 date-time string, e.g. "2026-11-22T10:00:00Z"');
  }
  if (
    endpoint === "filter" &&
    (typeof o.response !== "object" || o.response === null || Array.isArray(o.response))
  ) {
    bad('"response" is required: the FHIR resource or Bundle to filter');
  }
  const input: Omit<DecisionInput, "claims"> = { request };
  if (o.resource !== undefined) input.resource = o.resource;
  if (o.response !== undefined) input.response = o.response;
  if (typeof o.now === "string") input.now = o.now;
  return { token: typeof o.token === "string" ? o.token : undefined, claims, input };
}

function validateRequest(value: unknown): DecisionInput["request"] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad('"request" is required: an object with "method" and "url"');
  }
  const r = value as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!["method", "url", "headers", "body"].includes(key))
      bad(`unknown field "request.${key}"; expected method, url, headers, body`);
  }
  if (typeof r.method !== "string" || !/^[A-Z]{3,7}$/.test(r.method)) {
    bad('"request.method" must be an HTTP method in upper case, e.g. "GET"');
  }
  if (typeof r.url !== "string")
    bad('"request.url" must be a string relative to the FHIR base ("" for the base)');
  const url = r.url as string;
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith("/")) {
    bad('"request.url" must be relative to the FHIR base, e.g. "Observation?patient=123", not absolute');
  }
  const request: DecisionInput["request"] = { method: r.method as string, url };
  if (r.headers !== undefined) {
    if (typeof r.headers !== "object" || r.headers === null || Array.isArray(r.headers))
      bad('"request.headers" must be an object');
    const headers: Record<string, string | string[]> = {};
    for (const [name, v] of Object.entries(r.headers as Record<string, unknown>)) {
      if (name !== name.toLowerCase()) bad(`header names must be lower case: "request.headers.${name}"`);
      if (typeof v !== "string" && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
        bad(`"request.headers.${name}" must be a string or a list of strings`);
      }
      headers[name] = v as string | string[];
    }
    request.headers = headers;
  }
  if (r.body !== undefined) request.body = r.body;
  return request;
}

const HOP_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "x-original-uri",
  "x-original-method",
  "x-forwarded-uri",
  "x-forwarded-method",
  "x-smart-authz-mode",
  BODY_HEADER,
  GATEWAY_KEY_HEADER,
]);

/**
 * A decision request built from a gateway's forwarded request (Envoy ext_authz HTTP service:
 * `/v1/gateway/<original path>` with the original method; NGINX auth_request: X-Original-URI and
 * X-Original-Method headers). The FHIR base path configured in `server.fhir_base_path` is removed.
 * The token is the forwarded Authorization header.
 */
function gatewayRequest(ctx: AppContext, req: Request): ParsedDecisionRequest {
  const originalUri = req.get("x-original-uri") ?? req.get("x-forwarded-uri");
  let target: string;
  if (originalUri !== undefined) {
    target = originalUri;
  } else {
    const q = req.originalUrl.indexOf("?");
    target =
      req.originalUrl.slice("/v1/gateway".length, q === -1 ? undefined : q) +
      (q === -1 ? "" : req.originalUrl.slice(q));
  }
  const method = (req.get("x-original-method") ?? req.get("x-forwarded-method") ?? req.method).toUpperCase();
  if (!/^[A-Z]{3,7}$/.test(method)) bad("the forwarded method is not an HTTP method");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (HOP_HEADERS.has(name) || value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  const request: DecisionInput["request"] = {
    method,
    url: relativeToBase(target, ctx.config.server.fhirBasePath),
    headers,
  };
  // A forwarded FHIR body (Envoy `with_request_body`) is the request's body, never a decision request.
  const body: unknown = req.body;
  if (body !== undefined && !(typeof body === "object" && body !== null && Object.keys(body).length === 0)) {
    request.body = body;
  }
  return { token: undefined, claims: undefined, input: { request } };
}

/** The forwarded URI relative to the FHIR base (`server.fhir_base_path`), query string kept. */
export function relativeToBase(uri: string, basePath: string): string {
  let target = uri;
  if (/^https?:\/\//i.test(target)) {
    const u = new URL(target);
    target = u.pathname + u.search;
  }
  // The query is not part of the path: `/fhir?_getpages=…` is the base with a query.
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? "" : target.slice(q);
  const fhirBasePath = basePath.endsWith("/") ? basePath : `${basePath}/`;
  if (path.startsWith(fhirBasePath)) return path.slice(fhirBasePath.length) + query;
  if (path === fhirBasePath.slice(0, -1)) return query;
  if (path.startsWith("/")) return path.slice(1) + query;
  return path + query;
}
