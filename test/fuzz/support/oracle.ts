/**
 * Independent judgements of decision documents: contract shape, "at least as permissive" for
 * monotonicity, and a from-the-spec FHIR token matcher for v2 query constraints. Nothing here
 * calls the policy; it is the yardstick the policy is held to.
 */
import type { Decision } from "../../../src/core/contract.js";
import { SEARCH_PARAMS } from "./fhir-data.js";

const STATUSES = new Set([400, 401, 403, 404, 500, 503]);

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/** A `filter-response` obligation: the request may go as it is, the response only through the filter step. */
function hasFilterResponse(d: Record<string, unknown>): boolean {
  return (
    Array.isArray(d.obligations) && d.obligations.some((o) => isObject(o) && o.type === "filter-response")
  );
}

/** The decision contract's shape (decision-contract.md); a message when violated. */
export function contractViolation(d: unknown): string | undefined {
  if (!isObject(d)) return "decision is not an object";
  if (!["allow", "deny", "filter"].includes(d.decision as string))
    return `decision is ${JSON.stringify(d.decision)}`;
  if (d.reasons !== undefined && !Array.isArray(d.reasons)) return "reasons is not an array";
  for (const r of (d.reasons as unknown[] | undefined) ?? []) {
    if (!isObject(r) || typeof r.code !== "string" || typeof r.message !== "string")
      return `bad reason ${JSON.stringify(r)}`;
  }
  if (d.decision === "deny") {
    if (typeof d.status !== "number" || !STATUSES.has(d.status))
      return `deny with status ${JSON.stringify(d.status)}`;
    if (!Array.isArray(d.reasons) || d.reasons.length === 0) return "deny without reasons";
    if (!isObject(d.outcome) || d.outcome.resourceType !== "OperationOutcome")
      return "deny without an OperationOutcome";
  }
  if (
    d.decision === "filter" &&
    !Array.isArray(d.narrow) &&
    !Array.isArray(d.keep) &&
    !Array.isArray(d.entries) &&
    !hasFilterResponse(d)
  ) {
    return "filter with neither narrow, keep, entries nor a filter-response obligation";
  }
  if (Array.isArray(d.narrow)) {
    for (const alt of d.narrow) {
      if (!isObject(alt) || Object.values(alt).some((v) => typeof v !== "string"))
        return `bad narrow alternative ${JSON.stringify(alt)}`;
    }
  }
  if (d.entries !== undefined) {
    if (!Array.isArray(d.entries)) return "entries is not an array";
    for (const e of d.entries) {
      const v = contractViolation(e);
      if (v) return `entry: ${v}`;
    }
  }
  return undefined;
}

/** FHIR search OR-list: split at commas that are not escaped. */
export function orValues(v: string): string[] {
  return v
    .replace(/\\,/g, "\u0001")
    .split(",")
    .map((x) => x.replace(/\u0001/g, ","));
}

/** alt2 is no more restrictive than alt1: every parameter alt2 demands, alt1 demands at least as tightly. */
export function altCovers(alt2: Record<string, string>, alt1: Record<string, string>): boolean {
  return Object.entries(alt2).every(([k, v2]) => {
    const v1 = alt1[k];
    if (v1 === undefined) return false;
    const wide = new Set(orValues(v2));
    return orValues(v1).every((x) => wide.has(x));
  });
}

/**
 * Where `wider` gives less access than `base`, a description; undefined when `wider` is at least as
 * permissive. Access = allow or filter; a filter's narrow alternatives must each be covered by an
 * alternative of the wider decision; released resources (keep) must stay released; batch entries
 * compare one by one.
 */
