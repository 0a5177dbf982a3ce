/**
 * A decision request built from a gateway's forwarded request: Envoy ext_authz (HTTP service)
 * calls `/v1/gateway/<original path>` with the original method; NGINX auth_request sends
 * X-Original-URI and X-Original-Method. The FHIR base path (`server.fhir_base_path`) is removed,
 * the token is the forwarded Authorization header, and the body is what the gateway forwarded.
 *
 * The URL is decided exactly as the upstream will receive it: an absolute X-Original-URI (an
 * absolute-form request target) is cut after its authority, never normalized (`..`, `%2e%2e` and
 * backslashes stay where they are, for the policy to refuse).
 */
import type { Request } from "express";
import type { DecisionInput } from "../core/contract.js";
import { bad } from "./context.js";
import type { ParsedDecisionRequest } from "./decision-request.js";
import { GATEWAY_KEY_HEADER } from "./gateway-mode.js";

/** Envoy sets it on the check request when `allow_partial_message` let it cut the body short. */
export const PARTIAL_BODY_HEADER = "x-envoy-auth-partial-body";

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
  PARTIAL_BODY_HEADER,
  GATEWAY_KEY_HEADER,
]);

export function gatewayRequest(req: Request, fhirBasePath: string): ParsedDecisionRequest {
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
  const relative = relativeToBase(originTarget(target), fhirBasePath);
  const request: DecisionInput["request"] = { method, url: relative.url, headers };
  const bodyTruncated = req.get(PARTIAL_BODY_HEADER)?.trim().toLowerCase() === "true";
  const body = forwardedBody(req.body);
  if (body !== undefined && !bodyTruncated) request.body = body;
  return {
    token: undefined,
    claims: undefined,
    input: { request },
    bodyTruncated,
    outsideBase: !relative.underBase,
  };
}

/**
 * The FHIR body the gateway forwarded (Envoy `with_request_body`): parsed JSON, or the text of a
 * form (a POST _search). Nothing (no bytes, or a content type the service does not read) is no
 * body: the policy then knows the body was not seen. An empty body is also no body, because a
 * gateway that does not forward bodies sends the check request with none.
 */
function forwardedBody(body: unknown): unknown {
  if (body === undefined || body === "") return undefined;
  if (typeof body === "object" && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)
    return undefined;
  return body;
}

/**
 * The path and query of a request target, verbatim: origin form as is; absolute form
 * (`http://host/path?query`) cut after the authority. An absolute URI whose authority cannot be
 * read is refused (400), never guessed at.
 */
export function originTarget(target: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(target);
  if (!m) return target;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  if (!/^https?$/i.test(scheme)) bad(`the forwarded URI has the scheme "${scheme}"; expected http or https`);
  if (!VALID_AUTHORITY.test(authority))
    bad("the forwarded URI is not a valid absolute URI: its authority cannot be read");
  if (rest === "") return "/";
  return rest.startsWith("/") ? rest : `/${rest}`;
}

/** RFC 3986 authority: optional userinfo, a bracketed IP literal or a reg-name/IPv4, optional port. */
const VALID_AUTHORITY =
  /^(?:[A-Za-z0-9._~!$&'()*+,;=:%-]*@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?$/;

/** The target relative to the FHIR base path; a target outside the base keeps its path. */
export function relativeToBase(path: string, basePath: string): { url: string; underBase: boolean } {
  const fhirBasePath = basePath.endsWith("/") ? basePath : `${basePath}/`;
  const base = fhirBasePath.slice(0, -1);
  if (path.startsWith(fhirBasePath)) return { url: path.slice(fhirBasePath.length), underBase: true };
  if (path === base || path === fhirBasePath) return { url: "", underBase: true };
  if (path.startsWith(`${base}?`)) return { url: path.slice(base.length), underBase: true };
  return { url: path.startsWith("/") ? path.slice(1) : path, underBase: false };
}
