/**
 * Turns a decision's `narrow` (ORed alternatives of ANDed search parameters) into ONE upstream
 * search a real FHIR server runs and pages: the parameters every alternative shares are added as
 * they are (AND); what differs is expressed as
 *   - one alternative left: its parameters (exact);
 *   - `_filter` (FHIR R4 search_filter.html): `(a eq "x") or (b eq "y")` (exact; the server must
 *     support `_filter`, which HAPI does only when enabled);
 *   - compartment search `Patient/123/Observation` when every alternative names the same patient
 *     through one linking parameter (exact: the policy narrows to the whole compartment);
 *   - otherwise the fallback: `primary` (only the `patient`/`subject` alternative: records linked
 *     to the patient by other parameters, e.g. performer-only Observations, are not returned),
 *     `response-filter` (no narrowing: the server searches everything and every page is filtered:
 *     complete but sparse), or `refuse`.
 * Every response is filtered afterwards whatever the form, so a plan can lose records but never
 * release one the policy did not check.
 */
import type { NarrowingFallback, NarrowingStrategy } from "../ops/config.js";

export type Alternative = Record<string, string>;

/** What the upstream server announced (its CapabilityStatement), or undefined while unknown. */
export interface ServerFeatures {
  /** Types whose searches accept `_filter` ("*" when the server accepts it everywhere). */
  filter: ReadonlySet<string>;
  /** Compartments the server searches (`Patient/[id]/[type]`), by compartment type. */
  compartments: ReadonlySet<string>;
}

export type Plan =
  /** No narrowing: the search goes upstream as the client sent it. */
  | { kind: "as-is" }
  /** Parameters to add to the query (ANDed with the client's). */
  | { kind: "params"; form: "single" | "filter"; params: [string, string][] }
  /** Search the compartment instead of the type: `<compartment>/<type>?<query>&<params>`. */
  | { kind: "compartment"; compartment: { type: "Patient"; id: string }; params: [string, string][] }
  /** Fallback: only the primary alternative; `omitted` are the alternatives whose records are lost. */
  | { kind: "primary"; params: [string, string][]; omitted: Alternative[] }
  /** Fallback: no narrowing beyond the shared parameters; every page is filtered. */
  | { kind: "response-filter"; params: [string, string][]; alternatives: Alternative[] }
  /** The narrowing cannot be carried out here. */
  | { kind: "refuse"; status: number; message: string };