export function accessLoss(base: Decision, wider: Decision): string | undefined {
  if (base.decision === "deny") return undefined;
  if (wider.decision === "deny")
    return `${base.decision} became deny (${JSON.stringify(wider.reasons?.[0])})`;
  const n1 = base.decision === "filter" ? (base.narrow ?? []) : [];
  const n2 = wider.decision === "filter" ? (wider.narrow ?? []) : [];
  if (n2.length > 0) {
    if (n1.length === 0) return `unrestricted access became narrowed to ${JSON.stringify(n2)}`;
    for (const alt1 of n1) {
      if (!n2.some((alt2) => altCovers(alt2, alt1))) {
        return `narrow alternative ${JSON.stringify(alt1)} is no longer covered by ${JSON.stringify(n2)}`;
      }
    }
  }
  if (Array.isArray(base.keep)) {
    const kept = new Set(wider.keep ?? []);
    const lost = base.keep.filter((r) => !kept.has(r));
    if (lost.length > 0) return `released resources no longer released: ${lost.join(", ")}`;
  }
  if (Array.isArray(base.entries)) {
    for (const [i, e] of base.entries.entries()) {
      const w = wider.entries?.[i];
      if (!w) return `entry ${i} disappeared`;
      const loss = accessLoss(e, w);
      if (loss) return `entry ${i}: ${loss}`;
    }
  }
  return undefined;
}

// --- FHIR token matching, written from the FHIR R4 search page -------------------------------

function valuesAt(node: unknown, path: string[]): unknown[] {
  let nodes: unknown[] = [node];
  for (const key of path) {
    const next: unknown[] = [];
    for (const n of nodes) {
      if (!isObject(n) || !(key in n)) continue;
      const v = n[key];
      if (Array.isArray(v)) next.push(...v);
      else next.push(v);
    }
    nodes = next;
  }
  return nodes;
}

interface Coding {
  system?: unknown;
  code?: unknown;
}

function codingsOf(element: unknown): Coding[] {
  if (typeof element === "string") return [{ code: element }];
  if (typeof element === "boolean") return [{ code: String(element) }];
  if (!isObject(element)) return [];
  if (Array.isArray(element.coding))
    return element.coding.filter(isObject).map((c) => ({ system: c.system, code: c.code }));
  // Coding or Identifier (value plays the code's part)
  return [{ system: element.system, code: typeof element.code === "string" ? element.code : element.value }];
}

/** A token search value (code, system|code, |code, system|) against one element. */
export function tokenMatches(element: unknown, value: string): boolean {
  const bar = value.indexOf("|");
  return codingsOf(element).some((c) => {
    if (bar < 0) return c.code === value;
    const system = value.slice(0, bar);
    const code = value.slice(bar + 1);
    if (system === "") return c.code === code && (c.system === undefined || c.system === null);
    if (code === "") return c.system === system;
    return c.system === system && c.code === code;
  });
}

export interface ParsedConstraint {
  param: string;
  values: string[];
}

/** Parses a scope query suffix the way the SMART page describes it; undefined if malformed. */
export function parseConstraintQuery(query: string): ParsedConstraint[] | undefined {
  const out: ParsedConstraint[] = [];
  for (const item of query.split("&")) {
    const i = item.indexOf("=");
    if (i <= 0) return undefined;
    let raw: string;
    try {
      raw = decodeURIComponent(item.slice(i + 1));
    } catch {
      return undefined;
    }
    if (raw === "") return undefined;
    out.push({ param: item.slice(0, i), values: orValues(raw) });
  }
  return out;
}

/** Token search parameters with plain element paths can be enforced; anything else grants nothing. */
export function constraintPaths(t: string, param: string): string[][] | undefined {
  if (param.includes(":") || param.includes(".")) return undefined;
  const sp = SEARCH_PARAMS[t]?.[param] ?? SEARCH_PARAMS.Resource?.[param];
  if (!sp || sp.type !== "token" || !Array.isArray(sp.paths)) return undefined;
  return sp.paths;
}

/** The resource satisfies every constraint (AND), each by any of its values (OR). */
export function resourceSatisfies(
  resource: Record<string, unknown>,
  constraints: ParsedConstraint[],
): boolean {
  const t = String(resource.resourceType);
  return constraints.every((c) => {
    const paths = constraintPaths(t, c.param);
    if (!paths) return false;
    return paths.some((p) => valuesAt(resource, p).some((el) => c.values.some((v) => tokenMatches(el, v))));
  });
}
