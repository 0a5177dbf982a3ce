#!/usr/bin/env node
// Synthetic FHIR R4 data for the end-to-end tests against a real FHIR server, with its ground truth.
//
//   node test/e2e/data/generate.mjs [--out build/e2e/data] [--seed 20261202] [--bulk 250]
//
// Writes <out>/transaction.json (one FHIR transaction Bundle: every resource as a PUT with its
// client id, in dependency order) and <out>/truth.json (who owns what; see test/e2e/README.md).
// The output is a pure function of the arguments: the same seed gives byte-identical files.
//
// The truth is computed from what this generator built, with its own copy of the R4 Patient
// CompartmentDefinition (below) — never by asking smart-authz's policy. The e2e smoke test checks it
// against what the FHIR server itself answers.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const DEFAULT_SEED = 20261202;
export const DEFAULT_BULK = 250;

const CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const LOINC = "http://loinc.org";
const SNOMED = "http://snomed.info/sct";
const RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm";
const OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category";
/** A base URL that is not the server under test: references to it are *other* patients. */
export const ELSEWHERE = "https://elsewhere.example/fhir";

/**
 * The R4 Patient CompartmentDefinition (http://hl7.org/fhir/R4/compartmentdefinition-patient.html),
 * for the types this generator creates: for each type, the search parameters that put a resource
 * into a patient's compartment, and the elements each one reads. Types with no entry (Practitioner,
 * PractitionerRole, Organization, Location, Medication) are in no Patient compartment.
 */
