/**
 * The OPA Data API for the policy's entrypoints: `POST /v1/data/{entrypoint}` with `{"input": …}`
 * (any or no Content-Type; no body or no `input` evaluates without input, with OPA's warning) and
 * `GET /v1/data/{entrypoint}[?input=<JSON>]`. The answer is OPA's: `result` (absent when the
 * policy is undefined), `decision_id`, and with `?metrics` / `?instrument` the timers OPA reports,
 * `?provenance` the version and revision, `?pretty` indented JSON. `?explain` cannot be honoured
 * (a WebAssembly policy records no trace) and is refused.
 *
 * It trusts callers exactly as /v1/decision does: `input.token` is verified and replaced by its
 * claims; `input.claims` is refused unless `tokens.trust_forwarded_claims`; `input.now` is replaced
 * by the server clock unless `tokens.trust_forwarded_now`. Audit records are written only for
 * authenticated callers. `server.data_api: false` turns the whole API off.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Request, Response } from "express";
import type { Decision } from "../core/contract.js";
import { SmartAuthzError, describeError } from "../core/errors.js";
import { authenticate, decisionTime } from "./caller.js";
import { HttpError, bad, carryOutAudit, type ApiContext } from "./context.js";
import { checkRequestBounds } from "./limits.js";
import { clientKey, retryAfterSeconds } from "./rate-limit.js";

const UNSUPPORTED_EXPLAIN = new Set(["notes", "fails", "full", "debug"]);

interface DataInput {
  /** The input to evaluate, or undefined for none. */
  input: unknown;
  /** A POST body without `input` gets OPA's warning. */
  missingKey: boolean;
}

export async function handleData(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const handlerStarted = performance.now();
  if (!ctx.config.server.dataApi) {
    throw new HttpError(404, "resource_not_found", "the Data API is turned off (server.data_api: false)");
  }
  const decisionId = randomUUID();
  const entrypoint = ((req.params as { path?: string[] }).path ?? []).join("/");
  if (!ctx.evaluator.entrypoints().includes(entrypoint)) {
    const known = ctx.evaluator.entrypoints().join(", ") || "(none: no bundle is active)";
    throw new HttpError(
      404,
      "resource_not_found",
      `unknown entrypoint "${entrypoint}"; this policy has ${known}`,
    );
  }
  const explain = queryValues(req, "explain").find((v) => UNSUPPORTED_EXPLAIN.has(v));
  if (explain !== undefined) {
    bad(
      `explain=${explain} is not supported: a policy compiled to WebAssembly records no trace; ` +
        "run `opa eval --explain` on the policy sources instead",
    );
  }

  const parseStarted = performance.now();
  const given = req.method === "GET" ? inputFromQuery(req) : inputFromBody(req);
  const parseNs = nanos(performance.now() - parseStarted);

  let input = given.input;
  let authenticated = false;
  let client = clientKey(undefined, req.socket.remoteAddress);
  if (input !== undefined) {
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      bad('"input" must be a JSON object');
    }
    const o: Record<string, unknown> = { ...(input as Record<string, unknown>) };
    if (o.token !== undefined) {
      if (o.claims !== undefined) bad('send either "input.token" or "input.claims", not both');
      if (typeof o.token !== "string" || o.token === "") bad('"input.token" must be a non-empty string');
      const auth = await authenticate(ctx, o.token);
      if (!auth.ok) {
        res.setHeader("WWW-Authenticate", auth.challenge);
        throw new HttpError(
          401,
          "unauthorized",
          `the access token in input.token was rejected: ${auth.error.message}`,
        );
      }
      delete o.token;
      o.claims = auth.claims;
      authenticated = true;
    } else if (o.claims !== undefined) {
      if (!ctx.config.tokens.trustForwardedClaims) {
        bad(
          '"input.claims" are not accepted: send the raw access token in "input.token" (tokens.trust_forwarded_claims is false)',
        );
      }
      authenticated = true;
    }
    o.now = decisionTime(ctx, o.now);
    const violation = checkRequestBounds(o.request, ctx.config.limits);
    if (violation) bad(`${violation.code}: ${violation.message}`);
    if (authenticated && typeof o.claims === "object" && o.claims !== null) {
      client = clientKey(o.claims as Record<string, unknown>, req.socket.remoteAddress);
    }
    input = o;
  }
  const waitMs = ctx.limiter.retryAfterMs(client);
  if (waitMs > 0) {
    ctx.metrics.rateLimited.inc({ endpoint: "data" });
    res.setHeader("Retry-After", String(retryAfterSeconds(waitMs)));
    throw new HttpError(
      429,
      "too_many_requests",
      `too many of this client's requests ran into the policy's evaluation deadline; retry in ${retryAfterSeconds(waitMs)} s`,
    );
  }

  const evalStarted = performance.now();
  let result: unknown;
  let revision: string | undefined;
  try {
    ({ result, revision } = await ctx.evaluator.evaluate(entrypoint, input));
  } catch (err) {
    if ((err as { reason?: unknown } | null)?.reason === "policy-timeout") ctx.limiter.recordTimeout(client);
    throw dataError(ctx, err);
  }
  const evalNs = nanos(performance.now() - evalStarted);
  if (isObject(result)) {
    result = authenticated
      ? await carryOutAudit(ctx, result as Decision, decisionId)
      : refuseUnauthenticatedAudit(result as Decision);
  }
  record(ctx, { decisionId, entrypoint, revision, result, started: handlerStarted });

  const body: Record<string, unknown> = { decision_id: decisionId };
  if (result !== undefined) body.result = result;
  if (flag(req, "metrics") || flag(req, "instrument")) {
    body.metrics = {
      timer_rego_input_parse_ns: parseNs,
      timer_rego_query_eval_ns: evalNs,
      timer_server_handler_ns: nanos(performance.now() - handlerStarted),
    };
  }
  if (flag(req, "provenance")) body.provenance = { version: ctx.version, revision: revision ?? null };
  if (given.missingKey)
    body.warning = { code: "api_usage_warning", message: "'input' key missing from the request" };
  res.setHeader("X-Decision-Id", decisionId);
  res
    .status(200)
    .type("application/json")
    .send(flag(req, "pretty") ? `${JSON.stringify(body, null, 2)}\n` : JSON.stringify(body));
}

