/**
 * How the proxy talks to the FHIR server: the narrowing strategy chosen by what the server
 * announces (or the config), the fallbacks, JSON only, credentials and forwarded headers, and
 * failing closed on answers it cannot read (not JSON, too large, too late).
 */
import { existsSync } from "node:fs";
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
const CODE_1234 = ["Observation/o-123-a", "Observation/o-123-perf", "Observation/o-123-perf-only"].sort();

describe.skipIf(!built)("proxy: narrowing strategies", () => {
  let token: string;
  beforeAll(async () => {
    token = await demoToken("patient/*.cruds", "123");
  });

  async function withHarness(
    fake: Parameters<typeof startHarness>[0],
    proxy: Record<string, unknown>,
    run: (h: Harness) => Promise<void>,
  ) {
    const h = await startHarness(fake, proxy);
    h.fake.seed(...SEED);
    try {
      await run(h);
    } finally {
      await h.close();
    }
  }

  it("uses compartment search when the server announces it and has no _filter", async () => {
    await withHarness({ compartment: true }, {}, async (h) => {
      const before = h.fake.log.length;
      const r = await call(`${h.base}/Observation?code=1234-5`, { token });
      expect(r.status).toBe(200);
      expect(matchIds(r.body).sort()).toEqual(CODE_1234);
      const sent = h.fake.log.slice(before);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.url).toMatch(/^\/fhir\/Patient\/123\/Observation\?code=1234-5$/);
      // self is the client's request, not the server's compartment URL
      expect(r.body.link.find((l: any) => l.relation === "self").url).toBe(
        `${h.base}/Observation?code=1234-5`,
      );
    });
  });

  it("falls back to the primary parameter and says which records it leaves out", async () => {
    await withHarness({}, { narrowing: { fallback: "primary" } }, async (h) => {
      const r = await call(`${h.base}/Observation?code=1234-5`, { token });
      expect(r.status).toBe(200);
      expect(matchIds(r.body)).toEqual(["Observation/o-123-a"]);
      const outcome = (r.body.entry as any[]).find((e) => e.search?.mode === "outcome");
      expect(outcome.resource.issue[0]).toMatchObject({ severity: "warning" });
      expect(outcome.resource.issue[0].diagnostics).toContain("performer=Patient/123");
      expect(decodeURIComponent(h.fake.log.at(-1)!.url)).toContain("patient=Patient/123");
    });
  });

  it("refuses, when configured to, what it cannot narrow exactly", async () => {
    await withHarness({}, { narrowing: { fallback: "refuse" } }, async (h) => {
      const before = h.fake.log.length;
      const r = await call(`${h.base}/Observation?code=1234-5`, { token });
      expect(r.status).toBe(403);
      expect(r.body.issue[0].diagnostics).toContain("patient=Patient/123 OR performer=Patient/123");
      expect(h.fake.log.length).toBe(before);
      // one alternative needs no combining
      const enc = await call(`${h.base}/Encounter`, { token });
      expect(enc.status).toBe(200);
    });
  });

  it("with response-filter, searches unnarrowed and filters every page: complete", async () => {
    await withHarness({ pageSize: 4 }, { narrowing: { fallback: "response-filter" } }, async (h) => {
      const { ids, pages } = await pageAll(`${h.base}/Observation?code=1234-5`, token);
      expect(ids.sort()).toEqual(CODE_1234);
      expect(pages.length).toBeGreaterThan(1);
      const all = await pageAll(`${h.base}/Observation?code=page&_count=4`, token);
      expect(all.ids).toHaveLength(12);
      expect(all.ids.every((i) => i.startsWith("Observation/o-123-p"))).toBe(true);
      // a conditional write cannot be filtered afterwards
      const del = await call(`${h.base}/Observation?code=1234-5`, { method: "DELETE", token });
      expect(del.status).toBe(403);
    });
  });

  it("refuses narrowed searches while the server's capabilities are unknown (auto), but not single ones", async () => {
    await withHarness(
      {
        override: (q) =>
          q.url.startsWith("/fhir/metadata") ? { status: 503, type: "text/plain", body: "down" } : undefined,
      },
      {},
      async (h) => {
        const r = await call(`${h.base}/Observation?code=1234-5`, { token });
        expect(r.status).toBe(503);
        const single = await call(`${h.base}/Encounter`, { token });
        expect(single.status).toBe(200);
      },
    );
  });

  it("reads the capabilities again when a narrowed search needs them, once the server answers", async () => {
    let down = true;
    await withHarness(
      {
        filter: true,
        override: (q) =>
          down && q.url.startsWith("/fhir/metadata")
            ? { status: 503, type: "text/plain", body: "busy" }
            : undefined,
      },
      {},
      async (h) => {
        down = false;
        await new Promise((r) => setTimeout(r, 1100));
        const r = await call(`${h.base}/Observation?code=1234-5`, { token });
        expect(r.status).toBe(200);
        expect(matchIds(r.body).sort()).toEqual(CODE_1234);
      },
    );
  });

  it("uses _filter when configured to, whatever the server says", async () => {
    await withHarness(
      { filter: true, compartment: true },
      { narrowing: { strategy: "filter" } },
      async (h) => {
        const r = await call(`${h.base}/Observation?code=1234-5`, { token });
        expect(matchIds(r.body).sort()).toEqual(CODE_1234);
        expect(decodeURIComponent(h.fake.log.at(-1)!.url)).toContain("_filter=");
      },
    );
  });
});