export const PATIENT_COMPARTMENT = {
  Patient: { link: (r) => (r.link ?? []).map((l) => l.other) },
  RelatedPerson: { patient: (r) => [r.patient] },
  Encounter: { patient: (r) => [r.subject] },
  Observation: { subject: (r) => [r.subject], performer: (r) => r.performer ?? [] },
  Condition: { patient: (r) => [r.subject], asserter: (r) => [r.asserter] },
  MedicationRequest: { subject: (r) => [r.subject] },
  CareTeam: {
    patient: (r) => [r.subject],
    participant: (r) => (r.participant ?? []).map((p) => p.member),
  },
  List: { subject: (r) => [r.subject], source: (r) => [r.source] },
  Provenance: { patient: (r) => r.target ?? [] },
};
export const NO_COMPARTMENT_TYPES = [
  "Location",
  "Medication",
  "Organization",
  "Practitioner",
  "PractitionerRole",
];

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A name-based UUID (SHA-256 of the seed and the resource's Type/id), for entry fullUrls. */
function uuidFor(seed, key) {
  const h = createHash("sha256").update(`${seed}:${key}`).digest("hex");
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The id of the local patient a reference names (relative, optionally versioned), or null. */
export function localPatientId(reference) {
  if (typeof reference !== "string") return null;
  const m = /^Patient\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(reference);
  return m ? m[1] : null;
}

/** Every `reference` string in a resource, with the dotted path it was found at. */
export function referencesIn(resource) {
  const out = [];
  const walk = (node, path) => {
    if (Array.isArray(node)) {
      node.forEach((v) => walk(v, path));
    } else if (node && typeof node === "object") {
      for (const [k, v] of Object.entries(node)) {
        if (k === "reference" && typeof v === "string") out.push({ path, reference: v });
        else walk(v, path ? `${path}.${k}` : k);
      }
    }
  };
  walk(resource, "");
  return out;
}

const ref = (reference) => ({ reference });
const code = (system, c, display) => ({ coding: [{ system, code: c, display }], text: display });

/** Build every resource, in dependency order (a resource only references earlier ones). */
export function buildResources({ seed = DEFAULT_SEED, bulk = DEFAULT_BULK } = {}) {
  const rnd = prng(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const day0 = Date.UTC(2020, 0, 1);
  const dateTime = () =>
    new Date(day0 + int(0, 5 * 365) * 86400000 + int(0, 86399) * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
  const resources = [];
  const add = (r) => {
    resources.push(r);
    return r;
  };

  // --- Outside every Patient compartment ------------------------------------------------------
  add({
    resourceType: "Organization",
    id: "org-1",
    active: true,
    name: "Good Health Clinic",
  });
  add({
    resourceType: "Organization",
    id: "org-2",
    active: true,
    name: "Riverside Laboratory",
  });
  add({
    resourceType: "Location",
    id: "loc-1",
    status: "active",
    name: "Good Health Clinic, Ward A",
    managingOrganization: ref("Organization/org-1"),
  });
  add({
    resourceType: "Location",
    id: "loc-2",
    status: "active",
    name: "Riverside Laboratory, Draw Station",
    managingOrganization: ref("Organization/org-2"),
  });
  const practitioners = [
    ["prac-1", "Adams", "Ada"],
    ["prac-2", "Brown", "Ben"],
  ];
  for (const [id, family, given] of practitioners) {
    add({
      resourceType: "Practitioner",
      id,
      active: true,
      name: [{ family, given: [given], prefix: ["Dr."] }],
    });
  }
  add({
    resourceType: "PractitionerRole",
    id: "role-1",
    active: true,
    practitioner: ref("Practitioner/prac-1"),
    organization: ref("Organization/org-1"),
    location: [ref("Location/loc-1")],
    code: [code(SNOMED, "59058001", "General physician")],
  });
  add({
    resourceType: "PractitionerRole",
    id: "role-2",
    active: true,
    practitioner: ref("Practitioner/prac-2"),
    organization: ref("Organization/org-2"),
    location: [ref("Location/loc-2")],
    code: [code(SNOMED, "61894003", "Endocrinologist")],
  });
  const medications = [
    ["med-1", "860975", "metformin hydrochloride 500 MG Oral Tablet"],
    ["med-2", "314076", "lisinopril 10 MG Oral Tablet"],
    ["med-3", "617311", "atorvastatin 20 MG Oral Tablet"],
  ];
  for (const [id, c, display] of medications) {
    add({ resourceType: "Medication", id, status: "active", code: code(RXNORM, c, display) });
  }

  // --- Patients -------------------------------------------------------------------------------
  // 888 links to 123 (link.other): by the R4 CompartmentDefinition Patient/888 is then in 123's
  // compartment too ("link" parameter). smart-authz's default (follow_patient_link: false) is R5's.
  const patients = [
    { id: "123", family: "Alpha", given: "Alice", gender: "female", birthDate: "1970-03-14", gp: "prac-1" },
    { id: "999", family: "Beta", given: "Bob", gender: "male", birthDate: "1985-11-02", gp: "prac-2" },
    { id: "777", family: "Gamma", given: "Carol", gender: "female", birthDate: "2001-07-30", gp: "prac-1" },
    {
      id: "888",
      family: "Delta",
      given: "Dan",
      gender: "male",
      birthDate: "1962-01-21",
      gp: "prac-2",
      linkTo: "123",
    },
  ];
  for (const p of patients) {
    add({
      resourceType: "Patient",
      id: p.id,
      active: true,
      identifier: [{ system: "urn:oid:2.16.840.1.113883.19.5", value: `MRN-${p.id}` }],
      name: [{ family: p.family, given: [p.given] }],
      gender: p.gender,
      birthDate: p.birthDate,
      generalPractitioner: [ref(`Practitioner/${p.gp}`)],
      managingOrganization: ref("Organization/org-1"),
      ...(p.linkTo ? { link: [{ other: ref(`Patient/${p.linkTo}`), type: "seealso" }] } : {}),
    });
  }
  add({
    resourceType: "RelatedPerson",
    id: "rp-123",
    active: true,
    patient: ref("Patient/123"),
    relationship: [code("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "MTH", "mother")],
    name: [{ family: "Alpha", given: ["Martha"] }],
  });
  add({
    resourceType: "RelatedPerson",
    id: "rp-999",
    active: true,
    patient: ref("Patient/999"),
    relationship: [code("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "SPS", "spouse")],
    name: [{ family: "Beta", given: ["Betty"] }],
  });

  // --- Encounters -----------------------------------------------------------------------------
  const encounters = { 123: 3, 999: 2, 777: 2, 888: 1 };
  const encountersOf = {};
  for (const [pid, n] of Object.entries(encounters)) {
    encountersOf[pid] = [];
    for (let i = 1; i <= n; i++) {
      const id = `enc-${pid}-${i}`;
      const site = pick([1, 2]);
      const start = dateTime();
      add({
        resourceType: "Encounter",
        id,
        status: i === n ? "in-progress" : "finished",
        class: {
          system: "http://terminology.hl7.org/CodeSystem/v3-ActCode",
          code: "AMB",
          display: "ambulatory",
        },
        subject: ref(`Patient/${pid}`),
        participant: [{ individual: ref(`Practitioner/prac-${site}`) }],
        period: { start },
        location: [{ location: ref(`Location/loc-${site}`) }],
        serviceProvider: ref(`Organization/org-${site}`),
      });
      encountersOf[pid].push(id);
    }
  }
  // A psychiatric encounter, labelled (v3-ActCode PSY, Confidentiality R).
  add({
    resourceType: "Encounter",
    id: "enc-123-psy",
    meta: {
      security: [
        { system: ACT_CODE, code: "PSY", display: "psychiatry disorder information sensitivity" },
        { system: CONFIDENTIALITY, code: "R", display: "restricted" },
      ],
    },
    status: "finished",
    class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB" },
    subject: ref("Patient/123"),
    participant: [{ individual: ref("Practitioner/prac-2") }],
    period: { start: dateTime() },
    serviceProvider: ref("Organization/org-1"),
  });

  // --- Observations ---------------------------------------------------------------------------
  const vitals = [
    ["8867-4", "Heart rate", "/min", 50, 110],
    ["9279-1", "Respiratory rate", "/min", 10, 24],
    ["8310-5", "Body temperature", "Cel", 36, 39],
    ["29463-7", "Body weight", "kg", 45, 120],
    ["8302-2", "Body height", "cm", 150, 200],
    ["2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 180],
  ];
  const observation = (id, fields, { category = "vital-signs", vital = pick(vitals) } = {}) => {
    const [c, display, unit, lo, hi] = vital;
    return add({
      resourceType: "Observation",
      id,
      ...(fields.meta ? { meta: fields.meta } : {}),
      status: "final",
      category: [code(OBS_CATEGORY, category, category)],
      code: code(LOINC, c, display),
      ...Object.fromEntries(Object.entries(fields).filter(([k]) => k !== "meta")),
      effectiveDateTime: dateTime(),
      valueQuantity: { value: int(lo, hi), unit, system: "http://unitsofmeasure.org", code: unit },
    });
  };
  // Per-patient series; patient 123's is long enough that _count=50 needs several pages.
  const series = { 123: bulk, 999: 30, 777: 20, 888: 5 };
  for (const [pid, n] of Object.entries(series)) {
    for (let i = 1; i <= n; i++) {
      observation(`obs-${pid}-${String(i).padStart(4, "0")}`, {
        subject: ref(`Patient/${pid}`),
        encounter: ref(`Encounter/${pick(encountersOf[pid])}`),
        performer: [ref(`Practitioner/${pick(["prac-1", "prac-2"])}`)],
      });
    }
  }
  // Reference shapes that decide compartment membership.
  observation(
    "obs-123-self-reported-1",
    { performer: [ref("Patient/123")] }, // performer only, no subject
    { category: "survey" },
  );
  observation("obs-123-self-reported-2", { performer: [ref("Patient/123")] }, { category: "survey" });
  observation("obs-123-subject-and-performer", {
    subject: ref("Patient/123"),
    performer: [ref("Patient/123")],
  });
  observation("obs-999-performed-by-123", {
    subject: ref("Patient/999"), // in 999's compartment (subject) and 123's (performer)
    performer: [ref("Patient/123")],
  });
  observation("obs-999-focus-123", {
    subject: ref("Patient/999"), // focus is not a compartment parameter: 999's only
    focus: [ref("Patient/123")],
  });
  observation("obs-123-versioned-subject", { subject: ref("Patient/123/_history/1") });
  observation("obs-999-performed-by-related-person", {
    subject: ref("Patient/999"),
    performer: [ref("RelatedPerson/rp-999")],
  });
  // Another server's patient 123: not this server's Patient/123, so in no local compartment.
  observation("obs-elsewhere-123", { subject: ref(`${ELSEWHERE}/Patient/123`) });
  // Labelled records.
  const conf = (c, display) => ({ system: CONFIDENTIALITY, code: c, display });
  const act = (c, display) => ({ system: ACT_CODE, code: c, display });
  const HIV = act("HIV", "HIV/AIDS information sensitivity");
  const PSY = act("PSY", "psychiatry disorder information sensitivity");
  const R = conf("R", "restricted");
  const V = conf("V", "very restricted");
  const N = conf("N", "normal");
  const hivTest = ["75622-1", "HIV 1 and 2 tests - Meaningful Use set", "{titer}", 0, 1];
  observation("obs-123-restricted", { meta: { security: [R] }, subject: ref("Patient/123") });
  observation("obs-123-very-restricted", { meta: { security: [V] }, subject: ref("Patient/123") });
  observation("obs-123-normal-label", { meta: { security: [N] }, subject: ref("Patient/123") });
  observation(
    "obs-123-hiv",
    { meta: { security: [HIV, R] }, subject: ref("Patient/123") },
    { category: "laboratory", vital: hivTest },
  );
  observation(
    "obs-999-hiv",
    { meta: { security: [HIV] }, subject: ref("Patient/999") },
    { category: "laboratory", vital: hivTest },
  );
  observation(
    "obs-123-psy",
    { meta: { security: [PSY] }, subject: ref("Patient/123") },
    { category: "survey", vital: ["44249-1", "PHQ-9 quick depression assessment panel", "{score}", 0, 27] },
  );

  // --- Conditions -----------------------------------------------------------------------------
  const condition = (id, fields, [c, display]) =>
    add({
      resourceType: "Condition",
      id,
      ...(fields.meta ? { meta: fields.meta } : {}),
      clinicalStatus: code("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
      code: code(SNOMED, c, display),
      ...Object.fromEntries(Object.entries(fields).filter(([k]) => k !== "meta")),
      recordedDate: dateTime().slice(0, 10),
    });
  condition("cond-123-diabetes", { subject: ref("Patient/123"), asserter: ref("Practitioner/prac-1") }, [
    "44054006",
    "Diabetes mellitus type 2",
  ]);
  condition("cond-123-hypertension", { subject: ref("Patient/123"), asserter: ref("RelatedPerson/rp-123") }, [
    "38341003",
    "Hypertensive disorder",
  ]);
  condition("cond-123-hiv", { meta: { security: [HIV, R] }, subject: ref("Patient/123") }, [
    "86406008",
    "Human immunodeficiency virus infection",
  ]);
  condition("cond-123-depression", { meta: { security: [PSY, R] }, subject: ref("Patient/123") }, [
    "35489007",
    "Depressive disorder",
  ]);
  condition("cond-999-asthma", { subject: ref("Patient/999") }, ["195967001", "Asthma"]);
  // Asserted by patient 123 about patient 999: in both compartments (asserter is a parameter).
  condition("cond-999-asserted-by-123", { subject: ref("Patient/999"), asserter: ref("Patient/123") }, [
    "271737000",
    "Anemia",
  ]);
  condition("cond-777-allergy", { subject: ref("Patient/777") }, ["300913006", "Shellfish allergy"]);

  // --- Medications ----------------------------------------------------------------------------
  const medicationRequest = (id, pid, med, prac) =>
    add({
      resourceType: "MedicationRequest",
      id,
      status: "active",
      intent: "order",
      medicationReference: ref(`Medication/${med}`),
      subject: ref(`Patient/${pid}`),
      authoredOn: dateTime().slice(0, 10),
      requester: ref(`Practitioner/${prac}`),
    });
  medicationRequest("mr-123-1", "123", "med-1", "prac-1");
  medicationRequest("mr-123-2", "123", "med-2", "prac-1");
  medicationRequest("mr-999-1", "999", "med-3", "prac-2");
  medicationRequest("mr-777-1", "777", "med-1", "prac-1");

  // --- Care teams and lists (practitioner ↔ patient relationships) ----------------------------
  add({
    resourceType: "CareTeam",
    id: "ct-123",
    status: "active",
    name: "Alice Alpha diabetes care team",
    subject: ref("Patient/123"),
    participant: [{ member: ref("Practitioner/prac-1") }, { member: ref("RelatedPerson/rp-123") }],
    managingOrganization: [ref("Organization/org-1")],
  });
  add({
    resourceType: "CareTeam",
    id: "ct-999",
    status: "active",
    name: "Bob Beta care team",
    subject: ref("Patient/999"),
    // Patient 123 cares for 999: the team is in both compartments (participant is a parameter).
    participant: [{ member: ref("Practitioner/prac-2") }, { member: ref("Patient/123") }],
  });
  add({
    resourceType: "CareTeam",
    id: "ct-777",
    status: "active",
    name: "Carol Gamma care team",
    subject: ref("Patient/777"),
    participant: [{ member: ref("Practitioner/prac-1") }, { member: ref("Practitioner/prac-2") }],
  });
  const panel = (id, prac, pids) =>
    add({
      resourceType: "List",
      id,
      status: "current",
      mode: "working",
      title: `Patient panel of Practitioner/${prac}`,
      code: code("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "patients", "Patients"),
      source: ref(`Practitioner/${prac}`), // no subject: in no patient's compartment
      entry: pids.map((p) => ({ item: ref(`Patient/${p}`) })),
    });
  panel("list-panel-prac-1", "prac-1", ["123", "777"]);
  panel("list-panel-prac-2", "prac-2", ["999", "888"]);
  add({
    resourceType: "List",
    id: "list-obs-123",
    status: "current",
    mode: "snapshot",
    title: "Observations flagged for review",
    subject: ref("Patient/123"),
    source: ref("Practitioner/prac-1"),
    // The last item is another patient's record: _list returns it although the List is 123's.
    entry: [
      ...[1, 2, 3, 4, 5].map((i) => ({ item: ref(`Observation/obs-123-000${i}`) })),
      { item: ref("Observation/obs-999-0001") },
    ],
  });

  // --- Provenance -----------------------------------------------------------------------------
  const provenance = (id, targets, agent) =>
    add({
      resourceType: "Provenance",
      id,
      target: targets.map(ref),
      recorded: `${dateTime().slice(0, 19)}Z`,
      agent: [{ who: ref(agent) }],
    });
  provenance("prov-patient-123", ["Patient/123"], "Practitioner/prac-1");
  // Targets a record of 123 but not Patient/123: by R4 in no patient's compartment.
  provenance("prov-obs-123", ["Observation/obs-123-0001"], "Practitioner/prac-1");
  provenance("prov-hiv-123", ["Observation/obs-123-hiv", "Condition/cond-123-hiv"], "Practitioner/prac-2");
  // Several targets, one of them Patient/999: in 999's compartment only.
  provenance(
    "prov-multi",
    ["Observation/obs-123-0002", "Observation/obs-999-0001", "Patient/999"],
    "Organization/org-2",
  );
  provenance("prov-cond-999", ["Condition/cond-999-asthma"], "Practitioner/prac-2");

  return resources;
}

/** The ground truth for a list of resources (see test/e2e/README.md for the format). */
export function computeTruth(resources, { seed = DEFAULT_SEED, bulk = DEFAULT_BULK } = {}) {
  const key = (r) => `${r.resourceType}/${r.id}`;
  const known = new Set(resources.map(key));
  const patients = resources.filter((r) => r.resourceType === "Patient").map((r) => r.id);
  const sortedKeys = (o) =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );

  const counts = {};
  const compartments = Object.fromEntries(patients.map((p) => [p, {}]));
  const labels = {};
  const provenance = {};
  const externalReferences = {};
  const lists = {};
  const careTeams = {};
  const shared = Object.fromEntries(NO_COMPARTMENT_TYPES.map((t) => [t, []]));
  const members = (pid, k, param) => {
    const c = compartments[pid];
    if (!c) throw new Error(`${k}: ${param} names Patient/${pid}, which the data set does not have`);
    (c[k] ??= []).includes(param) || c[k].push(param);
  };

  for (const r of resources) {
    const k = key(r);
    counts[r.resourceType] = (counts[r.resourceType] ?? 0) + 1;
    // Every relative reference must resolve inside the data set (the server enforces it too).
    for (const { path, reference } of referencesIn(r)) {
      if (/^https?:\/\//.test(reference)) {
        (externalReferences[k] ??= []).push({ path, reference });
      } else if (!known.has(reference.replace(/\/_history\/[^/]+$/, ""))) {
        throw new Error(`${k}.${path}: reference ${reference} does not resolve in the data set`);
      }
    }
    if (r.resourceType === "Patient") members(r.id, k, "_id");
    const params = PATIENT_COMPARTMENT[r.resourceType];
    if (params) {
      for (const [param, read] of Object.entries(params)) {
        for (const reference of read(r)) {
          const pid = localPatientId(reference?.reference);
          if (pid !== null) members(pid, k, param);
        }
      }
    } else if (NO_COMPARTMENT_TYPES.includes(r.resourceType)) {
      shared[r.resourceType].push(k);
    } else {
      throw new Error(`${k}: no Patient compartment rule for ${r.resourceType}`);
    }
    if (r.meta?.security?.length) {
      labels[k] = r.meta.security.map(({ system, code }) => ({ system, code }));
    }
    if (r.resourceType === "Provenance") provenance[k] = r.target.map((t) => t.reference);
    if (r.resourceType === "List") lists[k] = r.entry.map((e) => e.item.reference);
    if (r.resourceType === "CareTeam") {
      careTeams[k] = {
        subject: r.subject.reference,
        participants: r.participant.map((p) => p.member.reference),
      };
    }
  }

  // Which patients each practitioner is connected to, and how (for user-level tests later).
  const practitionerPatients = {};
  const relate = (prac, how, patient) => {
    const p = (practitionerPatients[prac] ??= { generalPractitioner: [], careTeam: [], panel: [] });
    if (!p[how].includes(patient)) p[how].push(patient);
  };
  for (const r of resources) {
    if (r.resourceType === "Patient") {
      for (const gp of r.generalPractitioner ?? []) relate(gp.reference, "generalPractitioner", key(r));
    } else if (r.resourceType === "CareTeam") {
      for (const p of r.participant) {
        if (p.member.reference.startsWith("Practitioner/"))
          relate(p.member.reference, "careTeam", r.subject.reference);
      }
    } else if (r.resourceType === "List" && r.source?.reference?.startsWith("Practitioner/")) {
      for (const e of r.entry) {
        if (e.item.reference.startsWith("Patient/")) relate(r.source.reference, "panel", e.item.reference);
      }
    }
  }
  for (const p of Object.values(practitionerPatients)) for (const v of Object.values(p)) v.sort();

  const sortedCompartments = {};
  for (const [pid, members_] of Object.entries(compartments)) {
    sortedCompartments[pid] = sortedKeys(
      Object.fromEntries(Object.entries(members_).map(([k, v]) => [k, [...v].sort()])),
    );
  }
  return {
    format: "smart-authz e2e truth v1",
    generator: "test/e2e/data/generate.mjs",
    seed,
    fhirVersion: "4.0.1",
    total: resources.length,
    counts: sortedKeys(counts),
    ids: sortedKeys(
      resources.reduce((acc, r) => {
        (acc[r.resourceType] ??= []).push(r.id);
        return acc;
      }, {}),
    ),
    patients,
    compartmentRule:
      "R4 Patient CompartmentDefinition; for each Type/id the parameters that put it in the patient's compartment (_id for the Patient itself)",
    compartmentParams: {
      Patient: ["_id", ...Object.keys(PATIENT_COMPARTMENT.Patient)],
      ...Object.fromEntries(
        Object.entries(PATIENT_COMPARTMENT)
          .filter(([t]) => t !== "Patient")
          .map(([t, params]) => [t, Object.keys(params)]),
      ),
    },
    compartments: sortedCompartments,
    sharedTypes: shared,
    labels: sortedKeys(labels),
    provenance: sortedKeys(provenance),
    externalReferences: sortedKeys(externalReferences),
    lists: sortedKeys(lists),
    careTeams: sortedKeys(careTeams),
    practitionerPatients: sortedKeys(practitionerPatients),
    paging: { patient: "123", observationsWithSubject: bulk, suggestedCount: 50 },
  };
}

/** The transaction Bundle: every resource a PUT with its client id, in dependency order. */
export function transactionBundle(resources, { seed = DEFAULT_SEED } = {}) {
  return {
    resourceType: "Bundle",
    type: "transaction",
    entry: resources.map((r) => ({
      // A urn:uuid fullUrl on every entry. Without fullUrls HAPI 8.8.0 rewrites an absolute
      // reference such as https://elsewhere.example/fhir/Patient/123 to the local Patient/123 when
      // the same transaction PUTs Patient/123 (see test/e2e/README.md).
      fullUrl: `urn:uuid:${uuidFor(seed, `${r.resourceType}/${r.id}`)}`,
      resource: r,
      request: { method: "PUT", url: `${r.resourceType}/${r.id}` },
    })),
  };
}

export function generate({ seed = DEFAULT_SEED, bulk = DEFAULT_BULK } = {}) {
  const resources = buildResources({ seed, bulk });
  return {
    transaction: transactionBundle(resources, { seed }),
    truth: computeTruth(resources, { seed, bulk }),
  };
}

function parseArgs(argv) {
  const opts = { out: "build/e2e/data", seed: DEFAULT_SEED, bulk: DEFAULT_BULK };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const integer = (v, min, max) => {
      if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
        throw new Error(`${a} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
      }
      return Number(v);
    };
    if (a === "--out") opts.out = value();
    else if (a === "--seed") opts.seed = integer(value(), 0, 2 ** 32 - 1);
    else if (a === "--bulk") opts.bulk = integer(value(), 6, 5000);
    else
      throw new Error(
        `unknown argument ${JSON.stringify(a)} (usage: generate.mjs [--out DIR] [--seed N] [--bulk N])`,
      );
  }
  return opts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`generate.mjs: ${e.message}`);
    process.exit(2);
  }
  const { transaction, truth } = generate(opts);
  mkdirSync(opts.out, { recursive: true });
  const write = (name, value) => {
    const file = join(opts.out, name);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
    return file;
  };
  const t = write("transaction.json", transaction);
  const g = write("truth.json", truth);
  console.log(`wrote ${t} (${truth.total} resources) and ${g} (seed ${opts.seed})`);
}