/** POST: the body is JSON whatever its Content-Type says (OPA reads it the same way). */
function inputFromBody(req: Request): DataInput {
  const type = (req.get("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
  if (type === "application/yaml" || type === "application/x-yaml") {
    throw new HttpError(415, "unsupported_media_type", "YAML input is not supported: send the body as JSON");
  }
  const text: unknown = req.body;
  if (typeof text !== "string" || text.trim() === "") return { input: undefined, missingKey: true };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    bad(`request body is not valid JSON: ${describeError(err)}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    bad('the body must be a JSON object: {"input": {...}}');
  }
  const o = body as Record<string, unknown>;
  if (!Object.hasOwn(o, "input")) return { input: undefined, missingKey: true };
  return { input: o.input, missingKey: false };
}

/** GET: the input, if any, is the JSON text of the last `input` query parameter. */
function inputFromQuery(req: Request): DataInput {
  const values = queryValues(req, "input");
  const last = values[values.length - 1];
  if (last === undefined) return { input: undefined, missingKey: false };
  try {
    return { input: JSON.parse(last) as unknown, missingKey: false };
  } catch (err) {
    bad(`the input parameter is not valid JSON: ${describeError(err)}`);
  }
}

/**
 * A decision that carries audit obligations is released to an unauthenticated caller only without
 * them carried out, which would release it unaudited: it is refused instead, and nothing is written.
 */
function refuseUnauthenticatedAudit(result: Decision): Decision {
  const audits = Array.isArray(result.obligations) && result.obligations.some((o) => o?.type === "audit");
  if (!audits) return result;
  const message =
    "this decision must be audited, and audit records are written only for an authenticated caller: send input.token";
  return {
    decision: "deny",
    status: 401,
    reasons: [{ code: "audit-needs-authentication", message }],
    outcome: {
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "security", diagnostics: message }],
    },
  };
}

function record(
  ctx: ApiContext,
  e: {
    decisionId: string;
    entrypoint: string;
    revision: string | undefined;
    result: unknown;
    started: number;
  },
): void {
  const latencyMs = performance.now() - e.started;
  ctx.metrics.latency.observe({ endpoint: "data" }, latencyMs / 1000);
  const outcome =
    isObject(e.result) && typeof e.result.decision === "string"
      ? e.result.decision
      : e.result === undefined
        ? "undefined"
        : "value";
  ctx.metrics.decisions.inc({ endpoint: "data", outcome });
  if (ctx.config.logging.decisions) {
    ctx.logger.info({
      msg: "decision",
      decision_id: e.decisionId,
      endpoint: `data/${e.entrypoint}`,
      revision: e.revision,
      outcome,
      latency_ms: Math.round(latencyMs * 1000) / 1000,
    });
  }
}

/**
 * A failed /v1/data evaluation as an HTTP error: input the policy cannot read is the client's 400;
 * a pool refusal keeps its status (503 overloaded or no bundle, 500 timeout); anything else is 500.
 */
function dataError(ctx: ApiContext, err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof SmartAuthzError && err.code === "INPUT_INVALID") {
    ctx.metrics.errors.inc({ kind: "bad_request" });
    return new HttpError(400, "invalid_parameter", describeError(err));
  }
  if (err instanceof SmartAuthzError && err.code === "BUNDLE_UNAVAILABLE") {
    return new HttpError(503, "unavailable", describeError(err));
  }
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === "number" && status >= 500 && status <= 599 && status !== 500) {
    return new HttpError(status, "unavailable", describeError(err));
  }
  ctx.metrics.errors.inc({ kind: "policy_error" });
  return new HttpError(500, "internal_error", describeError(err));
}

/** OPA's boolean query parameters: `?x` and `?x=true` (any case) are true, anything else false. */
function flag(req: Request, name: string): boolean {
  const values = queryValues(req, name);
  if (values.length === 0) return false;
  if (values.length === 1 && values[0] === "") return true;
  return values.some((v) => v.toLowerCase() === "true");
}

function queryValues(req: Request, name: string): string[] {
  const v = (req.query as Record<string, unknown>)[name];
  if (typeof v === "string") return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function nanos(ms: number): number {
  return Math.round(ms * 1e6);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
