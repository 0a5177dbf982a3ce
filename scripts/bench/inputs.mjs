// The benchmark's input mix: typical contract inputs (docs/contract.md), built the way
// scripts/lib/vectors.mjs builds them. Deterministic: the same mix on every run and in every host.
import { readFileSync } from "node:fs";
import { VECTOR_NOW } from "../lib/vectors.mjs";

export const NOW = VECTOR_NOW;
const IAT = Math.floor(Date.parse(NOW) / 1000) - 60;

/**
 * The data the sidecar gives the policy besides the bundle: the `policy:` section of its config,
 * and a relationships document in which the clinician (Practitioner/9) cares for patients 123 and
 * 456 (the break-the-glass case reads 456's record), as in a deployment with the default user
 * access model (policy.user.access: relationships).
 */
export const DATA = {
  config: {},
  relationships: { version: 1, users: { "Practitioner/9": { patients: ["123", "456"] } } },
};

/** A practitioner in a patient context: patient-level reads and searches, user-level CRUDS. */
export const CLAIMS = {
  scope: "launch/patient patient/*.rs user/*.cruds openid fhirUser",
  patient: "123",
  fhirUser: "Practitioner/9",
  sub: "u1",
  client_id: "app1",
  iat: IAT,
  exp: IAT + 3600,
};

/** A patient-facing app: patient-level read/search only, so searches are narrowed and Bundles filtered. */
export const PATIENT_CLAIMS = {
  scope: "launch/patient patient/*.rs openid fhirUser",
  patient: "123",
  fhirUser: "Patient/123",
  sub: "p123",
  client_id: "app2",
  iat: IAT,
  exp: IAT + 3600,
};

/** A clinician token that may break the glass: user-level read/search, purpose of use BTG. */
export const BTG_CLAIMS = {
  scope: "user/*.rs openid fhirUser",
  fhirUser: "Practitioner/9",
  sub: "u2",
  client_id: "app1",
  purpose_of_use: ["BTG"],
  iat: IAT,
  exp: IAT + 3600,
};

function observation(id, patient, extra = {}) {
  return {
    resourceType: "Observation",
    id,
    status: "final",
    code: { coding: [{ system: "http://loinc.org", code: "1234-5" }], text: "x" },
    subject: { reference: `Patient/${patient}` },
    ...extra,
  };
}

/** A searchset Bundle of `n` Observations; every 4th one belongs to another patient (dropped). */
export function searchsetBundle(n) {
  const entry = [];
  for (let i = 0; i < n; i++) {
    const patient = i % 4 === 3 ? "999" : "123";
    entry.push({
      fullUrl: `https://fhir.example.org/r4/Observation/o${i}`,
      resource: observation(`o${i}`, patient),
      search: { mode: "match" },
    });
  }
  return { resourceType: "Bundle", type: "searchset", total: n, entry };
}

/** A 20-entry batch: reads, narrowed searches, a create, an update and deletes. */
export function batchBundle(n = 20) {
  const kinds = [
    (i) => ({ request: { method: "GET", url: `Observation/o${i}` } }),
    () => ({ request: { method: "GET", url: "Observation?code=1234-5" } }),
    () => ({ request: { method: "GET", url: "Condition?patient=123" } }),
    (i) => ({ request: { method: "POST", url: "Observation" }, resource: observation(`n${i}`, "123") }),
    (i) => ({ request: { method: "DELETE", url: `Observation/o${i}` } }),
  ];
  const entry = [];
  for (let i = 0; i < n; i++) entry.push(kinds[i % kinds.length](i));
  return { resourceType: "Bundle", type: "batch", entry };
}

function input(claims, request, extra = {}) {
  return { claims, request: { headers: {}, ...request }, ...extra, now: NOW };
}

