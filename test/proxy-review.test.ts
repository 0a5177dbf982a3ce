/**
 * Review (attacker mindset) of the enforcing proxy: what a patient/ or user/ token can learn or
 * change beyond its reach through HTTP. Each test is a hole found in review, fixed.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LoggedRequest } from "./helpers/fake-fhir.js";
import { BUNDLE, call, demoToken, startHarness, type Harness } from "./helpers/proxy-harness.js";
import { SEED, observation } from "./helpers/proxy-seed.js";

const built = existsSync(BUNDLE);

/** HAPI's answer to a create that a unique SearchParameter refuses: it names the stored record. */
const HAPI_UNIQUE_CONFLICT = {
  resourceType: "OperationOutcome",
  issue: [
    {
      severity: "error",
      code: "processing",
      diagnostics:
        "HAPI-1093: Can not create resource of type Observation as it would create a duplicate unique index matching query: Observation?code=x&subject=Patient%2F999 (existing index belongs to Observation/o-999-a, new unique index created by SearchParameter/obs-code-subject)",
    },
  ],
};

describe.skipIf(!built)("proxy review: the FHIR server's error bodies", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await startHarness({ filter: true });
    h.fake.seed(...SEED);
    token = await demoToken("patient/*.cruds", "123");
  });
  afterAll(async () => h?.close());
  beforeEach(() => {
    h.fake.options.override = undefined;
  });

  it("a server 4xx that names another patient's resource does not reach the client (create)", async () => {
    h.fake.options.override = (req: LoggedRequest) =>
      req.method === "POST" && req.url.startsWith("/fhir/Observation")
        ? { status: 409, type: "application/fhir+json", body: JSON.stringify(HAPI_UNIQUE_CONFLICT) }
        : undefined;
    const r = await call(`${h.base}/Observation`, {
      method: "POST",
      token,
      body: {
        resourceType: "Observation",
        status: "final",
        code: { text: "x" },
        subject: { reference: "Patient/123" },
      },
    });
    expect(r.status).toBe(409);
    expect(r.body.resourceType).toBe("OperationOutcome");
    expect(r.body.issue[0].code).toBe("processing");
    expect(JSON.stringify(r.body)).not.toContain("o-999-a");
    expect(JSON.stringify(r.body)).not.toContain("Patient%2F999");
  });

  it("a batch entry's server outcome that names another patient's resource does not reach the client", async () => {
    h.fake.options.override = (req: LoggedRequest) =>
      req.method === "POST" && /\/fhir\/?$/.test(req.url)
        ? {
            status: 200,
            type: "application/fhir+json",
            body: JSON.stringify({
              resourceType: "Bundle",
              type: "batch-response",
              entry: [{ response: { status: "409 Conflict", outcome: HAPI_UNIQUE_CONFLICT } }],
            }),
          }
        : undefined;
    const r = await call(`${h.base}`, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          {
            request: { method: "POST", url: "Observation" },
            resource: {
              resourceType: "Observation",
              status: "final",
              code: { text: "x" },
              subject: { reference: "Patient/123" },
            },
          },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.entry[0].response.status).toMatch(/^409/);
    expect(JSON.stringify(r.body)).not.toContain("o-999-a");
  });

  it("a server 4xx about the client's own request keeps its explanation", async () => {
    const outcome = {
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "error",
          code: "required",
          diagnostics: "Observation.status: minimum required = 1",
          expression: ["Observation.status"],
        },
      ],
    };
    h.fake.options.override = (req: LoggedRequest) =>
      req.method === "PUT"
        ? { status: 422, type: "application/fhir+json", body: JSON.stringify(outcome) }
        : undefined;
    const r = await call(`${h.base}/Observation/o-123-b`, {
      method: "PUT",
      token,
      body: {
        resourceType: "Observation",
        id: "o-123-b",
        code: { text: "x" },
        subject: { reference: "Patient/123" },
      },
    });
    expect(r.status).toBe(422);
    expect(r.body.issue[0]).toMatchObject(outcome.issue[0]!);
  });
});

