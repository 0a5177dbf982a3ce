/**
 * The ground truth written by test/e2e/data/generate.mjs (format in test/e2e/README.md), and the
 * generated resources themselves, for the end-to-end tests.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface Coding {
  system: string;
  code: string;
}
export interface Truth {
  format: string;
  seed: number;
  fhirVersion: string;
  total: number;
  counts: Record<string, number>;
  ids: Record<string, string[]>;
  patients: string[];
  /** type → the search parameters of the R4 Patient CompartmentDefinition ("_id" for Patient itself) */
  compartmentParams: Record<string, string[]>;
  /** patient id → Type/id → the compartment parameters that put it there ("_id" for the Patient) */
  compartments: Record<string, Record<string, string[]>>;
  /** types in no Patient compartment → their Type/ids */
  sharedTypes: Record<string, string[]>;
  labels: Record<string, Coding[]>;
  provenance: Record<string, string[]>;
  externalReferences: Record<string, { path: string; reference: string }[]>;
  lists: Record<string, string[]>;
  careTeams: Record<string, { subject: string; participants: string[] }>;
  practitionerPatients: Record<
    string,
    { generalPractitioner: string[]; careTeam: string[]; panel: string[] }
  >;
  paging: { patient: string; observationsWithSubject: number; suggestedCount: number };
}
export interface Resource {
  resourceType: string;
  id: string;
  [k: string]: unknown;
}

export function loadTruth(dir: string): { truth: Truth; resources: Map<string, Resource> } {
  const truth = JSON.parse(readFileSync(join(dir, "truth.json"), "utf8")) as Truth;
  const tx = JSON.parse(readFileSync(join(dir, "transaction.json"), "utf8")) as {
    entry: { resource: Resource }[];
  };
  const resources = new Map(tx.entry.map((e) => [`${e.resource.resourceType}/${e.resource.id}`, e.resource]));
  return { truth, resources };
}

/** Type/ids of one type in a patient's compartment, optionally only those put there by `param`. */
export function compartmentOf(truth: Truth, patient: string, type: string, param?: string): string[] {
  const members = truth.compartments[patient];
  if (!members) throw new Error(`no patient ${patient} in the truth`);
  return Object.entries(members)
    .filter(([k, params]) => k.startsWith(`${type}/`) && (param === undefined || params.includes(param)))
    .map(([k]) => k)
    .sort();
}

/** The documented rules of smart-authz's policy that decide what of the R4 compartment a patient/ token reads. */
export interface AccessRules {
  /** `policy.patient.follow_patient_link` (default false): a Patient is in another's compartment by `Patient.link`. */
  followPatientLink: boolean;
}

/**
 * The parameters by which a record reaches a patient's compartment under `rules`: the truth's
 * R4 parameters (test/e2e/data/generate.mjs), less `Patient.link` when the policy does not follow it.
 */
export function linkingParams(rules: AccessRules, params: readonly string[], key: string): string[] {
  return key.startsWith("Patient/") && !rules.followPatientLink
    ? params.filter((p) => p !== "link")
    : [...params];
}

/**
 * A patient's compartment as a patient/ token under `rules` reaches it: every member of the
 * truth's R4 compartment that some parameter the rules count puts there (the truth itself keeps
 * the R4 membership, which the smoke test checks against HAPI). `Type/id` → those parameters.
 */
export function reachableCompartment(
  truth: Truth,
  patient: string,
  rules: AccessRules,
): Map<string, string[]> {
  const members = truth.compartments[patient];
  if (!members) throw new Error(`no patient ${patient} in the truth`);
  const out = new Map<string, string[]>();
  for (const [key, params] of Object.entries(members)) {
    const counted = linkingParams(rules, params, key);
    if (counted.length > 0) out.set(key, counted);
  }
  return out;
}
