/**
 * Property-based tests of the REAL compiled policy, a small sample in every `vitest run` (the same
 * properties run with FUZZ_RUNS=100000 inputs in `make fuzz`, see test/fuzz/), and the minimal
 * counterexamples of the policy and host bugs those properties found, pinned one by one.
 *
 * A pinned bug is an `it.fails`: it asserts the CORRECT behaviour and currently fails. When the bug
 * is fixed it starts passing, `it.fails` reports that, and then it becomes an `it`. The properties
 * tolerate no known bug: a counterexample always fails them.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Decision, DecisionInput } from "../src/core/contract.js";
import type { PolicyEngine } from "../src/policy/engine.js";
import { fuzzRuns } from "./fuzz/support/budget.js";
import { ALL_PROPERTIES } from "./fuzz/support/properties.js";
import { accessLoss } from "./fuzz/support/oracle.js";
import { runProperties } from "./fuzz/support/run.js";
import { SECURITY_PROPERTIES } from "./fuzz/support/security-properties.js";
import { loadRealEngine } from "./helpers/policy.js";

/** About 2,000 inputs over all properties: a few seconds. FUZZ_RUNS overrides it here too. */
const SAMPLE = process.env.FUZZ_RUNS ? fuzzRuns(2_000) : 2_000;

describe("policy properties (sample)", () => {
  runProperties(null, ALL_PROPERTIES, SAMPLE, 60_000);
});

describe("security properties (sample)", () => {
  runProperties(null, SECURITY_PROPERTIES, SAMPLE, 60_000);
});

let engine: PolicyEngine;
beforeAll(async () => {
  engine = await loadRealEngine();
});
const decide = (input: unknown): Decision => engine.decide(input as DecisionInput);
const firstReason = (d: Decision) => d.reasons?.[0]?.code;

const OBS_IN_123 = { resourceType: "Observation", id: "1", subject: { reference: "Patient/123" } };

function fhirpathPatch(path: string, value: Record<string, unknown>) {
  return {
    resourceType: "Parameters",
    parameter: [
      {
        name: "operation",
        part: [
          { name: "type", valueCode: "replace" },
          { name: "path", valueString: path },
          { name: "value", ...value },
        ],
      },
    ],
  };
}

