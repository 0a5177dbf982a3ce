/**
 * Writes through the proxy: decided on the stored resource read first, sent pinned to the version
 * checked (If-Match; a conditional delete on the exact lastUpdated, since HAPI ignores If-Match on
 * DELETE), conditional writes narrowed, batches per entry, transactions all or nothing.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BUNDLE, call, demoToken, startHarness, type Harness } from "./helpers/proxy-harness.js";
import { SEED, observation } from "./helpers/proxy-seed.js";

const built = existsSync(BUNDLE);

describe.skipIf(!built)("proxy: writes", () => {
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

  it("updates a resource in the compartment, pinned to the version it checked", async () => {
    h.fake.seed(observation("w-own", "Patient/123"));
    const v = (h.fake.current("Observation/w-own")!.meta as { versionId: string }).versionId;
    const r = await call(`${h.base}/Observation/w-own`, {
      method: "PUT",
      token,
      body: observation("w-own", "Patient/123", { status: "amended" }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("location")?.startsWith(`${h.base}/Observation/w-own`)).toBe(true);
    const put = h.fake.requests("PUT").at(-1)!;
    expect(put.headers["if-match"]).toBe(`W/"${v}"`);
    expect(h.fake.current("Observation/w-own")!.status).toBe("amended");
  });

  it("refuses to update, patch or delete another patient's resource, and the server never sees the write", async () => {
    h.fake.seed(observation("w-other", "Patient/999"));
    const writes = h.fake.log.length;
    for (const [method, body] of [
      ["PUT", observation("w-other", "Patient/123")],
      ["PATCH", [{ op: "replace", path: "/status", value: "cancelled" }]],
      ["DELETE", undefined],
    ] as const) {
      const r = await call(`${h.base}/Observation/w-other`, {
        method,
        token,
        ...(body === undefined ? {} : { body }),
        headers: method === "PATCH" ? { "content-type": "application/json-patch+json" } : {},
      });
      expect(r.status, method).toBe(404);
    }
    expect(h.fake.log.slice(writes).every((q) => q.method === "GET")).toBe(true);
    expect(h.fake.current("Observation/w-other")!.subject).toEqual({ reference: "Patient/999" });
  });

  it("creates with PUT (update-as-create) when nothing is stored, decided on the body alone", async () => {
    const created = await call(`${h.base}/Observation/w-new`, {
      method: "PUT",
      token,
      body: observation("w-new", "Patient/123"),
    });
    expect(created.status).toBeLessThan(300);
    expect(h.fake.current("Observation/w-new")!.subject).toEqual({ reference: "Patient/123" });
    const writes = h.fake.log.length;
    const other = await call(`${h.base}/Observation/w-new-other`, {
      method: "PUT",
      token,
      body: observation("w-new-other", "Patient/999"),
    });
    expect(other.status).toBe(403);
    expect(h.fake.current("Observation/w-new-other")).toBeUndefined();
    expect(h.fake.log.slice(writes).every((q) => q.method === "GET")).toBe(true);
  });

  it("refuses a body that moves a resource out of the compartment before reading anything", async () => {
    h.fake.seed(observation("w-move", "Patient/123"));
    const r = await call(`${h.base}/Observation/w-move`, {
      method: "PUT",
      token,
      body: observation("w-move", "Patient/999"),
    });
    expect(r.status).toBe(403);
    expect(h.fake.current("Observation/w-move")!.subject).toEqual({ reference: "Patient/123" });
  });

  it("answers 409 when the resource changes between the check and the write (412 with the client's If-Match)", async () => {
    h.fake.seed(observation("w-race", "Patient/123"));
    h.fake.options.override = (req) => {
      if (req.method === "PUT" && req.url.endsWith("/Observation/w-race")) {
        h.fake.options.override = undefined;
        h.fake.seed(observation("w-race", "Patient/999"));
      }
      return undefined;
    };
    const r = await call(`${h.base}/Observation/w-race`, {
      method: "PUT",
      token,
      body: observation("w-race", "Patient/123", { status: "amended" }),
    });
    expect(r.status).toBe(409);
    expect(h.fake.current("Observation/w-race")!.subject).toEqual({ reference: "Patient/999" });
    const v = (h.fake.current("Observation/w-race")!.meta as { versionId: string }).versionId;
    const stale = await call(`${h.base}/Observation/w-race`, {
      method: "PUT",
      token,
      headers: { "if-match": 'W/"1"' },
      body: observation("w-race", "Patient/123"),
    });
    expect(v).toBe("2");
    expect(stale.status).toBe(404); // now another patient's: hidden
  });

  it("deletes only the version it checked, even on a server that ignores If-Match on DELETE", async () => {
    h.fake.seed(observation("w-del", "Patient/123"));
    h.fake.options.override = (req) => {
      if (req.method === "DELETE") {
        h.fake.options.override = undefined;
        h.fake.seed(observation("w-del", "Patient/999"));
      }
      return undefined;
    };
    const r = await call(`${h.base}/Observation/w-del`, { method: "DELETE", token });
    expect(r.status).toBe(409);
    expect(h.fake.current("Observation/w-del")).toBeDefined();
    const ok = await call(`${h.base}/Observation/w-own`, { method: "DELETE", token });
    expect(ok.status).toBeLessThan(300);
    expect(h.fake.current("Observation/w-own")).toBeUndefined();
  });

  it("patches with the version pinned, JSON Patch forwarded as JSON Patch", async () => {
    h.fake.seed(observation("w-patch", "Patient/123"));
    const r = await call(`${h.base}/Observation/w-patch`, {
      method: "PATCH",
      token,
      headers: { "content-type": "application/json-patch+json" },
      body: [{ op: "replace", path: "/status", value: "amended" }],
    });
    expect(r.status).toBe(200);
    const patch = h.fake.requests("PATCH").at(-1)!;
    expect(patch.headers["if-match"]).toBe('W/"1"');
    expect(patch.headers["content-type"]).toBe("application/json-patch+json");
    const guarded = await call(`${h.base}/Observation/w-patch`, {
      method: "PATCH",
      token,
      headers: { "content-type": "application/json-patch+json" },
      body: [{ op: "replace", path: "/subject", value: { reference: "Patient/999" } }],
    });
    expect(guarded.status).toBe(403);
  });

  it("creates in the compartment, refuses outside it, and releases the representation only if readable", async () => {
    const r = await call(`${h.base}/Observation`, {
      method: "POST",
      token,
      headers: { prefer: "return=representation" },
      body: {
        resourceType: "Observation",
        status: "final",
        code: { text: "new" },
        subject: { reference: "Patient/123" },
      },
    });
    expect(r.status).toBe(201);
    expect(r.body.resourceType).toBe("Observation");
    expect(r.headers.get("location")?.startsWith(`${h.base}/Observation/`)).toBe(true);
    const posts = h.fake.requests("POST").length;
    const out = await call(`${h.base}/Observation`, {
      method: "POST",
      token,
      body: {
        resourceType: "Observation",
        status: "final",
        code: { text: "x" },
        subject: { reference: "Patient/999" },
      },
    });
    expect(out.status).toBe(403);
    expect(h.fake.requests("POST").length).toBe(posts);
  });

  it("narrows a conditional delete and a conditional update to the compartment", async () => {
    h.fake.seed(observation("c-123", "Patient/123", { code: { coding: [{ code: "cond" }] } }));
    h.fake.seed(observation("c-999", "Patient/999", { code: { coding: [{ code: "cond" }] } }));
    const del = await call(`${h.base}/Observation?code=cond`, { method: "DELETE", token });
    expect(del.status).toBeLessThan(300);
    expect(h.fake.current("Observation/c-123")).toBeUndefined();
    expect(h.fake.current("Observation/c-999")).toBeDefined();
    const searches = h.fake.requests("GET").filter((q) => decodeURIComponent(q.url).includes("code=cond"));
    expect(decodeURIComponent(searches.at(-1)!.url)).toContain('_filter=(patient eq "Patient/123")');
    const upd = await call(`${h.base}/Observation?code=cond`, {
      method: "PUT",
      token,
      // nothing matches any more (c-123 is deleted, c-999 is not the token's): a create, so no id
      body: {
        ...observation("ignored", "Patient/123", { code: { coding: [{ code: "cond" }] } }),
        id: undefined,
      },
    });
    expect(upd.status).toBe(201);
    expect(h.fake.current("Observation/c-999")!.status).toBe("final");
  });

  it("refuses a conditional update that matches nothing but names an id: it would overwrite that record", async () => {
    // HAPI updates the resource the body names when the (narrowed) condition matches nothing.
    h.fake.seed(observation("c-hijack", "Patient/999", { code: { coding: [{ code: "victim" }] } }));
    const hijack = observation("c-hijack", "Patient/123", { status: "cancelled" });
    const single = await call(`${h.base}/Observation?code=nothing-matches`, {
      method: "PUT",
      token,
      body: hijack,
    });
    expect(single.status).toBe(400);
    const batch = await call(h.base, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [{ request: { method: "PUT", url: "Observation?code=nothing-matches" }, resource: hijack }],
      },
    });
    expect((batch.body as any).entry[0].response.status).toMatch(/^400/);
    const missing = await call(`${h.base}/Observation?code=nothing-matches`, {
      method: "PUT",
      token,
      body: observation("c-no-such-id", "Patient/123"),
    });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body).replace("c-no-such-id", "X")).toBe(
      JSON.stringify(single.body).replace("c-hijack", "X"),
    );
    expect(h.fake.current("Observation/c-hijack")!.subject).toEqual({ reference: "Patient/999" });
    expect(h.fake.current("Observation/c-hijack")!.status).toBe("final");
  });

  it("narrows If-None-Exist", async () => {
    const r = await call(`${h.base}/Observation`, {
      method: "POST",
      token,
      headers: { "if-none-exist": "code=cond" },
      body: observation("x", "Patient/123", { code: { coding: [{ code: "cond" }] } }),
    });
    expect(r.status).toBeLessThan(300);
    const post = h.fake.requests("POST").at(-1)!;
    expect(decodeURIComponent(String(post.headers["if-none-exist"]))).toContain(
      '_filter=(patient eq "Patient/123")',
    );
  });

  it("answers a batch entry by entry, forwarding only the permitted entries, in order", async () => {
    h.fake.seed(observation("b-own", "Patient/123"), observation("b-other", "Patient/999"));
    const batches = h.fake.requests("POST").length;
    const r = await call(h.base, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          { request: { method: "GET", url: "Observation/b-own" } },
          { request: { method: "GET", url: "Observation/b-other" } },
          { request: { method: "DELETE", url: "Observation/b-other" } },
          { request: { method: "GET", url: "Observation?code=page&_count=100" } },
          { request: { method: "GET", url: "Patient/999" } },
          {
            request: { method: "PUT", url: "Observation/b-own" },
            resource: observation("b-own", "Patient/123", { status: "amended" }),
          },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.type).toBe("batch-response");
    const e = r.body.entry as any[];
    expect(e).toHaveLength(6);
    expect(e[0].resource.id).toBe("b-own");
    expect(e[1].response.status).toMatch(/^404/);
    expect(e[1].resource).toBeUndefined();
    expect(e[2].response.status).toMatch(/^404/);
    expect(e[3].resource.resourceType).toBe("Bundle");
    expect(e[3].resource.entry.map((x: any) => x.resource.subject.reference)).toEqual(
      Array(12).fill("Patient/123"),
    );
    expect(e[4].response.status).toMatch(/^404/);
    expect(e[5].response.status).toMatch(/^20/);
    expect(h.fake.current("Observation/b-other")).toBeDefined();
    const sent = JSON.parse(h.fake.requests("POST").slice(batches).at(-1)!.body);
    expect(sent.entry.map((x: any) => `${x.request.method} ${x.request.url}`)).toEqual([
      "GET Observation/b-own",
      "GET Observation/b-other",
      expect.stringMatching(/^GET Observation\?code=page&_count=100&_filter=/),
      "PUT Observation/b-own",
    ]);
    expect(sent.entry[3].request.ifMatch).toBe('W/"1"');
  });

  it("pins a batch delete to the version checked, and says so when it changed in between", async () => {
    h.fake.seed(observation("b-del-1", "Patient/123"), observation("b-del-2", "Patient/123"));
    h.fake.options.override = (req) => {
      if (req.method === "POST" && req.url === "/fhir") {
        h.fake.options.override = undefined;
        h.fake.seed(observation("b-del-2", "Patient/999"));
      }
      return undefined;
    };
    const r = await call(h.base, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          { request: { method: "DELETE", url: "Observation/b-del-1" } },
          { request: { method: "DELETE", url: "Observation/b-del-2" } },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.entry[0].response.status).toMatch(/^20/);
    expect(r.body.entry[1].response.status).toMatch(/^409/);
    expect(h.fake.current("Observation/b-del-1")).toBeUndefined();
    expect(h.fake.current("Observation/b-del-2")!.subject).toEqual({ reference: "Patient/999" });
    const sent = JSON.parse(h.fake.requests("POST").at(-1)!.body);
    expect(sent.entry[0].request.url).toMatch(/^Observation\?_id=b-del-1&_lastUpdated=eq/);
  });

  it("refuses a transaction with one refused entry whole: nothing is sent", async () => {
    h.fake.seed(observation("t-other", "Patient/999"));
    const posts = h.fake.requests("POST").length;
    const r = await call(h.base, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "transaction",
        entry: [
          { request: { method: "POST", url: "Observation" }, resource: observation("n1", "Patient/123") },
          { request: { method: "DELETE", url: "Observation/t-other" } },
        ],
      },
    });
    expect(r.status).toBe(404);
    expect(r.body.resourceType).toBe("OperationOutcome");
    expect(h.fake.requests("POST").length).toBe(posts);
    expect(h.fake.current("Observation/t-other")).toBeDefined();
  });

  it("forwards a permitted transaction with every stored-resource entry pinned", async () => {
    h.fake.seed(observation("t-own", "Patient/123"));
    const r = await call(h.base, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "transaction",
        entry: [
          { request: { method: "POST", url: "Observation" }, resource: observation("n2", "Patient/123") },
          {
            request: { method: "PUT", url: "Observation/t-own" },
            resource: observation("t-own", "Patient/123", { status: "amended" }),
          },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.type).toBe("transaction-response");
    const sent = JSON.parse(h.fake.requests("POST").at(-1)!.body);
    expect(sent.entry[1].request.ifMatch).toBe('W/"1"');
    for (const e of r.body.entry)
      if (e.response.location) expect(e.response.location).not.toContain(h.fake.base);
  });

  describe("references in what is written are no existence oracle", () => {
    // A FHIR server validates local references (HAPI: 400 "Resource Observation/x not found" or 201),
    // so a write naming another patient's record would tell whether it exists.
    const probe = (ref: string) => ({
      resourceType: "Observation",
      status: "final",
      code: { text: "probe" },
      subject: { reference: "Patient/123" },
      hasMember: [{ reference: ref }],
    });

    it("refuses a create naming another patient's record exactly like one naming nothing, and sends neither", async () => {
      h.fake.seed(observation("ref-other", "Patient/999"), observation("ref-own", "Patient/123"));
      const posts = h.fake.requests("POST").length;
      const other = await call(`${h.base}/Observation`, {
        method: "POST",
        token,
        body: probe("Observation/ref-other"),
      });
      const missing = await call(`${h.base}/Observation`, {
        method: "POST",
        token,
        body: probe("Observation/ref-none"),
      });
      expect(other.status).toBe(400);
      expect(missing.status).toBe(400);
      const text = (a: typeof other) => JSON.stringify(a.body).replace(/ref-other|ref-none/g, "X");
      expect(text(other)).toBe(text(missing));
      expect(h.fake.requests("POST").length).toBe(posts);
      const own = await call(`${h.base}/Observation`, {
        method: "POST",
        token,
        body: probe("Observation/ref-own"),
      });
      expect(own.status).toBe(201);
    });

    it("checks updates, patches, conditional references and batch entries the same way", async () => {
      h.fake.seed(observation("ref-target", "Patient/123"), observation("ref-other2", "Patient/999"));
      const puts = h.fake.requests("PUT").length;
      const put = await call(`${h.base}/Observation/ref-target`, {
        method: "PUT",
        token,
        body: {
          ...observation("ref-target", "Patient/123"),
          hasMember: [{ reference: "Observation/ref-other2" }],
        },
      });
      expect(put.status).toBe(400);
      const patch = await call(`${h.base}/Observation/ref-target`, {
        method: "PATCH",
        token,
        body: [{ op: "add", path: "/hasMember", value: [{ reference: "Observation/ref-other2" }] }],
        headers: { "content-type": "application/json-patch+json" },
      });
      expect(patch.status).toBe(400);
      expect(h.fake.requests("PUT").length).toBe(puts);
      const conditional = await call(`${h.base}/Observation`, {
        method: "POST",
        token,
        body: probe("Observation?subject=Patient/999&code=x"),
      });
      expect(conditional.status).toBe(400);
      const batch = await call(h.base, {
        method: "POST",
        token,
        body: {
          resourceType: "Bundle",
          type: "batch",
          entry: [
            { request: { method: "POST", url: "Observation" }, resource: probe("Observation/ref-other2") },
          ],
        },
      });
      expect(batch.status).toBe(200);
      expect((batch.body as any).entry[0].response.status).toMatch(/^400/);
      // references to shared or non-patient data are the server's to check
      const practitioner = await call(`${h.base}/Observation`, {
        method: "POST",
        token,
        body: { ...probe("Observation/ref-target"), performer: [{ reference: "Practitioner/anyone" }] },
      });
      expect(practitioner.status).toBe(201);
    });
  });
});
