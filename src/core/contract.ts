/** The decision contract (docs/contract.md): the policy's input and decision documents. */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface DecisionInput {
  claims: Record<string, unknown>;
  request: {
    method: string;
    url: string;
    headers?: Record<string, string | string[]>;
    body?: unknown;
  };
  resource?: unknown;
  /** The host read the stored resource and the server has none (404/410): contract 1.2. */
  resource_absent?: boolean;
  response?: unknown;
  now?: string;
}

export interface Reason {
  code: string;
  message: string;
  [key: string]: unknown;
}

export interface Obligation {
  type: string;
  [key: string]: unknown;
}

export interface Decision {
  decision: "allow" | "deny" | "filter";
  status?: number;
  narrow?: Record<string, string>[];
  keep?: string[];
  /** `index`: position in `response.entry`, or -1 for a single-resource response. */
  drop?: { ref: string; reason: string; index?: number }[];
  entries?: Decision[];
  reasons?: Reason[];
  required_scopes?: string[];
  obligations?: Obligation[];
  outcome?: Record<string, unknown>;
  [key: string]: unknown;
}

export const CONTRACT_VERSION = "1";

/** The deny a host returns when the policy itself could not decide. */
/** An allow that asks for nothing more than forwarding (no narrowing, no obligation but audit). */
export function plainAllow(d: Decision): boolean {
  return d.decision === "allow" && !(d.obligations ?? []).some((o) => o.type !== "audit");
}

/** The policy decided without the stored resource and says the answer holds only with it. */
export function decidedWithoutStoredResource(d: Decision): boolean {
  return (d.reasons ?? []).some((r) => r.code === "stored-resource-not-supplied");
}

export function failClosed(code: string, message: string, status = 500): Decision {
  return hostDenial(code, message, status, status === 400 ? "invalid" : "exception");
}

/**
 * A deny the host decides itself (a token, a bound, a gateway rule), with the FHIR
 * OperationOutcome issue code that says what kind of refusal it is.
 */
export function hostDenial(code: string, message: string, status: number, issueCode: string): Decision {
  return {
    decision: "deny",
    status,
    reasons: [{ code, message }],
    outcome: {
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: issueCode, diagnostics: message }],
    },
  };
}
