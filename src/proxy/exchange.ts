/**
 * One client request as the handlers see it (the verified claims, the raw target, the parsed
 * body), and the proxy's long-lived parts they share (upstream client, capabilities, cursors,
 * address map, policy). Plus the few helpers every handler needs to talk to the server and the
 * policy about that request.
 */
import type { DecisionInput } from "../core/contract.js";
import type { ProxyConfig } from "../ops/config.js";
import type { Logger } from "../ops/logging.js";
import type { CapabilityWatcher } from "./capabilities.js";
import type { CursorSigner } from "./cursor.js";
import type { Claims, Decider } from "./decide.js";
import { withQuery, type Interaction, type Target } from "./interaction.js";
import type { PlanOptions } from "./narrowing.js";
import { ProxyError } from "./outcome.js";
import type { Checker } from "./release.js";
import type { UrlMap } from "./rewrite.js";
import { serverOutcome } from "./server-outcome.js";
import type { ClientInfo, UpstreamClient, UpstreamResponse } from "./upstream.js";

export interface ProxyRuntime {
  config: ProxyConfig;
  upstream: UpstreamClient;
  capabilities: CapabilityWatcher;
  cursors: CursorSigner;
  urls: UrlMap;
  decider: Decider;
  logger: Logger;
}

export interface Exchange {
  /** The client's method ("HEAD" kept: the server is asked with GET, the client gets no body). */
  method: string;
  target: Target;
  interaction: Interaction;
  claims: Claims;
  token: string;
  /** The client's request headers, lower-case names, repeated values joined. */
  headers: Record<string, string>;
  /** The parsed body: JSON, a form-encoded string (POST _search), or undefined. */
  body: unknown;
  /** The raw body and its media type, for forwarding. */
  rawBody: Buffer | undefined;
  contentType: string | undefined;
  client: ClientInfo;
}

/** Headers the policy never sees: credentials and connection-level ones. */
const NOT_FOR_POLICY = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
]);

/** The client's headers as the policy sees them. */
export function policyHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !NOT_FOR_POLICY.has(k)));
}

/** The contract request for what the client asked. */
export function decisionRequest(ex: Exchange): DecisionInput["request"] {
  const request: DecisionInput["request"] = {
    method: ex.method,
    url: withQuery(ex.target.path, ex.target.query),
    headers: policyHeaders(ex.headers),
  };
  if (ex.body !== undefined) request.body = ex.body;
  return request;
}

export function checkerOf(rt: ProxyRuntime, ex: Exchange): Checker {
  return { decider: rt.decider, claims: ex.claims, requestId: ex.client.requestId };
}

/** Client headers that are passed to the server for an interaction (everything else is dropped). */
export function forwardHeaders(ex: Exchange, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (ex.headers[n] !== undefined) out[n] = ex.headers[n]!;
  return out;
}

export function planOptions(rt: ProxyRuntime, purpose: PlanOptions["purpose"]): PlanOptions {
  return {
    strategy: rt.config.narrowing.strategy,
    fallback: rt.config.narrowing.fallback,
    features: rt.capabilities.current(),
    purpose,
  };
}

/** Sends a request to the FHIR server on behalf of the exchange. */
export function upstreamCall(
  rt: ProxyRuntime,
  ex: Exchange,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<UpstreamResponse> {
  const client = { ...ex.client, token: ex.token };
  return rt.upstream.request({ method, target, headers, ...(body ? { body } : {}), client });
}

/** The JSON body of a write as bytes for the server (re-serialised from what the policy saw). */
export function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}

/**
 * A server error answer for the client: a 4xx with an OperationOutcome is passed on as it is
 * (it says what the server objected to); anything else becomes a 502 without the server's words.
 */
export function upstreamFailure(res: UpstreamResponse): ProxyError | { status: number; body: unknown } {
  const body = res.json as { resourceType?: unknown } | undefined;
  if (res.status >= 400 && res.status < 500 && body?.resourceType === "OperationOutcome") {
    return { status: res.status, body: serverOutcome(body as Record<string, unknown>, res.status) };
  }
  return new ProxyError(502, "exception", `the FHIR server answered HTTP ${res.status}`);
}

/** The version a stored resource is at: meta.versionId, else the ETag's. */
export function versionOf(resource: unknown, etag: string | string[] | undefined): string | undefined {
  const v = (resource as { meta?: { versionId?: unknown } } | undefined)?.meta?.versionId;
  if (typeof v === "string" && /^[A-Za-z0-9\-.]{1,64}$/.test(v)) return v;
  const e = Array.isArray(etag) ? etag[0] : etag;
  const m = e === undefined ? null : /^(?:W\/)?"([A-Za-z0-9\-.]{1,64})"$/.exec(e.trim());
  return m ? m[1] : undefined;
}