export interface PlanOptions {
  strategy: NarrowingStrategy;
  fallback: NarrowingFallback;
  /** The server's features; undefined while its CapabilityStatement is not known. */
  features: ServerFeatures | undefined;
  /** A conditional write cannot be filtered afterwards: `response-filter` becomes `refuse`. */
  purpose: "search" | "write";
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const PATIENT_REF = /^Patient\/([A-Za-z0-9\-.]{1,64})$/;

/** The plan for searching `type` narrowed by `narrow`. */
export function planNarrowing(narrow: unknown, type: string | undefined, options: PlanOptions): Plan {
  if (narrow === undefined || narrow === null) return { kind: "as-is" };
  const alternatives = validAlternatives(narrow);
  if (typeof alternatives === "string") return { kind: "refuse", status: 500, message: alternatives };
  if (alternatives.length === 0) return { kind: "as-is" };
  const { common, rest } = factor(alternatives);
  const commonParams = Object.entries(common) as [string, string][];
  // An alternative that is only the shared part makes the others redundant (they narrow more).
  if (rest.length === 1 || rest.some((r) => Object.keys(r).length === 0)) {
    const only = rest.length === 1 ? rest[0]! : {};
    return { kind: "params", form: "single", params: [...commonParams, ...Object.entries(only)] };
  }

  const viaFilter = (): Plan => {
    const expr = filterExpression(rest);
    return typeof expr === "string"
      ? { kind: "params", form: "filter", params: [...commonParams, ["_filter", expr]] }
      : { kind: "refuse", status: 500, message: expr.error };
  };
  const compartment = type === undefined ? undefined : compartmentOf(rest, type);
  const viaCompartment = (): Plan | undefined =>
    compartment ? { kind: "compartment", compartment, params: commonParams } : undefined;

  switch (options.strategy) {
    case "filter":
      return viaFilter();
    case "compartment":
      return viaCompartment() ?? fallback(commonParams, rest, type, options);
    case "single":
      return fallback(commonParams, rest, type, options);
    case "auto": {
      const f = options.features;
      if (!f) {
        return {
          kind: "refuse",
          status: 503,
          message:
            "the FHIR server's CapabilityStatement is not known yet, so the proxy cannot tell how to run this narrowed search; retry shortly",
        };
      }
      if (f.filter.has("*") || (type !== undefined && f.filter.has(type))) return viaFilter();
      if (f.compartments.has("Patient")) {
        const p = viaCompartment();
        if (p) return p;
      }
      return fallback(commonParams, rest, type, options);
    }
  }
}

function fallback(
  common: [string, string][],
  rest: Alternative[],
  type: string | undefined,
  options: PlanOptions,
): Plan {
  const described = rest.map((r) => describe(r)).join(" OR ");
  if (options.fallback === "response-filter") {
    if (options.purpose === "write") {
      return {
        kind: "refuse",
        status: 403,
        message: `this conditional write is permitted only where ${described}, which the FHIR server cannot search in one request (no _filter, no compartment search), and a write cannot be filtered afterwards`,
      };
    }
    return { kind: "response-filter", params: common, alternatives: rest };
  }
  if (options.fallback === "primary") {
    const primary =
      rest.find((r) => onlyKey(r) === "patient" && PATIENT_REF.test(r.patient!)) ??
      rest.find((r) => onlyKey(r) === "subject" && PATIENT_REF.test(r.subject!)) ??
      // a Patient search (Patient.link followed): the patient itself
      (type === "Patient" ? rest.find((r) => onlyKey(r) === "_id") : undefined);
    if (primary) {
      return {
        kind: "primary",
        params: [...common, ...(Object.entries(primary) as [string, string][])],
        omitted: rest.filter((r) => r !== primary),
      };
    }
  }
  return {
    kind: "refuse",
    status: 403,
    message: `this search is permitted only where ${described}; the FHIR server cannot run that as one search (no _filter, no compartment search) and the proxy is configured not to approximate it`,
  };
}

function onlyKey(a: Alternative): string | undefined {
  const keys = Object.keys(a);
  return keys.length === 1 ? keys[0] : undefined;
}

function describe(a: Alternative): string {
  return Object.entries(a)
    .map(([k, v]) => `${k}=${v}`)
    .join(" AND ");
}

/** The alternatives, checked: a list of objects of string values with plain parameter names. */
function validAlternatives(narrow: unknown): Alternative[] | string {
  if (!Array.isArray(narrow)) return "the decision's narrow is not a list";
  const out: Alternative[] = [];
  for (const alt of narrow as unknown[]) {
    if (typeof alt !== "object" || alt === null || Array.isArray(alt))
      return "a narrow alternative is not an object";
    const a: Alternative = {};
    for (const [k, v] of Object.entries(alt as Record<string, unknown>)) {
      if (!NAME.test(k))
        return `the narrow parameter ${JSON.stringify(k)} is not a plain search parameter name`;
      if (typeof v !== "string" || v === "" || /[\x00-\x1f\x7f]/.test(v))
        return `the narrow value of ${k} is not a usable string`;
      a[k] = v;
    }
    out.push(a);
  }
  return out;
}

/** Splits alternatives into what all share (same name and value) and what is left of each. */
function factor(alternatives: Alternative[]): { common: Alternative; rest: Alternative[] } {
  const common: Alternative = {};
  const first = alternatives[0]!;
  for (const [k, v] of Object.entries(first)) {
    if (alternatives.every((a) => a[k] === v)) common[k] = v;
  }
  const rest = alternatives.map((a) => Object.fromEntries(Object.entries(a).filter(([k]) => !(k in common))));
  // Duplicates after factoring are one alternative.
  const seen = new Set<string>();
  const unique = rest.filter((r) => {
    const key = JSON.stringify(Object.entries(r).sort());
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { common, rest: unique };
}

/** Patient/123 when every alternative is one linking parameter naming that same patient. */
function compartmentOf(rest: Alternative[], type: string): { type: "Patient"; id: string } | undefined {
  if (type === "Patient") return undefined;
  let id: string | undefined;
  for (const r of rest) {
    const k = onlyKey(r);
    const m = k === undefined ? null : PATIENT_REF.exec(r[k]!);
    if (!m || (id !== undefined && m[1] !== id)) return undefined;
    id = m[1];
  }
  return id === undefined ? undefined : { type: "Patient", id };
}

// --- _filter ------------------------------------------------------------------------------

/**
 * The `_filter` expression for ORed alternatives of ANDed parameters. A parameter value in FHIR
 * search syntax may itself hold ORed values (`a,b`; `\,` is a literal comma): each becomes its own
 * comparison. Values are JSON strings in the grammar (`"` and `\` escaped).
 */
export function filterExpression(alternatives: Alternative[]): string | { error: string } {
  const ors: string[] = [];
  for (const alt of alternatives) {
    const ands: string[] = [];
    for (const [name, value] of Object.entries(alt)) {
      if (!NAME.test(name)) return { error: `${name} cannot be used in _filter` };
      const values = splitSearchValues(value);
      if (values.length === 0) return { error: `the narrow value of ${name} is empty` };
      const comparisons = values.map((v) => `${name} eq ${filterString(v)}`);
      ands.push(comparisons.length === 1 ? comparisons[0]! : `(${comparisons.join(" or ")})`);
    }
    ors.push(ands.length === 1 ? `(${ands[0]})` : `(${ands.join(" and ")})`);
  }
  return ors.join(" or ");
}

/** A string value in the _filter grammar (a JSON string). */
export function filterString(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The ORed values of a FHIR search value: split on unescaped commas, `\,` `\|` `\$` `\\` unescaped. */
export function splitSearchValues(value: string): string[] {
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === "\\" && i + 1 < value.length && ",$\\".includes(value[i + 1]!)) {
      current += value[i + 1];
      i++;
    } else if (ch === ",") {
      out.push(current);
      current = "";
    } else current += ch;
  }
  out.push(current);
  return out.filter((v) => v !== "");
}
