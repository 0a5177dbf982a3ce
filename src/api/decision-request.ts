/**
 * The body of POST /v1/decision and /v1/filter, validated into contract input: the FHIR request,
 * the token or (when trusted) forwarded claims, the stored resource, the response to filter and
 * the caller's `now`. Anything malformed is a 400 with a precise message.
 */
import type { Request } from "express";
import type { DecisionInput } from "../core/contract.js";
import { HttpError, bad, type AppContext } from "./context.js";

const DECISION_FIELDS = ["token", "claims", "request", "resource", "resource_absent", "response", "now"];

export interface ParsedDecisionRequest {
  token: string | undefined;
  claims: Record<string, unknown> | undefined;
  input: Omit<DecisionInput, "claims">;
  /** Set when the forwarded body is known to be incomplete (a gateway sent only part of it). */
  bodyTruncated?: boolean;
  /** Set when a forwarded path lies outside `server.fhir_base_path`. */
  outsideBase?: boolean;
}

export function parseDecisionRequest(
  ctx: AppContext,
  req: Request,
  endpoint: "decision" | "filter",
): ParsedDecisionRequest {
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
  if (o.resource_absent !== undefined) {
    if (typeof o.resource_absent !== "boolean") bad('"resource_absent" must be true or false');
    if (o.resource_absent && o.resource !== undefined)
      bad('send either "resource" or "resource_absent": true, not both');
    input.resource_absent = o.resource_absent;
  }
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
