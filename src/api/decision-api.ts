/**
 * The decision API: POST /v1/decision, POST /v1/filter and the gateway front door /v1/gateway/*.
 * It only translates: HTTP request -> validated contract input -> the evaluator -> HTTP response.
 * No policy lives here. Before anything is evaluated a request must be within the request bounds
 * (limits.ts), come from a verified token (or trusted forwarded claims; public discovery endpoints
 * need none) and come from a client that is not rate-limited for running into the deadline.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Request, Response } from "express";
import { hostDenial, type Decision, type DecisionInput } from "../core/contract.js";
import { logDecision } from "../ops/logging.js";
import { authenticate, decisionTime, tokenDenial } from "./caller.js";
import { HttpError, carryOutAudit, type ApiContext } from "./context.js";
import { parseDecisionRequest, type ParsedDecisionRequest } from "./decision-request.js";
import { applyFilter } from "./filter.js";
import { GATEWAY_KEY_HEADER, enforcingGateway, gatewayDecision } from "./gateway-mode.js";
import { PARTIAL_BODY_HEADER, gatewayRequest } from "./gateway-request.js";
import { headerText, insufficientScopeChallenge, invalidTokenChallenge } from "./headers.js";
import { boundsDenial, checkRequestBounds } from "./limits.js";
import { isPublicRequest } from "./public-endpoints.js";
import { isGatewayMode, plainRequestId, sendOutcome, wantsOutcomeBody } from "./outcome-body.js";
import { clientKey, isPolicyTimeout, rateLimitDenial, retryAfterSeconds } from "./rate-limit.js";

export type Endpoint = "decision" | "filter" | "gateway";

interface Exchange {
  ctx: ApiContext;
  res: Response;
  endpoint: Endpoint;
  gatewayMode: boolean;
  decisionId: string;
  started: number;
  parsed: ParsedDecisionRequest;
  /** The caller asked for the OperationOutcome alone (X-Smart-Authz-Body: outcome). */
  fhirBody: boolean;
  requestId: string | undefined;
}

interface Outcome {
  decision: Decision;
  revision?: string | undefined;
  claims?: Record<string, unknown>;
  tokenReason?: string;
  response?: unknown;
  /** An HTTP status that holds in every mode (401 token, 429 rate limit). */
  httpStatus?: number;
}

export async function handleDecision(
  ctx: ApiContext,
  req: Request,
  res: Response,
  endpoint: Endpoint,
): Promise<void> {
  const started = performance.now();
  const decisionId = randomUUID();
  res.setHeader("X-Decision-Id", decisionId);
  const gatewayMode = isGatewayMode(req, endpoint === "gateway");
  const parsed =
    endpoint === "gateway"
      ? gatewayRequest(req, ctx.config.server.fhirBasePath)
      : parseDecisionRequest(ctx, req, endpoint);
  const x: Exchange = {
    ctx,
    res,
    endpoint,
    gatewayMode,
    decisionId,
    started,
    parsed,
    fhirBody: endpoint !== "filter" && wantsOutcomeBody(req),
    requestId: plainRequestId(req.get("x-request-id")),
  };

  if (parsed.bodyTruncated) {
    reply(x, { decision: truncatedBodyDenial() });
    return;
  }
  const violation = checkRequestBounds(parsed.input.request, ctx.config.limits);
  if (violation) {
    reply(x, { decision: boundsDenial(violation) });
    return;
  }

  let claims = parsed.claims;
  if (!claims && endpoint !== "filter" && !parsed.outsideBase && isPublicRequest(parsed.input.request)) {
    claims = {};
  }
  if (!claims) {
    const auth = await authenticate(ctx, parsed.token ?? bearerFromHeader(req.get("authorization")));
    if (!auth.ok) {
      res.setHeader("WWW-Authenticate", auth.challenge);
      reply(x, {
        decision: tokenDenial(auth.error),
        revision: ctx.evaluator.revision(),
        tokenReason: auth.error.reason,
        httpStatus: 401,
      });
      return;
    }
    claims = auth.claims;
  }

  const client = clientKey(claims, req.socket.remoteAddress);
  const waitMs = ctx.limiter.retryAfterMs(client);
  if (waitMs > 0) {
    ctx.metrics.rateLimited.inc({ endpoint });
    res.setHeader("Retry-After", String(retryAfterSeconds(waitMs)));
    reply(x, { decision: rateLimitDenial(waitMs), claims, httpStatus: 429 });
    return;
  }

  const input: DecisionInput = { ...parsed.input, claims, now: decisionTime(ctx, parsed.input.now) };
  const evaluated = await ctx.evaluator.decide(input);
  if (isPolicyTimeout(evaluated.decision)) ctx.limiter.recordTimeout(client);
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
  reply(x, { decision, revision: evaluated.revision, claims, response: input.response });
}