/** The five cases of the mix, by name. */
export function mix({ bundleEntries = 1000, batchEntries = 20 } = {}) {
  return {
    read: input(CLAIMS, { method: "GET", url: "Observation/o1" }, { resource: observation("o1", "123") }),
    search: input(PATIENT_CLAIMS, { method: "GET", url: "Observation?code=1234-5" }),
    bundle: input(
      PATIENT_CLAIMS,
      { method: "GET", url: "Observation?patient=123" },
      { response: searchsetBundle(bundleEntries) },
    ),
    batch: input(CLAIMS, { method: "POST", url: "", body: batchBundle(batchEntries) }),
    btg: input(
      BTG_CLAIMS,
      {
        method: "GET",
        url: "Observation/o7",
        headers: { "x-btg-reason": "unconscious patient in the emergency department" },
      },
      {
        resource: observation("o7", "456", {
          meta: {
            security: [{ system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" }],
          },
        }),
      },
    ),
  };
}

/** The weighted mix for throughput runs: mostly single reads and searches, as on a FHIR server. */
export const WEIGHTS = { read: 40, search: 30, batch: 10, btg: 10, bundle: 10 };

// --- Scope volume (issue 14): the same read with tokens of 6 to 300 scopes ---------------------

const FHIR = JSON.parse(readFileSync(new URL("../../policies/fhir/r4/data.json", import.meta.url), "utf8"));
/** Every resource type but Observation, so that the read below meets the same grants at every size. */
const OTHER_TYPES = Object.keys(FHIR.resource_types)
  .filter((t) => t !== "Observation")
  .sort();
/** The types with a `category` search parameter: where SMART granular scopes (?category=) apply. */
const CATEGORY_TYPES = OTHER_TYPES.filter((t) => FHIR.search_params[t]?.category);
const CATEGORY_CODES = [
  "laboratory",
  "vital-signs",
  "social-history",
  "problem-list-item",
  "encounter-diagnosis",
  "health-concern",
  "clinical-note",
  "sdoh",
  "imaging",
  "survey",
];

/** The first six scopes of every token: launch and identity scopes, and one v2, v1 and granular scope. */
export const SCOPE_VOLUME_BASE = [
  "launch/patient",
  "openid",
  "fhirUser",
  "patient/Observation.rs",
  "user/Practitioner.read",
  "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item",
];

/**
 * A scope claim of `n` scopes: SCOPE_VOLUME_BASE, then scopes on every other resource type in turn,
 * 40 % v2 (patient/T.rs, user/T.rs), 40 % v1 (user/T.read, patient/T.read) and 20 % granular
 * (patient/T.rs?category=<system>|<code>, on the types that have a category).
 */
export function scopeVolumeClaim(n) {
  const scopes = SCOPE_VOLUME_BASE.slice(0, n);
  for (let i = 0, g = 0; scopes.length < n; i++) {
    const type = OTHER_TYPES[i % OTHER_TYPES.length];
    const kind = (i + Math.floor(i / OTHER_TYPES.length)) % 5;
    if (kind === 4) {
      const ct = CATEGORY_TYPES[g % CATEGORY_TYPES.length];
      const code = CATEGORY_CODES[Math.floor(g / CATEGORY_TYPES.length) % CATEGORY_CODES.length];
      const kebab = ct.replace(/[a-z][A-Z]/g, (m) => `${m[0]}-${m[1]}`).toLowerCase();
      scopes.push(
        `patient/${ct}.rs?category=http://terminology.hl7.org/CodeSystem/${kebab}-category|${code}`,
      );
      g++;
    } else {
      scopes.push(
        `${["patient", "user", "user", "patient"][kind]}/${type}.${["rs", "read", "rs", "read"][kind]}`,
      );
    }
  }
  return scopes.join(" ");
}

/** The practitioner's read of Observation/o1 (mix().read) with a token of `n` scopes. */
export function scopeVolumeRead(n) {
  const read = mix().read;
  return { ...read, claims: { ...read.claims, scope: scopeVolumeClaim(n) } };
}

export const SCOPE_VOLUMES = [6, 30, 60, 150, 300];