describe.skipIf(!built)("proxy: JSON only, upstream hygiene, failing closed", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await startHarness(
      { filter: true },
      {
        public_base_url: "https://fhir.example.org/r4",
        upstream: {
          auth: { type: "bearer", token_env: "UPSTREAM_TOKEN" },
          timeout_ms: 500,
          max_response_size: "64kb",
        },
      },
      { UPSTREAM_TOKEN: "upstream-secret" },
    );
    h.fake.seed(...SEED);
    token = await demoToken("patient/*.cruds", "123");
  });
  afterAll(async () => h?.close());

  const local = (path: string) => `${h.service.proxy!.url}/fhir${path}`;

  it("refuses XML with 406/415 before anything reaches the server", async () => {
    const before = h.fake.log.length;
    const f = await call(local("/Observation/o-123-a?_format=xml"), { token });
    expect(f.status).toBe(406);
    expect(f.body.resourceType).toBe("OperationOutcome");
    const a = await call(local("/Observation/o-123-a"), {
      token,
      headers: { accept: "application/fhir+xml" },
    });
    expect(a.status).toBe(406);
    const c = await call(local("/Observation"), {
      method: "POST",
      token,
      headers: { "content-type": "application/fhir+xml" },
      raw: "<Observation/>",
    });
    expect(c.status).toBe(415);
    // _format in a POST _search form body is a search parameter like any other
    const form = await call(local("/Observation/_search"), {
      method: "POST",
      token,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      raw: "code=x&_format=xml",
    });
    expect(form.status).toBe(406);
    expect(h.fake.log.length).toBe(before);
    const ok = await call(local("/Observation/o-123-a?_format=json"), {
      token,
      headers: { accept: "application/fhir+json, application/fhir+xml;q=0.5" },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
  });

  it("sends its own credentials, never the client's token, and forwarded headers", async () => {
    await call(local("/Observation/o-123-a"), {
      token,
      headers: { "x-request-id": "req-42", cookie: "s=1", "proxy-authorization": "x", te: "trailers" },
    });
    const q = h.fake.log.at(-1)!;
    expect(q.headers.authorization).toBe("Bearer upstream-secret");
    expect(JSON.stringify(q.headers)).not.toContain(token);
    expect(q.headers["x-request-id"]).toBe("req-42");
    expect(q.headers["x-forwarded-proto"]).toBe("https");
    expect(q.headers["x-forwarded-host"]).toBe("fhir.example.org");
    expect(q.headers["x-forwarded-for"]).toMatch(/127\.0\.0\.1/);
    expect(q.headers.cookie).toBeUndefined();
    expect(q.headers["proxy-authorization"]).toBeUndefined();
    expect(q.headers.te).toBeUndefined();
  });

  it("writes addresses with the public base", async () => {
    const r = await call(local("/Observation?code=page&_count=5"), { token });
    expect(r.body.link.every((l: any) => l.url.startsWith("https://fhir.example.org/r4"))).toBe(true);
    expect(r.body.entry[0].fullUrl.startsWith("https://fhir.example.org/r4/Observation/")).toBe(true);
    const md = await call(local("/metadata"));
    expect(md.body.implementation.url).toBe("https://fhir.example.org/r4");
  });

  it("fails closed with 502 when the server answers something that is not JSON", async () => {
    h.fake.options.override = (q) =>
      q.url.includes("o-123-a") ? { status: 200, type: "text/html", body: "<html>oops</html>" } : undefined;
    const html = await call(local("/Observation/o-123-a"), { token });
    h.fake.options.override = (q) =>
      q.url.includes("o-123-a")
        ? { status: 200, type: "application/fhir+json", body: "{not json" }
        : undefined;
    const broken = await call(local("/Observation/o-123-a"), { token });
    h.fake.options.override = undefined;
    expect(html.status).toBe(502);
    expect(broken.status).toBe(502);
    expect(JSON.stringify(html.body)).not.toContain("oops");
  });

  it("fails closed with 502 on an answer over the size limit, 504 on one too late", async () => {
    h.fake.options.override = (q) =>
      q.url.includes("o-123-a")
        ? {
            status: 200,
            type: "application/fhir+json",
            body: JSON.stringify({ resourceType: "Observation", id: "o-123-a", pad: "x".repeat(100_000) }),
          }
        : undefined;
    const big = await call(local("/Observation/o-123-a"), { token });
    expect(big.status).toBe(502);
    h.fake.options.override = undefined;
    h.fake.options.delayMs = 1500;
    const slow = await call(local("/Observation/o-123-a"), { token });
    h.fake.options.delayMs = 0;
    expect(slow.status).toBe(504);
    expect(slow.body.issue[0].code).toBe("timeout");
  });

  it("never releases a server answer to a read of another resource than asked", async () => {
    h.fake.options.override = (q) =>
      q.url.endsWith("/Observation/o-123-a")
        ? {
            status: 200,
            type: "application/fhir+json",
            body: JSON.stringify({
              resourceType: "Observation",
              id: "o-999-a",
              subject: { reference: "Patient/999" },
            }),
          }
        : undefined;
    const r = await call(local("/Observation/o-123-a"), { token });
    h.fake.options.override = undefined;
    expect(r.status).toBe(502);
  });
});

