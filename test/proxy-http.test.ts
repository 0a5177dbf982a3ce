/**
 * The enforcing proxy through HTTP, with the real policy and the fake FHIR server behind it:
 * reads decided on the stored resource, searches narrowed into one upstream search and filtered,
 * paging through signed cursors, writes pinned to the version checked, batches and transactions,
 * JSON only, upstream hygiene.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEED } from "./helpers/proxy-seed.js";
import {
  BUNDLE,
  call,
  demoToken,
  matchIds,
  pageAll,
  startHarness,
  type Harness,
} from "./helpers/proxy-harness.js";

const built = existsSync(BUNDLE);

const PAGE_IDS = Array.from({ length: 12 }, (_, i) => `Observation/o-123-p${String(i).padStart(2, "0")}`);

describe.skipIf(!built)("proxy: reads, searches, paging (upstream with _filter)", () => {
  let h: Harness;
  let token: string;
  let token999: string;
  beforeAll(async () => {
    // The demo tokens' client has no registration (data.clients): scope hints are allowed anyway.
    h = await startHarness(
      { filter: true, pageSize: 5 },
      {},
      {},
      { logging: { level: "info" }, policy: { outcome: { hint_without_registration: true } } },
    );
    h.fake.seed(...SEED);
    token = await demoToken("patient/*.cruds", "123");
    token999 = await demoToken("patient/*.cruds", "999");
  });
  afterAll(async () => h?.close());

  it("serves metadata publicly, with the proxy as its implementation", async () => {
    const r = await call(`${h.base}/metadata`);
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe("CapabilityStatement");
    expect(r.body.implementation.url).toBe(h.base);
    expect(JSON.stringify(r.body)).not.toContain(h.fake.base);
  });

  it("answers 401 with a Bearer challenge without a token or with a bad one", async () => {
    const none = await call(`${h.base}/Observation/o-123-a`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="smart-authz"');
    expect(none.body.resourceType).toBe("OperationOutcome");
    const bad = await call(`${h.base}/Observation/o-123-a`, { token: "a.b.c" });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    expect(h.fake.requests().filter((r) => r.url.includes("o-123-a"))).toEqual([]);
  });

  it("reads a resource in the compartment, decided on the stored resource", async () => {
    const r = await call(`${h.base}/Observation/o-123-perf-only`, { token });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe("o-123-perf-only");
    expect(r.headers.get("etag")).toBe('W/"1"');
  });

  it("names a missing scope only where it would work: not for another patient's or a missing record (issue 15)", async () => {
    const obsOnly = await demoToken("patient/Observation.rs", "123");
    h.fake.seed(
      {
        resourceType: "Condition",
        id: "hint-own",
        code: { text: "x" },
        subject: { reference: "Patient/123" },
      },
      {
        resourceType: "Condition",
        id: "hint-other",
        code: { text: "x" },
        subject: { reference: "Patient/999" },
      },
    );
    const own = await call(`${h.base}/Condition/hint-own`, { token: obsOnly });
    expect(own.status).toBe(403);
    expect(own.headers.get("www-authenticate")).toMatch(/insufficient_scope.*scope="patient\/Condition\.r/);
    const other = await call(`${h.base}/Condition/hint-other`, { token: obsOnly });
    const missing = await call(`${h.base}/Condition/hint-missing`, { token: obsOnly });
    for (const r of [other, missing]) {
      expect(r.status).toBe(404);
      expect(r.headers.get("www-authenticate")).toBeNull();
    }
    expect(other.body).toEqual(missing.body);
    // the history of a record, the same
    const ownHistory = await call(`${h.base}/Condition/hint-own/_history`, { token: obsOnly });
    expect(ownHistory.status).toBe(403);
    expect(ownHistory.headers.get("www-authenticate")).toMatch(/insufficient_scope/);
    const otherHistory = await call(`${h.base}/Condition/hint-other/_history`, { token: obsOnly });
    expect(otherHistory.status).toBe(404);
    expect(otherHistory.headers.get("www-authenticate")).toBeNull();
  });

  it("answers another patient's resource exactly like one that does not exist", async () => {
    const hidden = await call(`${h.base}/Observation/o-999-a`, { token });
    const missing = await call(`${h.base}/Observation/does-not-exist`, { token });
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(hidden.body).toEqual(missing.body);
    const names = (a: typeof hidden) => {
      const out: string[] = [];
      a.headers.forEach((_v, k) => {
        if (!["date", "x-request-id"].includes(k)) out.push(k);
      });
      return out.sort();
    };
    expect(names(hidden)).toEqual(names(missing));
    const vread = await call(`${h.base}/Observation/o-999-a/_history/1`, { token });
    expect(vread.status).toBe(404);
    expect(vread.body).toEqual(missing.body);
    const history = await call(`${h.base}/Observation/o-999-a/_history`, { token });
    expect(history.status).toBe(404);
    expect(history.body).toEqual(missing.body);
  });

  it("answers HEAD like GET without a body, and a deleted resource like a missing one", async () => {
    const own = await call(`${h.base}/Observation/o-123-a`, { method: "HEAD", token });
    expect(own.status).toBe(200);
    expect(own.body).toBeUndefined();
    expect(own.headers.get("etag")).toBe('W/"1"');
    const other = await call(`${h.base}/Observation/o-999-a`, { method: "HEAD", token });
    expect(other.status).toBe(404);
    expect(other.body).toBeUndefined();
    h.fake.seed({
      resourceType: "Observation",
      id: "o-123-gone",
      status: "final",
      code: { text: "x" },
      subject: { reference: "Patient/123" },
    });
    expect((await call(`${h.base}/Observation/o-123-gone`, { method: "DELETE", token })).status).toBeLessThan(
      300,
    );
    const gone = await call(`${h.base}/Observation/o-123-gone`, { token });
    const missing = await call(`${h.base}/Observation/never-was`, { token });
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual(missing.body);
  });

  it("hides a labelled resource and writes the audit record first", async () => {
    const r = await call(`${h.base}/Observation/o-123-secret`, { token });
    expect(r.status).toBe(404);
    const audit = readFileSync(h.auditPath, "utf8");
    expect(audit).toContain("label-restricted");
    expect(audit).toContain("Observation/o-123-secret");
  });

  it("answers a conditional read itself (304 only after the check)", async () => {
    const r = await call(`${h.base}/Observation/o-123-a`, { token, headers: { "if-none-match": 'W/"1"' } });
    expect(r.status).toBe(304);
    const hidden = await call(`${h.base}/Observation/o-999-a`, {
      token,
      headers: { "if-none-match": 'W/"1"' },
    });
    expect(hidden.status).toBe(404);
    const upstreamConditional = h.fake
      .requests("GET")
      .filter((q) => q.headers["if-none-match"] !== undefined);
    expect(upstreamConditional).toEqual([]);
  });

  it("runs ORed alternatives as ONE _filter search ANDed with the client's parameters", async () => {
    const before = h.fake.log.length;
    const r = await call(`${h.base}/Observation?code=1234-5&_count=50`, { token });
    expect(r.status).toBe(200);
    expect(matchIds(r.body).sort()).toEqual(
      ["Observation/o-123-a", "Observation/o-123-perf", "Observation/o-123-perf-only"].sort(),
    );
    const sent = h.fake.log.slice(before).map((q) => decodeURIComponent(q.url));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toContain('_filter=(patient eq "Patient/123") or (performer eq "Patient/123")');
    expect(sent[0]).toContain("code=1234-5");
    // the whole result on one page: total is what the client can see
    expect(r.body.total).toBe(3);
  });

  it("decides POST _search on its form body and narrows it the same way", async () => {
    const before = h.fake.log.length;
    const r = await call(`${h.base}/Observation/_search`, {
      method: "POST",
      token,
      raw: "code=1234-5&_count=50",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(r.status).toBe(200);
    expect(matchIds(r.body).sort()).toEqual(
      ["Observation/o-123-a", "Observation/o-123-perf", "Observation/o-123-perf-only"].sort(),
    );
    const sent = h.fake.log.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.method).toBe("POST");
    expect(sent[0]!.body).toBe("code=1234-5&_count=50");
    expect(decodeURIComponent(sent[0]!.url)).toContain('_filter=(patient eq "Patient/123")');
    const other = await call(`${h.base}/Observation/_search`, {
      method: "POST",
      token,
      raw: "patient=999",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(other.status).toBe(403);
  });

  it("filters every response: labelled and out-of-compartment entries never leave", async () => {
    const r = await call(`${h.base}/Observation?_count=50&_include=Observation:performer`, { token });
    expect(r.status).toBe(200);
    const ids = (r.body.entry as any[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`);
    expect(ids).not.toContain("Observation/o-123-secret");
    // The performer of the patient's own Observation is a linked resource (issue 12): released.
    expect(ids).toContain("Practitioner/prac1");
    expect(ids).toContain("Organization/org1");
    expect(ids.filter((i) => i.startsWith("Observation/o-999"))).toEqual([]);
  });

  it("pages through signed cursors, every page filtered, and loses nothing", async () => {
    const { ids, pages } = await pageAll(`${h.base}/Observation?code=page&_count=5`, token);
    expect(ids.sort()).toEqual(PAGE_IDS);
    expect(pages.length).toBe(3);
    for (const p of pages) {
      const text = JSON.stringify(p);
      expect(text).not.toContain(h.fake.base);
      expect(text).not.toContain("_getpages");
      expect(p.total).toBeUndefined();
      for (const l of p.link ?? []) expect(l.url.startsWith(h.base)).toBe(true);
      for (const e of p.entry ?? []) if (e.fullUrl) expect(e.fullUrl.startsWith(`${h.base}/`)).toBe(true);
    }
    expect(pages[0].link.find((l: any) => l.relation === "self").url).toBe(
      `${h.base}/Observation?code=page&_count=5`,
    );
  });

  it("keeps paging when a page had entries dropped (nothing after it is lost)", async () => {
    const { ids, pages } = await pageAll(
      `${h.base}/Observation?_count=2&_include=Observation:performer`,
      token,
    );
    expect(pages.length).toBeGreaterThan(3);
    const expected = h.fake
      .matches("Observation", [], undefined)
      .filter((r) => JSON.stringify(r).includes('"Patient/123"') && r.id !== "o-123-secret")
      .map((r) => `Observation/${r.id}`);
    expect(ids.sort()).toEqual(expected.sort());
    // A Practitioner is released only beside a released Observation of the page that references it.
    for (const p of pages) {
      const resources = (p.entry ?? []).map((e: any) => e.resource);
      const referenced = JSON.stringify(resources.filter((x: any) => x.resourceType === "Observation"));
      for (const x of resources.filter((x: any) => x.resourceType === "Practitioner"))
        expect(referenced).toContain(`"Practitioner/${x.id}"`);
    }
  });

  it("refuses forged, foreign and replayed-by-another-token cursors, and raw paging parameters", async () => {
    const first = await call(`${h.base}/Observation?code=page&_count=5`, { token });
    const next: string = first.body.link.find((l: any) => l.relation === "next").url;
    const cursor = new URL(next).searchParams.get("cursor")!;
    const [payload, mac] = cursor.split(".") as [string, string];
    // opaque: the server's stored-search id and paging parameters cannot be read from it
    const bytes = Buffer.from(payload, "base64url");
    expect(bytes.includes(Buffer.from("_getpages"))).toBe(false);
    bytes[20]! ^= 1;
    const forged = `${bytes.toString("base64url")}.${mac}`;
    const f = await call(`${h.base}/_page?cursor=${forged}`, { token });
    expect(f.status).toBe(400);
    expect(f.body.resourceType).toBe("OperationOutcome");
    const other = await call(next, { token: token999 });
    expect(other.status).toBe(403);
    // server paging parameters are refused by the proxy itself, whatever the policy's unknown-parameter setting
    const before = h.fake.log.length;
    for (const q of [
      "Observation?_getpages=x",
      "?_getpages=x&_getpagesoffset=5",
      "Observation?code=page&_offset=5",
    ]) {
      const raw = await call(`${h.base}/${q}`, { token });
      expect(raw.status, q).toBe(400);
      expect(raw.body.issue[0].diagnostics, q).toMatch(/follow the paging links/);
    }
    const form = await call(`${h.base}/Observation/_search`, {
      method: "POST",
      token,
      raw: "code=page&_getpages=x",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(form.status).toBe(400);
    expect(h.fake.log.length).toBe(before);
  });

  it("applies _elements itself, after the check, so the server cannot strip what the policy reads", async () => {
    const before = h.fake.log.length;
    const r = await call(`${h.base}/Observation?code=8867-4&_elements=status`, { token });
    expect(r.status).toBe(200);
    expect(matchIds(r.body)).toEqual(["Observation/o-123-b"]);
    const res = r.body.entry[0].resource;
    expect(res.status).toBe("final");
    expect(res.subject).toBeUndefined();
    expect(res.meta.tag).toContainEqual(expect.objectContaining({ code: "SUBSETTED" }));
    expect(h.fake.log.slice(before).some((q) => q.url.includes("_elements"))).toBe(false);
  });

  it("turns a compartment search into one narrowed type search on a server without compartment search", async () => {
    const before = h.fake.log.length;
    const r = await call(`${h.base}/Patient/123/Observation?code=1234-5`, { token });
    expect(r.status).toBe(200);
    expect(matchIds(r.body).sort()).toEqual(
      ["Observation/o-123-a", "Observation/o-123-perf", "Observation/o-123-perf-only"].sort(),
    );
    const sent = h.fake.log.slice(before).map((q) => decodeURIComponent(q.url));
    expect(sent).toEqual([
      '/fhir/Observation?code=1234-5&_filter=(patient eq "Patient/123") or (performer eq "Patient/123")',
    ]);
    expect(r.body.link.find((l: any) => l.relation === "self").url).toBe(
      `${h.base}/Patient/123/Observation?code=1234-5`,
    );
    const other = await call(`${h.base}/Patient/999/Observation`, { token });
    expect(other.status).toBe(403);
  });

  it("filters $everything", async () => {
    const r = await call(`${h.base}/Patient/123/$everything`, { token });
    expect(r.status).toBe(200);
    const ids = matchIds(r.body);
    expect(ids).toContain("Patient/123");
    expect(ids).toContain("Observation/o-123-perf");
    expect(ids).not.toContain("Patient/777");
    expect(ids).not.toContain("Observation/o-123-secret");
  });

  it("logs one line per request without URL, token or content, and counts requests and upstream time", async () => {
    const lines = h.logs.find("proxy request");
    const decisions = h.logs.find("decision").filter((l) => l.endpoint === "proxy");
    expect(decisions.length).toBeGreaterThan(10);
    // every decision line names the request it belongs to
    const ids = new Set(lines.map((l) => l.request_id));
    expect(decisions.every((d) => ids.has(d.request_id))).toBe(true);
    expect(lines.length).toBeGreaterThan(10);
    const text = JSON.stringify(lines);
    expect(text).not.toContain("o-123");
    expect(text).not.toContain("Patient/123");
    expect(text).not.toContain(token);
    expect(lines[0]).toMatchObject({ interaction: expect.any(String), status: expect.any(Number) });
    const metrics = await (await fetch(`${h.service.url}/metrics`)).text();
    expect(metrics).toMatch(/smart_authz_proxy_requests_total\{interaction="read",status="2xx"\} \d+/);
    expect(metrics).toMatch(/smart_authz_proxy_upstream_duration_seconds_count\{outcome="2xx"\} \d+/);
    expect(metrics).toMatch(/smart_authz_decisions_total\{endpoint="proxy",outcome="deny"\} \d+/);
  });

  it("refuses requests beyond the evaluation bounds (limits.*) before the policy or the server sees them", async () => {
    const before = h.fake.log.length;
    const many = Array.from({ length: 150 }, (_, i) => `code=c${i}`).join("&");
    const r = await call(`${h.base}/Observation?${many}`, { token });
    expect(r.status).toBe(400);
    expect(r.body.issue[0].code).toBe("too-costly");
    const long = await call(`${h.base}/Observation?code=${"x".repeat(9000)}`, { token });
    expect(long.status).toBe(400);
    const batch = await call(h.base, {
      method: "POST",
      token,
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [{ request: { method: "GET", url: `Observation?${many}` } }],
      },
    });
    expect(batch.status).toBe(400);
    expect(h.fake.log.length).toBe(before);
  });

  it("denies with the policy's status, OperationOutcome and insufficient_scope challenge", async () => {
    const narrow = await demoToken("patient/Observation.rs", "123");
    const r = await call(`${h.base}/Condition?code=x`, { token: narrow });
    expect(r.status).toBe(403);
    expect(r.headers.get("www-authenticate")).toMatch(
      /error="insufficient_scope", scope="patient\/Condition\.s"/,
    );
    expect(r.body.resourceType).toBe("OperationOutcome");
  });
});