describe.skipIf(!built)("proxy review: update-as-create of a deleted resource", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await startHarness({ filter: true });
    h.fake.seed(...SEED);
    token = await demoToken("patient/*.cruds", "123");
  });
  afterAll(async () => h?.close());

  it("refuses to write over another patient's deleted record (decided on its last version), as over a live one", async () => {
    h.fake.seed(observation("gone-999", "Patient/999", { note: [{ text: "999's" }] }));
    await fetch(`${h.fake.base}/Observation/gone-999`, { method: "DELETE" });
    const puts = h.fake.requests("PUT").length;
    const r = await call(`${h.base}/Observation/gone-999`, {
      method: "PUT",
      token,
      body: observation("gone-999", "Patient/123"),
    });
    // Before: 201 with Location .../_history/3, a new version in 999's record's history (and the
    // version number told the client the id had been used before).
    expect(r.status).toBe(404);
    expect(r.headers.get("location")).toBeNull();
    expect(h.fake.requests("PUT").length).toBe(puts);
    expect(h.fake.current("Observation/gone-999")).toBeUndefined();
  });

  it("refuses the same in a batch entry", async () => {
    h.fake.seed(observation("gone-999-b", "Patient/999"));
    await fetch(`${h.fake.base}/Observation/gone-999-b`, { method: "DELETE" });
    const r = await call(`${h.base}`, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          {
            request: { method: "PUT", url: "Observation/gone-999-b" },
            resource: observation("gone-999-b", "Patient/123"),
          },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.entry[0].response.status).toMatch(/^404/);
    expect(h.fake.current("Observation/gone-999-b")).toBeUndefined();
  });

  // OPEN (not fixed): update-as-create is checked on "nothing stored" (GET 404) and then sent as a
  // plain PUT. If another client creates Type/id for another patient between the two, the PUT
  // overwrites that patient's record with this patient's data. FHIR R4 has no create-only PUT
  // (no If-None-Match: * on update) that HAPI honours, so the proxy cannot pin "still absent".
  it.fails("does not overwrite a record another client created between the check and the PUT", async () => {
    h.fake.options.override = (req: LoggedRequest) => {
      if (req.method !== "GET" || !req.url.endsWith("/Observation/race-x")) return undefined;
      h.fake.options.override = undefined;
      h.fake.seed(observation("race-x", "Patient/999", { note: [{ text: "999's" }] }));
      return {
        status: 404,
        type: "application/fhir+json",
        body: JSON.stringify({
          resourceType: "OperationOutcome",
          issue: [{ severity: "error", code: "not-found" }],
        }),
      };
    };
    await call(`${h.base}/Observation/race-x`, {
      method: "PUT",
      token,
      body: observation("race-x", "Patient/123"),
    });
    h.fake.options.override = undefined;
    expect((h.fake.current("Observation/race-x")!.subject as { reference: string }).reference).toBe(
      "Patient/999",
    );
  });

  it("still recreates the patient's own deleted record, and creates a new id", async () => {
    h.fake.seed(observation("gone-123", "Patient/123"));
    await fetch(`${h.fake.base}/Observation/gone-123`, { method: "DELETE" });
    const again = await call(`${h.base}/Observation/gone-123`, {
      method: "PUT",
      token,
      body: observation("gone-123", "Patient/123", { status: "amended" }),
    });
    expect(again.status).toBeLessThan(300);
    expect(h.fake.current("Observation/gone-123")!.status).toBe("amended");
    const fresh = await call(`${h.base}/Observation/fresh-123`, {
      method: "PUT",
      token,
      body: observation("fresh-123", "Patient/123"),
    });
    expect(fresh.status).toBe(201);
  });
});

describe.skipIf(!built)("proxy review: linked Provenance", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await startHarness({ filter: true });
    h.fake.seed(...SEED);
    token = await demoToken("patient/*.rs", "123");
  });
  afterAll(async () => h?.close());

  it("keeps a visible resource's Provenance only when it names no record the token cannot see", async () => {
    const prov = (id: string, extra: Record<string, unknown>) => ({
      resourceType: "Provenance",
      id,
      target: [{ reference: "Observation/o-123-a" }],
      recorded: "2026-01-01T00:00:00Z",
      agent: [{ who: { reference: "Practitioner/prac1" } }],
      ...extra,
    });
    h.fake.seed(
      prov("pv-ok", {}),
      // Its source is another patient's Observation: releasing it tells the app that record's id
      // and that it fed this patient's data, as a Provenance also targeting it would.
      prov("pv-entity", { entity: [{ role: "source", what: { reference: "Observation/o-999-a" } }] }),
      prov("pv-agent", { agent: [{ who: { reference: "RelatedPerson/rp-of-999" } }] }),
    );
    const r = await call(`${h.base}/Observation?_id=o-123-a&_revinclude=Provenance:target`, { token });
    expect(r.status).toBe(200);
    const ids = (r.body.entry as { resource: { resourceType: string; id: string } }[]).map(
      (e) => `${e.resource.resourceType}/${e.resource.id}`,
    );
    expect(ids).toContain("Provenance/pv-ok");
    expect(ids).not.toContain("Provenance/pv-entity");
    expect(ids).not.toContain("Provenance/pv-agent");
    expect(JSON.stringify(r.body)).not.toContain("o-999-a");
  });
});