describe.skipIf(!built)("proxy: upstream credentials", () => {
  it("basic credentials from the environment; forward-client-token only when configured", async () => {
    const basic = await startHarness(
      {},
      { upstream: { auth: { type: "basic", username: "svc", password_env: "UP_PW" } } },
      { UP_PW: "pw" },
    );
    const token = await demoToken("patient/*.cruds", "123");
    try {
      basic.fake.seed(...SEED);
      await call(`${basic.base}/Observation/o-123-a`, { token });
      expect(basic.fake.log.at(-1)!.headers.authorization).toBe(
        `Basic ${Buffer.from("svc:pw").toString("base64")}`,
      );
    } finally {
      await basic.close();
    }
    const fwd = await startHarness({}, { upstream: { auth: { type: "forward-client-token" } } });
    try {
      fwd.fake.seed(...SEED);
      await call(`${fwd.base}/Observation/o-123-a`, { token });
      expect(fwd.fake.log.at(-1)!.headers.authorization).toBe(`Bearer ${token}`);
    } finally {
      await fwd.close();
    }
    const none = await startHarness({});
    try {
      none.fake.seed(...SEED);
      await call(`${none.base}/Observation/o-123-a`, { token });
      expect(none.fake.log.at(-1)!.headers.authorization).toBeUndefined();
    } finally {
      await none.close();
    }
  });
});

describe.skipIf(!built)("proxy: a full _filter page without a next link", () => {
  it("is checked for more results, and paging continues by offset", async () => {
    const h = await startHarness({ filter: true, filterQuirk: true });
    const token = await demoToken("patient/*.cruds", "123");
    try {
      h.fake.seed(...SEED);
      const { ids } = await pageAll(`${h.base}/Observation?_count=4`, token);
      const expected = h.fake
        .matches("Observation", [], undefined)
        .filter((r) => JSON.stringify(r).includes('"Patient/123"') && r.id !== "o-123-secret")
        .map((r) => `Observation/${r.id}`);
      expect(ids.sort()).toEqual(expected.sort());
      expect(h.fake.log.some((q) => q.url.includes("_offset=4"))).toBe(true);
    } finally {
      await h.close();
    }
  });
});
