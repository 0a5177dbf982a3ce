/** The data set the proxy's HTTP tests seed into the fake FHIR server. */
import type { Res } from "./fake-fhir.js";

const obs = (id: string, extra: Record<string, unknown>): Res => ({
  resourceType: "Observation",
  id,
  status: "final",
  code: { coding: [{ system: "http://loinc.org", code: "1234-5" }] },
  ...extra,
});
const ref = (r: string) => ({ reference: r });

/** An Observation of `subject` for a write test (extra elements override the defaults). */
export const observation = (id: string, subject: string, extra: Record<string, unknown> = {}): Res => ({
  resourceType: "Observation",
  id,
  status: "final",
  code: { text: "x" },
  subject: { reference: subject },
  ...extra,
});

export const SEED: Res[] = [
  { resourceType: "Patient", id: "123", name: [{ family: "Alpha" }] },
  { resourceType: "Patient", id: "999", name: [{ family: "Beta" }] },
  {
    resourceType: "Patient",
    id: "777",
    name: [{ family: "Gamma" }],
    link: [{ other: ref("Patient/123"), type: "seealso" }],
  },
  { resourceType: "Practitioner", id: "prac1", name: [{ family: "Doc" }] },
  { resourceType: "Organization", id: "org1", name: "Clinic" },
  obs("o-123-a", { subject: ref("Patient/123"), performer: [ref("Practitioner/prac1")] }),
  obs("o-123-b", {
    subject: ref("Patient/123"),
    code: { coding: [{ system: "http://loinc.org", code: "8867-4" }] },
    performer: [ref("Organization/org1")],
  }),
  obs("o-123-perf", { subject: ref("Patient/999"), performer: [ref("Patient/123")] }),
  obs("o-123-perf-only", { performer: [ref("Patient/123")] }),
  obs("o-999-a", { subject: ref("Patient/999"), performer: [ref("Practitioner/prac1")] }),
  obs("o-999-b", {
    subject: ref("Patient/999"),
    code: { coding: [{ system: "http://loinc.org", code: "8867-4" }] },
  }),
  obs("o-123-secret", {
    subject: ref("Patient/123"),
    meta: { security: [{ system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" }] },
  }),
  ...Array.from({ length: 12 }, (_, i) =>
    obs(`o-123-p${String(i).padStart(2, "0")}`, {
      subject: ref("Patient/123"),
      code: { coding: [{ code: "page" }] },
    }),
  ),
  ...Array.from({ length: 6 }, (_, i) =>
    obs(`o-999-p${String(i).padStart(2, "0")}`, {
      subject: ref("Patient/999"),
      code: { coding: [{ code: "page" }] },
    }),
  ),
];
