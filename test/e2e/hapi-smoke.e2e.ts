/**
 * The ground truth of the generated data set (test/e2e/data/truth.json) against a real FHIR server
 * (HAPI FHIR 8.8.0 JPA, fhir-server/): every fact the truth states is checked against what the
 * server answers to plain searches, so the truth can be trusted by the proxy's end-to-end tests.
 * Also pins the HAPI behaviours those tests rely on (test/e2e/README.md, "HAPI quirks").
 *
 * Needs a running server with the data set loaded: `make e2e-hapi-smoke` does it all.
 * Environment: FHIR_BASE (required), E2E_DATA (default build/e2e/data), FHIR_FILTER_ENABLED
 * (true|false, how the server was started; default true).
 */
import { describe, expect, it } from "vitest";
import { fhirGet, searchAll, type Bundle, type OperationOutcome } from "./support/fhir-client.js";
import { compartmentOf, loadTruth } from "./support/truth.js";

const base = process.env.FHIR_BASE?.replace(/\/+$/, "");
if (!base) throw new Error("FHIR_BASE is not set: run `make e2e-hapi-smoke` (or set it to a running server)");
const filterEnabled = (process.env.FHIR_FILTER_ENABLED ?? "true") !== "false";
const { truth, resources } = loadTruth(process.env.E2E_DATA ?? "build/e2e/data");
const enc = encodeURIComponent;
const sorted = (xs: Iterable<string>) => [...xs].sort();
const ofType = (keys: string[], type: string) => keys.filter((k) => k.startsWith(`${type}/`));

/** All match ids of a search (every page), checking there are no duplicates. */
async function ids(path: string): Promise<string[]> {
  const r = await searchAll(base!, path);
  expect(new Set(r.match).size, `${path}: an id appeared twice across pages`).toBe(r.match.length);
  return sorted(r.match);
}

describe("the server holds exactly the data set", () => {
  it.each(Object.entries(truth.counts))("%s: %i resources", async (type, n) => {
    const r = await fhirGet<Bundle>(`${base}/${type}?_summary=count`);
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(n);
  });
});

describe("Patient compartments: each compartment parameter finds exactly the truth's members", () => {
  const cases = truth.patients.flatMap((p) =>
    Object.entries(truth.compartmentParams).flatMap(([type, params]) =>
      params.map((param) => [p, type, param]),
    ),
  );
  it.each(cases)("patient %s: %s?%s", async (p, type, param) => {
    const query = param === "_id" ? `_id=${p}` : `${param}=Patient/${p}`;
    expect(await ids(`${type}?${query}&_count=1000`)).toEqual(compartmentOf(truth, p!, type!, param));
  });

  it.each(truth.patients)(
    "patient %s: Observation?patient= is the subject set (no performer-only records)",
    async (p) => {
      expect(await ids(`Observation?patient=${p}&_count=500`)).toEqual(
        compartmentOf(truth, p, "Observation", "subject"),
      );
    },
  );

  it("the truth's compartments are the union of the parameters, and only local Patient references count", () => {
    const obs123 = compartmentOf(truth, "123", "Observation");
    expect(obs123).toContain("Observation/obs-123-self-reported-1"); // performer only
    expect(obs123).toContain("Observation/obs-999-performed-by-123"); // subject 999, performer 123
    expect(obs123).toContain("Observation/obs-123-versioned-subject"); // Patient/123/_history/1
    expect(obs123).not.toContain("Observation/obs-999-focus-123"); // focus is not a parameter
    expect(obs123).not.toContain("Observation/obs-elsewhere-123"); // another server's Patient/123
    expect(compartmentOf(truth, "123", "Patient")).toEqual(["Patient/123", "Patient/888"]); // 888 links to 123
    for (const shared of Object.values(truth.sharedTypes).flat()) {
      for (const p of truth.patients) expect(truth.compartments[p]![shared]).toBeUndefined();
    }
  });
});

