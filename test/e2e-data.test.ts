/**
 * The synthetic data generator for the end-to-end tests (test/e2e/data/generate.mjs), without a
 * FHIR server: deterministic output, a transaction that loads in order, and a ground truth that
 * follows the R4 Patient CompartmentDefinition. (test/e2e/hapi-smoke.e2e.ts checks the same truth
 * against a real HAPI server.)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Truth } from "./e2e/support/truth.js";
import {
  buildResources,
  computeTruth,
  generate as generateAny,
  localPatientId,
  referencesIn,
  type Resource,
  type TransactionBundle,
} from "./e2e/data/generate.mjs";

const generate = generateAny as (o?: { seed?: number; bulk?: number }) => {
  transaction: TransactionBundle;
  truth: Truth;
};
const { transaction, truth } = generate();
const members = (p: string) => Object.keys(truth.compartments[p]!);
const comp = (p: string) => truth.compartments[p]!;

describe("generate.mjs", () => {
  it("is deterministic: the same seed gives identical output, another seed the same ids", () => {
    expect(JSON.stringify(generate())).toBe(JSON.stringify({ transaction, truth }));
    const other = generate({ seed: 7 });
    expect(JSON.stringify(other.transaction)).not.toBe(JSON.stringify(transaction));
    expect(other.truth.ids).toEqual(truth.ids);
    expect(other.truth.compartments).toEqual(truth.compartments);
  });

  it("writes a transaction of PUTs with client ids and unique urn:uuid fullUrls, in dependency order", () => {
    expect(transaction.type).toBe("transaction");
    const seen = new Set<string>();
    const fullUrls = new Set<string>();
    for (const e of transaction.entry) {
      const key = `${e.resource.resourceType}/${e.resource.id}`;
      expect(e.request).toEqual({ method: "PUT", url: key });
      expect(e.fullUrl).toMatch(
        /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      fullUrls.add(e.fullUrl);
      // every local reference names an earlier entry, so consecutive chunks load one after another
      for (const { reference } of referencesIn(e.resource)) {
        if (!/^https?:/.test(reference))
          expect(seen, `${key} → ${reference}`).toContain(reference.split("/_history/")[0]);
      }
      expect(seen).not.toContain(key);
      seen.add(key);
    }
    expect(fullUrls.size).toBe(transaction.entry.length);
    expect(truth.total).toBe(transaction.entry.length);
  });

  it("has several patients, a RelatedPerson, two practitioners and one long series for paging", () => {
    expect(truth.patients).toEqual(["123", "999", "777", "888"]);
    expect(truth.ids.Practitioner).toEqual(["prac-1", "prac-2"]);
    expect(truth.counts.RelatedPerson).toBeGreaterThanOrEqual(1);
    const subject123 = Object.entries(comp("123")).filter(
      ([k, params]) => k.startsWith("Observation/") && params.includes("subject"),
    );
    expect(subject123.length).toBeGreaterThan(5 * 50);
    expect(generate({ bulk: 60 }).truth.paging.observationsWithSubject).toBe(60);
  });

  it("puts records in compartments by the R4 parameters only", () => {
    expect(comp("123")["Observation/obs-123-self-reported-1"]).toEqual(["performer"]);
    expect(comp("123")["Observation/obs-123-subject-and-performer"]).toEqual(["performer", "subject"]);
    expect(comp("123")["Observation/obs-123-versioned-subject"]).toEqual(["subject"]);
    expect(comp("123")["Patient/888"]).toEqual(["link"]);
    expect(comp("999")["CareTeam/ct-999"]).toEqual(["patient"]);
    expect(comp("123")["CareTeam/ct-999"]).toEqual(["participant"]);
    expect(comp("123")["Condition/cond-999-asserted-by-123"]).toEqual(["asserter"]);
    expect(comp("123")["List/list-obs-123"]).toEqual(["subject"]);
    // focus, another server's Patient/123, a Provenance of a record (not of the Patient), panels
    for (const k of [
      "Observation/obs-999-focus-123",
      "Observation/obs-elsewhere-123",
      "Provenance/prov-obs-123",
      "List/list-panel-prac-1",
    ]) {
      expect(members("123")).not.toContain(k);
    }
    expect(members("999")).toContain("Provenance/prov-multi");
    expect(members("123")).not.toContain("Provenance/prov-multi");
    for (const p of truth.patients) {
      for (const k of Object.values(truth.sharedTypes).flat()) expect(members(p)).not.toContain(k);
    }
  });

  it("records labels, provenance targets, lists, external references and practitioner relationships", () => {
    expect(truth.labels["Observation/obs-123-hiv"]).toEqual([
      { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "HIV" },
      { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" },
    ]);
    expect(Object.keys(truth.labels)).toContain("Condition/cond-123-depression");
    expect(truth.provenance["Provenance/prov-obs-123"]).toEqual(["Observation/obs-123-0001"]);
    expect(truth.lists["List/list-obs-123"]).toContain("Observation/obs-999-0001");
    expect(truth.externalReferences).toEqual({
      "Observation/obs-elsewhere-123": [
        { path: "subject", reference: "https://elsewhere.example/fhir/Patient/123" },
      ],
    });
    expect(truth.practitionerPatients["Practitioner/prac-1"]!.careTeam).toEqual([
      "Patient/123",
      "Patient/777",
    ]);
    expect(Object.keys(truth.sharedTypes).sort()).toEqual([
      "Location",
      "Medication",
      "Organization",
      "Practitioner",
      "PractitionerRole",
    ]);
  });

  it("refuses a data set with a dangling reference, an unknown patient or a type without a rule", () => {
    const base = buildResources();
    const dangling: Resource[] = [
      ...base,
      { resourceType: "Observation", id: "x", subject: { reference: "Patient/404" } },
    ];
    expect(() => computeTruth(dangling)).toThrow(/does not resolve/);
    const unknownType = [...base, { resourceType: "Goal", id: "g", subject: { reference: "Patient/123" } }];
    expect(() => computeTruth(unknownType)).toThrow(/no Patient compartment rule for Goal/);
  });

  it("reads only local Patient references as compartment links", () => {
    expect(localPatientId("Patient/123")).toBe("123");
    expect(localPatientId("Patient/123/_history/4")).toBe("123");
    expect(localPatientId("https://elsewhere.example/fhir/Patient/123")).toBeNull();
    expect(localPatientId("Group/123")).toBeNull();
    expect(localPatientId("Patient/")).toBeNull();
    expect(localPatientId(undefined)).toBeNull();
  });

  it("CLI: writes both files, and rejects bad arguments with status 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "e2e-data-"));
    try {
      const script = join("test", "e2e", "data", "generate.mjs");
      const ok = spawnSync(process.execPath, [script, "--out", dir, "--seed", "5"], { encoding: "utf8" });
      expect(ok.status).toBe(0);
      const written = JSON.parse(readFileSync(join(dir, "truth.json"), "utf8"));
      expect(written).toEqual(generate({ seed: 5 }).truth);
      for (const bad of [["--seed", "x"], ["--bulk", "2"], ["--nope"], ["--out"]]) {
        const r = spawnSync(process.execPath, [script, ...bad], { encoding: "utf8" });
        expect(r.status, bad.join(" ")).toBe(2);
        expect(r.stderr).toMatch(/^generate\.mjs: /);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