/** Logs, counts and sends a decision the way the endpoint and mode call for. */
function reply(x: Exchange, o: Outcome): void {
  const { res, endpoint, gatewayMode } = x;
  const decision = o.decision;
  finish(x, o);
  if (o.revision) res.setHeader("X-Policy-Revision", headerText(o.revision));
  res.setHeader("X-Decision", decision.decision);

  if (endpoint === "filter") {
    if (o.httpStatus !== undefined) {
      res.status(o.httpStatus).json({ decision, status: o.httpStatus, response: decision.outcome });
      return;
    }
    const filtered = applyFilter(decision, o.response);
    res
      .status(gatewayMode ? filtered.status : 200)
      .json({ decision, status: filtered.status, response: filtered.response });
    return;
  }
  if (o.httpStatus !== undefined) {
    if (x.fhirBody) sendOutcome(res, o.httpStatus, decision);
    else res.status(o.httpStatus).json(decision);
    return;
  }
  if (!gatewayMode || decision.decision !== "deny") {
    if (x.fhirBody) sendOutcome(res, 200, decision);
    else res.status(200).json(decision);
    return;
  }
  const status = typeof decision.status === "number" && decision.status >= 400 ? decision.status : 403;
  const scopes = Array.isArray(decision.required_scopes)
    ? decision.required_scopes.filter((s) => typeof s === "string")
    : [];
  if (status === 403 && scopes.length > 0) {
    res.setHeader("WWW-Authenticate", insufficientScopeChallenge(scopes));
  } else if (status === 401) {
    res.setHeader("WWW-Authenticate", invalidTokenChallenge());
  }
  if (x.fhirBody) sendOutcome(res, status, decision);
  else res.status(status).json(decision);
}

function finish(x: Exchange, o: Outcome): void {
  const { ctx } = x;
  const latencyMs = performance.now() - x.started;
  ctx.metrics.decisions.inc({ endpoint: x.endpoint, outcome: o.decision.decision });
  ctx.metrics.latency.observe({ endpoint: x.endpoint }, latencyMs / 1000);
  const reasons = o.decision.reasons;
  if (
    o.decision.decision === "deny" &&
    Array.isArray(reasons) &&
    reasons.some((r) => r?.code === "policy-error")
  ) {
    ctx.metrics.errors.inc({ kind: "policy_error" });
  }
  logDecision(ctx.logger, ctx.config.logging, {
    decisionId: x.decisionId,
    endpoint: x.endpoint,
    revision: o.revision,
    decision: o.decision,
    latencyMs,
    method: x.parsed.input.request.method,
    url: x.parsed.input.request.url,
    claims: o.claims,
    tokenReason: o.tokenReason,
    requestId: x.requestId,
  });
}

/** The refusal of a request whose body the gateway cut short: nothing is decided on part of it. */
function truncatedBodyDenial(): Decision {
  const message =
    `the gateway forwarded only part of the request body (${PARTIAL_BODY_HEADER}: true), and a decision ` +
    "is never made on part of a body: raise the gateway's body limit (Envoy with_request_body.max_request_bytes) " +
    "or turn allow_partial_message off";
  return hostDenial("gateway-body-truncated", message, 403, "forbidden");
}

function bearerFromHeader(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(value);
  if (!m) throw new HttpError(400, "invalid_parameter", "the Authorization header is not a Bearer token");
  return m[1];
}
