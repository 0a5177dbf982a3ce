/**
 * Response header values built from text the service does not control (a token's `iss`, `alg`,
 * `crit` or `kid`, a policy's scope names, a bundle revision). Node refuses to send a header holding
 * a character above U+00FF (the request would become a 500) and sends Latin-1 as mojibake; RFC 6750
 * §3 allows only visible ASCII in `error_description` and `scope`, without `"` and `\`. So every
 * such value is reduced to exactly that set before it is set.
 */

/** `value` as the content of an RFC 6750 quoted-string: %x20-21 / %x23-5B / %x5D-7E only. */
export function quotedHeaderText(value: string): string {
  return value.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, "?");
}

/** `value` as a plain header field value: visible ASCII and spaces only, trimmed. */
export function headerText(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "?").trim();
}

export const REALM = "smart-authz";

/** `WWW-Authenticate` for a request without a token (RFC 6750 §3.1: no error code). */
export function missingTokenChallenge(): string {
  return `Bearer realm="${REALM}"`;
}

/** `WWW-Authenticate` for a rejected token, with the reason in `error_description`. */
export function invalidTokenChallenge(description?: string): string {
  return description === undefined
    ? `Bearer realm="${REALM}", error="invalid_token"`
    : `Bearer realm="${REALM}", error="invalid_token", error_description="${quotedHeaderText(description)}"`;
}

/** `WWW-Authenticate` for a deny that names the scopes it would need. */
export function insufficientScopeChallenge(scopes: string[]): string {
  return `Bearer realm="${REALM}", error="insufficient_scope", scope="${quotedHeaderText(scopes.join(" "))}"`;
}
