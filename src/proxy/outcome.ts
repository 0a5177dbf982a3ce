/**
 * What the proxy answers when it does not release a server answer: a FHIR OperationOutcome with
 * the right status, and for authorization failures the RFC 6750 `WWW-Authenticate` challenge.
 * A resource the token may not see and one that does not exist get the same answer, byte for byte.
 */
import type { Decision } from "../core/contract.js";

export const REALM = "smart-authz";

export type IssueCode =
  | "invalid"
  | "not-supported"
  | "not-found"
  | "forbidden"
  | "security"
  | "login"
  | "conflict"
  | "exception"
  | "timeout"
  | "too-costly"
  | "processing"
  | "expired";

export interface ProxyAnswer {
  status: number;
  headers: Record<string, string>;
  /** A JSON body, or undefined for none (304, 204). */
  body: unknown;
}

/** A refusal with its status and OperationOutcome (thrown by handlers, answered by the app). */
export class ProxyError extends Error {
  constructor(
    readonly status: number,
    readonly issue: IssueCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ProxyError";
  }

  answer(): ProxyAnswer {
    return { status: this.status, headers: this.headers, body: operationOutcome(this.issue, this.message) };
  }
}

export function operationOutcome(
  code: IssueCode,
  diagnostics: string,
  severity = "error",
): Record<string, unknown> {
  return { resourceType: "OperationOutcome", issue: [{ severity, code, diagnostics }] };
}

/**
 * The one answer for "not found" and "not yours": same status, same body, whatever the reason.
 * (The policy's own hidden-resource outcome says the same.)
 */
export function notFound(): ProxyAnswer {
  return {
    status: 404,
    headers: {},
    body: operationOutcome("not-found", "Resource not found"),
  };
}

/** The answer for a policy deny: its status, its OperationOutcome and the OAuth challenge. */
export function denial(decision: Decision): ProxyAnswer {
  const status =
    typeof decision.status === "number" && decision.status >= 400 && decision.status <= 599
      ? decision.status
      : 403;
  if (status === 404) return notFound();
  const headers: Record<string, string> = {};
  const scopes = Array.isArray(decision.required_scopes)
    ? decision.required_scopes.filter((s): s is string => typeof s === "string")
    : [];
  if (status === 403 && scopes.length > 0) {
    headers["www-authenticate"] =
      `Bearer realm="${REALM}", error="insufficient_scope", scope="${quote(scopes.join(" "))}"`;
  } else if (status === 401) {
    headers["www-authenticate"] = `Bearer realm="${REALM}", error="invalid_token"`;
  }
  const outcome =
    typeof decision.outcome === "object" && decision.outcome !== null
      ? decision.outcome
      : operationOutcome(
          status === 500 ? "exception" : "forbidden",
          decision.reasons?.[0]?.message ?? "access denied",
        );
  return { status, headers, body: outcome };
}

/** The 401 for a missing or invalid token. */
export function tokenRefusal(reason: string, message: string): ProxyAnswer {
  const challenge =
    reason === "token-missing"
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="invalid_token", error_description="${quote(message)}"`;
  return {
    status: 401,
    headers: { "www-authenticate": challenge },
    body: operationOutcome(reason === "token-missing" ? "login" : "security", message),
  };
}

/** A quoted-string for WWW-Authenticate: printable ASCII only, no quotes or backslashes. */
export function quote(s: string): string {
  return s.replace(/[\\"]/g, "'").replace(/[^\x20-\x7e]/g, "?");
}
