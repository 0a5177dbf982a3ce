/**
 * The generated FHIR R4 data the policy itself uses (policies/fhir/r4/data.json), read here so
 * the generators draw resource types, compartment links and search parameters from the same
 * source of truth instead of a hand-typed copy.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..", "..");

interface CompartmentLink {
  narrow_param: string;
  paths: string[][];
}

interface SearchParam {
  type: string;
  paths?: string[][] | null;
  targets?: string[];
}

interface R4Data {
  patient_compartment: Record<string, Record<string, CompartmentLink>>;
  practitioner_compartment: Record<string, Record<string, CompartmentLink>>;
  resource_types: Record<
    string,
    { patient_compartment: boolean; references_patient: boolean; security_category: string }
  >;
  search_params: Record<string, Record<string, SearchParam>>;
}

const r4 = JSON.parse(readFileSync(resolve(ROOT, "policies/fhir/r4/data.json"), "utf8")) as R4Data;

export const RESOURCE_TYPES: readonly string[] = Object.keys(r4.resource_types).sort();

export const COMPARTMENT = r4.patient_compartment;

/** The R4 Practitioner compartment (CompartmentDefinition "practitioner"). */
export const PRACTITIONER_COMPARTMENT = r4.practitioner_compartment;

/** Types whose instances belong to a patient (R4 Patient compartment; Patient itself included). */
export const COMPARTMENT_TYPES: readonly string[] = Object.keys(COMPARTMENT).sort();

/** Compartment member types other than Patient. */
export const MEMBER_TYPES: readonly string[] = COMPARTMENT_TYPES.filter((t) => t !== "Patient");

/** The policy's default shared ("master file") types: business/anonymous, no patient link. */
export const SHARED_TYPES: readonly string[] = RESOURCE_TYPES.filter((t) => {
  const info = r4.resource_types[t]!;
  return (
    ["business", "anonymous"].includes(info.security_category) &&
    !info.patient_compartment &&
    !info.references_patient
  );
});

export const SEARCH_PARAMS = r4.search_params;

/** Element paths (e.g. [["participant","actor"]]) that place a resource of type t in a compartment. */
export function linkPaths(t: string): string[][] {
  return Object.values(COMPARTMENT[t] ?? {}).flatMap((l) => l.paths);
}

/** Search parameter names that link type t to a patient (compartment params and their narrow names). */
export function linkParams(t: string): string[] {
  const links = COMPARTMENT[t] ?? {};
  return [...new Set(Object.entries(links).flatMap(([name, l]) => [name, l.narrow_param]))].sort();
}

/** Token search parameters of t that read a plain element path. */
export function tokenParams(t: string): string[] {
  return Object.entries(SEARCH_PARAMS[t] ?? {})
    .filter(([, sp]) => sp.type === "token" && Array.isArray(sp.paths))
    .map(([name]) => name)
    .sort();
}

/**
 * Search parameters of t whose values can confine a search to one patient: the compartment's own
 * parameters and narrowing names, plus reference parameters that read only linking paths (Basic:
 * `subject`). For Patient itself (Patient.link not followed): `_id`.
 */
export function confiningParams(t: string): string[] {
  if (t === "Patient") return ["_id"];
  const paths = new Set(linkPaths(t).map((p) => p.join(".")));
  const aliases = Object.entries(SEARCH_PARAMS[t] ?? {})
    .filter(([, sp]) => sp.type === "reference" && Array.isArray(sp.paths) && sp.paths.length > 0)
    .filter(([, sp]) => sp.paths!.every((p) => paths.has(p.join("."))))
    .map(([name]) => name);
  return [...new Set([...linkParams(t), ...aliases])].sort();
}

/** The parameter's targets are only Patient, so a bare id in it means Patient/<id>. */
export function patientOnlyParam(t: string, param: string): boolean {
  const targets = SEARCH_PARAMS[t]?.[param]?.targets ?? [];
  return targets.length === 1 && targets[0] === "Patient";
}
