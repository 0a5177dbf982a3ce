/** The vector format's expectations (test/vectors/README.md), checked against a decision. */
import type { Decision } from "../../src/core/contract.js";

export interface Vector {
  id: string;
  note?: string;
  scopes: string;
  context?: Record<string, unknown>;
  parse?: { valid: boolean };
  request?: { method: string; url: string; body?: unknown; headers?: Record<string, string> };
  resource?: unknown;
  /** The host read the stored resource and there is none (contract 1.2). */
  resource_absent?: boolean;
  response?: unknown;
  /** The project's own vectors: the obligation types the decision must carry, exactly (as a set). */
  obligations?: string[];
  /** data.clients for this case (client registrations, schemas/data/clients.schema.json). */
  clients?: Record<string, unknown>;
  /** Further details the decision must show, when given ([] = no required_scopes). */
  status?: number;
  reason?: string;
  required_scopes?: string[];
  entry_required_scopes?: string[][];
  outcome_code?: string;
  expect:
    | "allow"
    | "deny"
    | "valid"
    | "invalid"
    | { filter: { narrow?: Record<string, string>; keep?: string[]; drop?: string[] } }
    | { entries: string[] };
  source?: string;
}

const samePatientValue = (a: unknown, b: string) => a === b || a === `Patient/${b}` || `Patient/${a}` === b;

/** Returns a message describing the mismatch, or undefined when the decision meets the expectation. */
export function mismatch(v: Vector, decision: Decision): string | undefined {
  return expectationMismatch(v, decision) ?? obligationsMismatch(v, decision) ?? detailsMismatch(v, decision);
}

function detailsMismatch(v: Vector, decision: Decision): string | undefined {
  const got = JSON.stringify(decision);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (v.status !== undefined && decision.status !== v.status)
    return `expected status ${v.status}, got ${got}`;
  if (v.reason !== undefined && decision.reasons?.[0]?.code !== v.reason)
    return `expected reason ${v.reason}, got ${got}`;
  if (v.required_scopes !== undefined && !same(decision.required_scopes ?? [], v.required_scopes))
    return `expected required_scopes ${JSON.stringify(v.required_scopes)}, got ${got}`;
  if (
    v.entry_required_scopes !== undefined &&
    !same(
      (decision.entries ?? []).map((e) => e.required_scopes ?? []),
      v.entry_required_scopes,
    )
  )
    return `expected entry required_scopes ${JSON.stringify(v.entry_required_scopes)}, got ${got}`;
  if (v.outcome_code !== undefined) {
    const issue = (
      decision.outcome as { issue?: { details?: { coding?: { code?: string }[] } }[] } | undefined
    )?.issue?.[0];
    if (!(issue?.details?.coding ?? []).some((c) => c.code === v.outcome_code))
      return `expected the OperationOutcome to carry the code ${v.outcome_code}, got ${got}`;
  }
  return undefined;
}

function obligationsMismatch(v: Vector, decision: Decision): string | undefined {
  if (v.obligations === undefined) return undefined;
  const got = [...new Set((decision.obligations ?? []).map((o) => o.type))].sort();
  const want = [...new Set(v.obligations)].sort();
  return JSON.stringify(got) === JSON.stringify(want)
    ? undefined
    : `expected obligations ${JSON.stringify(want)}, got ${JSON.stringify(decision)}`;
}

function expectationMismatch(v: Vector, decision: Decision): string | undefined {
  const e = v.expect;
  const got = JSON.stringify(decision);
  if (typeof e === "string") return decision.decision === e ? undefined : `expected ${e}, got ${got}`;
  if ("entries" in e) {
    const entries = (decision.entries ?? []).map((x) => x.decision);
    return JSON.stringify(entries) === JSON.stringify(e.entries)
      ? undefined
      : `expected entries ${JSON.stringify(e.entries)}, got ${got}`;
  }
  if (decision.decision !== "filter") return `expected filter, got ${got}`;
  const want = e.filter;
  if (want.narrow) {
    const ok = (decision.narrow ?? []).some((alt) =>
      Object.entries(want.narrow!).every(([k, value]) => samePatientValue(alt[k], value)),
    );
    if (!ok) return `expected a narrow alternative containing ${JSON.stringify(want.narrow)}, got ${got}`;
  }
  if (want.keep) {
    const keep = [...(decision.keep ?? [])].sort();
    const drop = (decision.drop ?? []).map((d) => d.ref).sort();
    if (JSON.stringify(keep) !== JSON.stringify([...want.keep].sort())) return `keep differs: ${got}`;
    if (JSON.stringify(drop) !== JSON.stringify([...(want.drop ?? [])].sort())) return `drop differs: ${got}`;
  }
  return undefined;
}