describe("references to another server", () => {
  it.each(Object.entries(truth.externalReferences))("%s keeps its absolute references", async (key, refs) => {
    const r = await fhirGet<Record<string, unknown>>(`${base}/${key}`);
    expect(r.status).toBe(200);
    for (const { path, reference } of refs) {
      const [type] = key.split("/");
      // search by the element's search parameter (subject for the data set's external reference)
      expect(path).toBe("subject");
      expect(await ids(`${type}?subject=${enc(reference)}`)).toContain(key);
      for (const p of truth.patients) expect(truth.compartments[p]![key]).toBeUndefined();
    }
  });

  it("a local patient search does not find another server's Patient/123", async () => {
    expect(await ids("Observation?subject=Patient/123&_count=500")).not.toContain(
      "Observation/obs-elsewhere-123",
    );
  });
});

describe("security labels (meta.security)", () => {
  const byLabel = new Map<string, string[]>();
  for (const [key, codings] of Object.entries(truth.labels)) {
    for (const c of codings) {
      const label = `${c.system}|${c.code}`;
      byLabel.set(label, [...(byLabel.get(label) ?? []), key]);
    }
  }
  const cases = [...byLabel].flatMap(([label, keys]) =>
    [...new Set(keys.map((k) => k.split("/")[0]!))].map((type) => [label, type, ofType(keys, type)] as const),
  );
  it.each(cases)("_security=%s on %s", async (label, type, expected) => {
    expect(await ids(`${type}?_security=${enc(label)}`)).toEqual(sorted(expected));
  });
  it("labels are on the records the generator labelled", () => {
    expect(Object.keys(truth.labels)).toEqual(
      expect.arrayContaining([
        "Observation/obs-123-hiv",
        "Observation/obs-123-psy",
        "Condition/cond-123-hiv",
      ]),
    );
  });
});

describe("Provenance targets", () => {
  const byTarget = new Map<string, string[]>();
  for (const [prov, targets] of Object.entries(truth.provenance)) {
    for (const t of targets) byTarget.set(t, [...(byTarget.get(t) ?? []), prov]);
  }
  it.each([...byTarget])("Provenance?target=%s", async (target, provs) => {
    expect(await ids(`Provenance?target=${target}`)).toEqual(sorted(provs));
  });
  it("_revinclude=Provenance:target brings in exactly the Provenance of the matched records", async () => {
    const r = await searchAll(base!, "Observation?patient=123&_revinclude=Provenance:target&_count=1000");
    const matched = new Set(r.match);
    const expected = Object.entries(truth.provenance)
      .filter(([, targets]) => targets.some((t) => matched.has(t)))
      .map(([k]) => k);
    expect(sorted(new Set(r.include))).toEqual(sorted(expected));
  });
});

describe("lists, care teams and practitioner relationships", () => {
  it.each(Object.entries(truth.lists))("_list=%s returns the list's items", async (list, items) => {
    const id = list.split("/")[1]!;
    for (const type of new Set(items.map((i) => i.split("/")[0]!))) {
      expect(await ids(`${type}?_list=${id}`)).toEqual(sorted(ofType(items, type)));
    }
  });
  it.each(Object.entries(truth.practitionerPatients))(
    "%s: patients by care team, GP and panel",
    async (prac, rel) => {
      expect(await ids(`Patient?_has:CareTeam:patient:participant=${prac}`)).toEqual(rel.careTeam);
      expect(await ids(`Patient?general-practitioner=${prac}`)).toEqual(rel.generalPractitioner);
      const panels = Object.keys(truth.lists).filter((l) => resources.get(l)?.source !== undefined);
      const mine = panels.filter(
        (l) => (resources.get(l)!.source as { reference: string }).reference === prac,
      );
      const fromPanels = new Set<string>();
      for (const l of mine) for (const k of await ids(`Patient?_list=${l.split("/")[1]}`)) fromPanels.add(k);
      expect(sorted(fromPanels)).toEqual(rel.panel);
    },
  );
});