describe("pinned counterexamples of known policy bugs", () => {
  // KB-1 (found by P3, fixed in f9e1d82): compartment.linking_params had two definitions that both
  // applied to "Patient"; any patient/ search on Patient with a parameter was an OPA conflict error
  // (deny 500), and adding patient/Patient.rs to user/Patient.rs removed access. Regression tests:
  it("KB-1 (fixed): a patient/ token may search Patient by its own id", () => {
    const d = decide({
      claims: { scope: "patient/Patient.rs", patient: "123" },
      request: { method: "GET", url: "Patient?_id=123" },
    });
    expect(d.decision, JSON.stringify(d)).not.toBe("deny");
  });

  it("KB-1 (fixed): adding patient/Patient.rs to user/Patient.rs keeps Patient?name=x allowed", () => {
    const request = { method: "GET", url: "Patient?name=x" };
    const base = decide({
      claims: { scope: "user/Patient.rs", patient: "123", fhirUser: "Practitioner/9" },
      request,
    });
    // Since policy.user.access (relationships by default) the user/ grant is narrowed to the
    // practitioner's own patients; adding a patient/ grant must still not remove that access.
    expect(base.decision).toBe("filter");
    const more = decide({
      claims: { scope: "user/Patient.rs patient/Patient.rs", patient: "123", fhirUser: "Practitioner/9" },
      request,
    });
    expect(accessLoss(base, more), JSON.stringify(more)).toBeUndefined();
  });

  // KB-2 (found by P7 and P3, fixed in 0b565c4): `?category=a&category=b` made constraint.narrowing
  // build an object with one key twice ("object insert conflict", deny 500 for every search). The
  // policy now treats a repeated parameter as not narrowable: the scope grants nothing (403).
  it("KB-2 (fixed): a scope repeating a constraint parameter gets a decision, not a policy error", () => {
    const d = decide({
      claims: { scope: "user/Observation.rs?category=laboratory&category=vital-signs" },
      request: { method: "GET", url: "Observation" },
    });
    expect(d.status, JSON.stringify(d)).not.toBe(500);
  });

  it("KB-2 (fixed): a resource with only one of two repeated-parameter values is never released", () => {
    const scope = "user/Observation.rs?category=laboratory&category=vital-signs";
    const one = { ...OBS_IN_123, category: [{ coding: [{ code: "laboratory" }] }] };
    const d = decide({ claims: { scope }, request: { method: "GET", url: "Observation/1" }, resource: one });
    expect(d.decision).toBe("deny");
  });

  // FIXED POLICY BUG KB-3 (regression test): RFC 6902 "" is the document root; `replace`/`add` at "" replaces the
  // whole resource. json_patch_op_safe takes the first segment of "" (""), which is not guarded.
  it("KB-3 (fixed): a JSON Patch replacing the whole resource cannot move it to another patient", () => {
    const d = decide({
      claims: { scope: "patient/Observation.rus", patient: "123" },
      request: {
        method: "PATCH",
        url: "Observation/1",
        body: [
          {
            op: "replace",
            path: "",
            value: { resourceType: "Observation", id: "1", subject: { reference: "Patient/456" } },
          },
        ],
      },
      resource: OBS_IN_123,
    });
    expect(d.decision, JSON.stringify(d)).toBe("deny");
  });

  it("KB-3 control: the same change spelled /subject is denied", () => {
    const d = decide({
      claims: { scope: "patient/Observation.rus", patient: "123" },
      request: {
        method: "PATCH",
        url: "Observation/1",
        body: [{ op: "replace", path: "/subject", value: { reference: "Patient/456" } }],
      },
      resource: OBS_IN_123,
    });
    expect(firstReason(d)).toBe("patch-touches-compartment-link");
  });

  // FIXED POLICY BUG KB-4 (regression test): FHIRPath Patch `path` is a FHIRPath expression, but fhirpath_patch_op_safe
  // strips "<Type>." and splits at "." — an indexer, a function, a delimited identifier or another
  // root escapes the guard. HAPI documents paths like "Patient.identifier[0]" as the normal form.
  it.each([
    "Observation.performer[0]",
    "Observation.where(true).performer",
    "Observation.`performer`",
    "%resource.performer",
    "(Observation.performer)",
  ])("KB-4 (fixed): FHIRPath Patch path %s cannot rewrite a compartment link", (path) => {
    const d = decide({
      claims: { scope: "patient/Observation.rus", patient: "123" },
      request: {
        method: "PATCH",
        url: "Observation/1",
        body: fhirpathPatch(path, { valueReference: { reference: "Patient/456" } }),
      },
      resource: { resourceType: "Observation", id: "1", performer: [{ reference: "Patient/123" }] },
    });
    expect(d.decision, JSON.stringify(d)).toBe("deny");
  });

  it("KB-4 (fixed): FHIRPath Patch Observation.category[0] cannot leave a constrained scope", () => {
    const d = decide({
      claims: { scope: "user/Observation.rus?category=laboratory", fhirUser: "Practitioner/9" },
      request: {
        method: "PATCH",
        url: "Observation/1",
        body: fhirpathPatch("Observation.category[0]", {
          valueCodeableConcept: { coding: [{ code: "social-history" }] },
        }),
      },
      resource: { ...OBS_IN_123, category: [{ coding: [{ code: "laboratory" }] }] },
    });
    expect(d.decision, JSON.stringify(d)).toBe("deny");
  });

  it("KB-4 control: the canonical spelling Observation.performer is denied", () => {
    const d = decide({
      claims: { scope: "patient/Observation.rus", patient: "123" },
      request: {
        method: "PATCH",
        url: "Observation/1",
        body: fhirpathPatch("Observation.performer", { valueReference: { reference: "Patient/456" } }),
      },
      resource: { resourceType: "Observation", id: "1", performer: [{ reference: "Patient/123" }] },
    });
    expect(firstReason(d)).toBe("patch-touches-compartment-link");
  });

  // FIXED POLICY BUG KB-5 (regression test): reference_tail accepted an absolute reference on ANY
  // server ("https://<anything>/Patient/123"); the digest (§2.6) says base = this server. Now an
  // absolute reference names this server's patient only on a configured `fhir.base_urls` base.
  it("KB-5 (fixed): another server's Patient/123 does not put a resource in this server's patient 123 compartment", () => {
    const d = decide({
      claims: { scope: "patient/Observation.rs", patient: "123" },
      request: { method: "GET", url: "Observation/1" },
      resource: {
        resourceType: "Observation",
        id: "1",
        subject: { reference: "https://other-ehr.example.net/fhir/Patient/123" },
      },
    });
    expect(d.decision, JSON.stringify(d)).toBe("deny");
  });

  // FIXED POLICY BUG KB-6 (regression test) (found by P6 "search-unfiltered"): Patient.link is not followed by default
  // (config.follow_patient_link = false), yet a patient/ search Patient?link=Patient/123 is allowed
  // as is, with no narrowing: it returns the OTHER patients whose link.other is 123. The policy's own
  // vector cmp-search-patient-link (in progress) expects the same fix: narrow to _id=123, or deny.
  it("KB-6 (fixed): Patient?link=Patient/123 is not allowed unconfined for patient 123", () => {
    const d = decide({
      claims: { scope: "patient/Patient.rs", patient: "123" },
      request: { method: "GET", url: "Patient?link=Patient/123" },
    });
    expect(d.decision, JSON.stringify(d)).not.toBe("allow");
  });
});

describe("pinned counterexamples of host bugs", () => {
  // H-1 (fixed, regression test): JSON.stringify writes a lone surrogate as the escape \udc00 (valid
  // JSON, RFC 8259); the WASM JSON reader rejects it ("illegal string escape character"). The
  // engine now refuses such input before evaluation as 400 input-invalid, not a 500 policy-error.
  it("H-1: a lone surrogate in a claim is an input error (400), not a policy error (500)", () => {
    const d = decide({
      claims: { scope: "patient/Observation.rs \udc00", patient: "123" },
      request: { method: "GET", url: "Observation/1" },
      resource: OBS_IN_123,
    });
    expect(d.decision).toBe("deny");
    expect(d.status, JSON.stringify(d)).toBe(400);
    expect(d.reasons?.[0]?.code).toBe("input-invalid");
  });

  it("H-1 fails closed and leaves the engine usable", () => {
    const d = decide({
      claims: { scope: "patient/Observation.rs \udc00", patient: "123" },
      request: { method: "GET", url: "Observation/1" },
    });
    expect(d.decision).toBe("deny");
    const ok = decide({
      claims: { scope: "patient/Observation.rs", patient: "123" },
      request: { method: "GET", url: "Observation/1" },
      resource: OBS_IN_123,
    });
    expect(ok.decision).toBe("allow");
  });
});