describe("paging (HAPI: next links are <base>?_getpages=<search id>&_getpagesoffset=N&_count=N&_bundletype=searchset)", () => {
  const { patient, suggestedCount: count } = truth.paging;
  it(`Observation?patient=${patient}&_count=${count} spans several pages and loses nothing`, async () => {
    const r = await searchAll(base!, `Observation?patient=${patient}&_count=${count}`);
    const expected = compartmentOf(truth, patient, "Observation", "subject");
    expect(r.pages.length).toBe(Math.ceil(expected.length / count));
    expect(sorted(r.match)).toEqual(expected);
    expect(new Set(r.match).size).toBe(r.match.length);
    r.pages.forEach((page, i) => {
      expect(page.match.length).toBe(Math.min(count, expected.length - i * count));
      if (page.total !== undefined) expect(page.total).toBe(expected.length);
    });
    expect(r.pages.at(-1)!.next).toBeUndefined();
    for (const [i, page] of r.pages.slice(0, -1).entries()) {
      const next = new URL(page.next!);
      expect(`${next.origin}${next.pathname}`).toBe(base);
      expect(next.searchParams.get("_getpages")).toMatch(/^[0-9a-f-]{36}$/);
      expect(next.searchParams.get("_getpagesoffset")).toBe(String((i + 1) * count));
      expect(next.searchParams.get("_count")).toBe(String(count));
      expect(next.searchParams.get("_bundletype")).toBe("searchset");
    }
  });
});

describe.runIf(filterEnabled)("_filter (server started with FHIR_FILTER_ENABLED=true)", () => {
  const cases = truth.patients.flatMap((p) => [50, 7, 5].map((count) => [p, count] as const));
  it.each(cases)(
    "patient %s: subject-or-performer in one search, _count=%i, every page linked",
    async (p, count) => {
      const f = `patient eq Patient/${p} or performer eq Patient/${p}`;
      const r = await searchAll(base!, `Observation?_filter=${enc(f)}&_count=${count}`);
      const expected = compartmentOf(truth, p, "Observation");
      expect(sorted(r.match)).toEqual(expected);
      expect(new Set(r.match).size).toBe(r.match.length);
      expect(r.pages.length).toBe(Math.max(1, Math.ceil(expected.length / count)));
    },
  );
});

describe.runIf(!filterEnabled)("_filter (server started with FHIR_FILTER_ENABLED=false)", () => {
  it("is refused with 400", async () => {
    const r = await fhirGet<OperationOutcome>(`${base}/Observation?_filter=${enc("patient eq Patient/123")}`);
    expect(r.status).toBe(400);
    expect(r.body.resourceType).toBe("OperationOutcome");
    expect(JSON.stringify(r.body.issue)).toMatch(/_filter/);
  });
});

describe("HAPI JPA behaviours the proxy must live with", () => {
  it("compartment search (Patient/123/Observation) is not supported: 400", async () => {
    for (const path of ["Patient/123/Observation", "Patient/123/Observation?code=8867-4", "Patient/123/*"]) {
      const r = await fhirGet<OperationOutcome>(`${base}/${path}`);
      expect(r.status, path).toBe(400);
      expect(r.body.issue[0]!.code).toBe("not-supported");
    }
  });

  it.each(truth.patients)(
    "Patient/%s/$everything: the compartment minus Lists, plus focus records and referenced shared resources",
    async (p) => {
      const got = new Set((await searchAll(base!, `Patient/${p}/$everything?_count=1000`)).match);
      const compartment = Object.keys(truth.compartments[p]!);
      const shared = new Set(Object.values(truth.sharedTypes).flat());
      const focusOnP = [...resources.values()]
        .filter((r) =>
          ((r.focus as { reference: string }[] | undefined) ?? []).some(
            (f) => f.reference === `Patient/${p}`,
          ),
        )
        .map((r) => `${r.resourceType}/${r.id}`);
      // everything in the compartment except Lists
      expect(sorted(compartment.filter((k) => !got.has(k)))).toEqual(sorted(ofType(compartment, "List")));
      // and beyond it only shared resources and records whose focus is the patient (not compartment members!)
      const extra = [...got].filter((k) => !compartment.includes(k));
      expect(extra.filter((k) => !shared.has(k)).sort()).toEqual(sorted(focusOnP));
    },
  );
});
