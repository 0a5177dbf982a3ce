/**
 * The proxy's parts on their own: narrowing plans and the `_filter` grammar, paging cursors, the
 * interaction classifier, address rewriting, CapabilityStatement features, `_elements`, the
 * `proxy:` config section and the command's options.
 */
import { describe, expect, it } from "vitest";
import { main } from "../src/cli.js";
import { loadConfig, parseConfig, withProxy } from "../src/ops/config.js";
import { DEFAULT_CONFIG_YAML, PACKAGE_ROOT } from "../src/ops/default-config.js";
import { featuresOf } from "../src/proxy/capabilities.js";
import { CursorSigner, bindingOf, narrowFingerprint } from "../src/proxy/cursor.js";
import { appendParams, classify, targetOf, withoutParams } from "../src/proxy/interaction.js";
import {
  filterExpression,
  filterString,
  planNarrowing,
  splitSearchValues,
  type PlanOptions,
} from "../src/proxy/narrowing.js";
import { proxyFlags } from "../src/proxy/options.js";
import { applyElements } from "../src/proxy/release.js";
import { UrlMap, rewriteBundle } from "../src/proxy/rewrite.js";
import { tempDir, writeFile } from "./helpers/fixtures.js";

const P = "Patient/123";
const both = [{ patient: P }, { performer: P }];
const opts = (o: Partial<PlanOptions> = {}): PlanOptions => ({
  strategy: "auto",
  fallback: "primary",
  features: { filter: new Set(["Observation"]), compartments: new Set() },
  purpose: "search",
  ...o,
});

describe("narrowing plans", () => {
  it("adds nothing without narrow, and one alternative as plain parameters", () => {
    expect(planNarrowing(undefined, "Observation", opts())).toEqual({ kind: "as-is" });
    expect(planNarrowing([], "Observation", opts())).toEqual({ kind: "as-is" });
    expect(planNarrowing([{ patient: P }], "Encounter", opts({ features: undefined }))).toEqual({
      kind: "params",
      form: "single",
      params: [["patient", P]],
    });
  });

  it("runs ORed alternatives as one _filter, with what they share as plain parameters", () => {
    const plan = planNarrowing(
      [
        { _id: "o1", patient: P },
        { _id: "o1", performer: P },
      ],
      "Observation",
      opts(),
    );
    expect(plan).toEqual({
      kind: "params",
      form: "filter",
      params: [
        ["_id", "o1"],
        ["_filter", '(patient eq "Patient/123") or (performer eq "Patient/123")'],
      ],
    });
  });

  it("chooses compartment search when the server has it and no _filter", () => {
    const f = { filter: new Set<string>(), compartments: new Set(["Patient"]) };
    expect(planNarrowing(both, "Observation", opts({ features: f }))).toEqual({
      kind: "compartment",
      compartment: { type: "Patient", id: "123" },
      params: [],
    });
    // alternatives naming different patients are no compartment
    const mixed = [{ patient: P }, { performer: "Patient/999" }];
    expect(planNarrowing(mixed, "Observation", opts({ features: f, fallback: "refuse" })).kind).toBe(
      "refuse",
    );
  });

  it("falls back as configured when neither exists", () => {
    const none = { filter: new Set<string>(), compartments: new Set<string>() };
    expect(planNarrowing(both, "Observation", opts({ features: none }))).toEqual({
      kind: "primary",
      params: [["patient", P]],
      omitted: [{ performer: P }],
    });
    expect(planNarrowing(both, "Observation", opts({ features: none, fallback: "response-filter" }))).toEqual(
      {
        kind: "response-filter",
        params: [],
        alternatives: both,
      },
    );
    expect(
      planNarrowing(
        both,
        "Observation",
        opts({ features: none, fallback: "response-filter", purpose: "write" }),
      ).kind,
    ).toBe("refuse");
    const r = planNarrowing(both, "Observation", opts({ features: none, fallback: "refuse" }));
    expect(r).toMatchObject({ kind: "refuse", status: 403 });
    // no patient/subject alternative: nothing is primary
    const noPrimary = [{ recipient: P }, { sender: P }];
    expect(planNarrowing(noPrimary, "Communication", opts({ features: none })).kind).toBe("refuse");
    // a Patient search with Patient.link followed: the patient itself (_id) is primary
    expect(planNarrowing([{ _id: "123" }, { link: P }], "Patient", opts({ features: none }))).toEqual({
      kind: "primary",
      params: [["_id", "123"]],
      omitted: [{ link: P }],
    });
  });

  it("refuses while the server's features are unknown (auto), and a malformed narrow always", () => {
    expect(planNarrowing(both, "Observation", opts({ features: undefined }))).toMatchObject({
      kind: "refuse",
      status: 503,
    });
    for (const bad of [
      {},
      [1],
      [{ "a b": "x" }],
      [{ patient: 5 }],
      [{ patient: "" }],
      [{ patient: "x\ny" }],
    ]) {
      expect(planNarrowing(bad, "Observation", opts()), JSON.stringify(bad)).toMatchObject({
        kind: "refuse",
        status: 500,
      });
    }
  });

  it("an alternative that is only the shared part makes the others redundant", () => {
    expect(
      planNarrowing([{ category: "lab" }, { category: "lab", patient: P }], "Observation", opts()),
    ).toEqual({
      kind: "params",
      form: "single",
      params: [["category", "lab"]],
    });
  });
});

describe("_filter expressions", () => {
  it("escapes quotes and backslashes as JSON strings", () => {
    expect(filterString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(filterExpression([{ code: 'x") or (patient eq "Patient/999' }])).toBe(
      '(code eq "x\\") or (patient eq \\"Patient/999")',
    );
  });

  it("turns ORed search values into ORed comparisons and keeps escaped commas", () => {
    expect(splitSearchValues("a,b\\,c")).toEqual(["a", "b,c"]);
    expect(filterExpression([{ category: "a,b", patient: P }, { performer: P }])).toBe(
      '((category eq "a" or category eq "b") and patient eq "Patient/123") or (performer eq "Patient/123")',
    );
  });
});

describe("paging cursors", () => {
  const request = { method: "GET", url: "Observation?code=x" };
  let now = 1_000_000;
  const signer = new CursorSigner("k".repeat(40), 60_000, () => now);
  const payload = { page: "?_getpages=a&_getpagesoffset=5", request, binding: "b1", narrow: "n1" };

  it("round-trips for the token it is bound to", () => {
    const c = signer.seal(payload);
    expect(signer.open(c, "b1")).toMatchObject({ ...payload, expires: now + 60_000 });
  });

  it("refuses a changed, foreign, expired or malformed cursor", () => {
    const c = signer.seal(payload);
    const [body, mac] = c.split(".") as [string, string];
    const sealed = Buffer.from(body, "base64url");
    sealed[sealed.length - 1]! ^= 1;
    expect(signer.open(`${sealed.toString("base64url")}.${mac}`, "b1")).toMatchObject({ reason: "forged" });
    const tag = Buffer.from(mac, "base64url");
    tag[0]! ^= 1;
    expect(signer.open(`${body}.${tag.toString("base64url")}`, "b1")).toMatchObject({ reason: "forged" });
    expect(new CursorSigner("z".repeat(40), 60_000, () => now).open(c, "b1")).toMatchObject({
      reason: "forged",
    });
    expect(new CursorSigner(undefined, 60_000).open(c, "b1")).toMatchObject({ reason: "forged" });
    expect(signer.open(c, "b2")).toMatchObject({ reason: "other-token" });
    for (const bad of ["", "abc", "a.b.c", "%%.x", "x".repeat(20_000)])
      expect(signer.open(bad, "b1")).toMatchObject({ reason: "malformed" });
    now += 60_001;
    expect(signer.open(c, "b1")).toMatchObject({ reason: "expired" });
  });

  it("is opaque: neither the server's paging address nor the request can be read from it", () => {
    const c = signer.seal(payload);
    const bytes = Buffer.concat(c.split(".").map((p) => Buffer.from(p, "base64url")));
    for (const leak of ["_getpages", "Observation", "code=x", "b1", "n1"])
      expect(bytes.includes(Buffer.from(leak)), leak).toBe(false);
    // sealed twice, two different cursors (a fresh IV each time)
    expect(signer.seal(payload)).not.toBe(c);
  });

  it("binds to issuer, subject, client and patient; fingerprints narrowing regardless of order", () => {
    const a = { iss: "i", sub: "s", client_id: "c", patient: "123" };
    expect(bindingOf(a)).toBe(bindingOf({ ...a, scope: "other" }));
    for (const k of ["iss", "sub", "client_id", "patient"])
      expect(bindingOf({ ...a, [k]: "x" })).not.toBe(bindingOf(a));
    expect(narrowFingerprint([{ a: "1", b: "2" }, { c: "3" }])).toBe(
      narrowFingerprint([{ c: "3" }, { b: "2", a: "1" }]),
    );
    expect(narrowFingerprint([{ a: "1" }])).not.toBe(narrowFingerprint([{ a: "2" }]));
    expect(narrowFingerprint(undefined)).toBe(narrowFingerprint(null));
  });
});

describe("interactions", () => {
  it.each([
    ["GET", "", false, "search"],
    ["POST", "", false, "batch"],
    ["GET", "metadata", false, "capabilities"],
    ["GET", ".well-known/smart-configuration", false, "capabilities"],
    ["GET", "_page", true, "page"],
    ["GET", "Observation", true, "search"],
    ["POST", "Observation/_search", false, "search"],
    ["POST", "Observation", false, "create"],
    ["PUT", "Observation", true, "conditional"],
    ["DELETE", "Observation", true, "conditional"],
    ["PUT", "Observation", false, "unsupported"],
    ["GET", "Observation/o1", false, "read"],
    ["HEAD", "Observation/o1", false, "read"],
    ["GET", "Observation/o1/_history/2", false, "read"],
    ["GET", "Observation/o1/_history", false, "history"],
    ["GET", "Observation/_history", false, "history"],
    ["GET", "_history", false, "history"],
    ["PUT", "Observation/o1", false, "update"],
    ["PATCH", "Observation/o1", false, "patch"],
    ["DELETE", "Observation/o1", false, "delete"],
    ["GET", "Patient/123/$everything", false, "operation"],
    ["GET", "Patient/123/Observation", false, "compartment-search"],
    ["GET", "observation/o1", false, "unsupported"],
    ["GET", "Observation/o1/x/y", false, "unsupported"],
    ["POST", "Observation/o1", false, "unsupported"],
  ])("%s %s → %s", (method, path, hasQuery, kind) => {
    const t = targetOf(`/fhir${path ? `/${path}` : ""}`, "/fhir");
    expect(t && !("error" in t)).toBe(true);
    expect(classify(method, (t as { segments: string[] }).segments, hasQuery).kind).toBe(kind);
  });

  it("refuses paths outside the base and undecodable or climbing segments", () => {
    expect(targetOf("/other/Observation", "/fhir")).toBeUndefined();
    expect(targetOf("/fhirx/Observation", "/fhir")).toBeUndefined();
    for (const bad of [
      "/fhir/Observation/%2e%2e",
      "/fhir/Observation//o1",
      "/fhir/Observation/%ZZ",
      "/fhir/a%2Fb",
      "/fhir/x%00",
    ])
      expect(targetOf(bad, "/fhir"), bad).toHaveProperty("error");
  });

  it("removes parameters by decoded name and appends encoded ones, keeping the rest byte for byte", () => {
    expect(withoutParams("a=1&_format=xml&%5Fformat=x&b=%2C", ["_format"])).toBe("a=1&b=%2C");
    expect(appendParams("a=1", [["_filter", 'x eq "y&z"']])).toBe("a=1&_filter=x%20eq%20%22y%26z%22");
  });
});

describe("addresses", () => {
  const urls = new UrlMap("http://fhir.internal:8090/fhir", "https://api.example.org/r4");

  it("maps the server's addresses to the proxy's and leaves others alone", () => {
    expect(urls.toPublic("http://fhir.internal:8090/fhir/Observation/1")).toBe(
      "https://api.example.org/r4/Observation/1",
    );
    expect(urls.toPublic("http://fhir.internal:8090/fhirx/Observation/1")).toBe(
      "http://fhir.internal:8090/fhirx/Observation/1",
    );
    expect(urls.toPublic("urn:uuid:1")).toBe("urn:uuid:1");
    expect(urls.upstreamTarget("http://fhir.internal:8090/fhir?_getpages=x")).toBe("?_getpages=x");
    expect(urls.upstreamTarget("http://evil.example/fhir?_getpages=x")).toBeUndefined();
    expect(urls.upstreamTarget("/admin")).toBeUndefined();
  });

  it("turns paging links into cursors and drops links that leave the server", () => {
    const signer = new CursorSigner(undefined, 60_000);
    const out = rewriteBundle(
      {
        resourceType: "Bundle",
        // HAPI names the stored search by the Bundle's id: it is the `_getpages` value
        id: "a",
        link: [
          { relation: "self", url: "http://fhir.internal:8090/fhir/Observation?_filter=x" },
          { relation: "next", url: "http://fhir.internal:8090/fhir?_getpages=a" },
          { relation: "last", url: "http://evil.example/steal" },
        ],
        entry: [
          {
            fullUrl: "http://fhir.internal:8090/fhir/Observation/1",
            response: { location: "http://fhir.internal:8090/fhir/Observation/1/_history/1" },
          },
        ],
      },
      urls,
      {
        signer,
        binding: { request: { method: "GET", url: "Observation" }, binding: "b", narrow: "n" },
        selfUrl: "https://api.example.org/r4/Observation",
      },
    );
    expect(out.id).toMatch(/^[0-9a-f-]{36}$/);
    const links = out.link as { relation: string; url: string }[];
    expect(links.map((l) => l.relation)).toEqual(["self", "next"]);
    expect(links[0]!.url).toBe("https://api.example.org/r4/Observation");
    expect(links[1]!.url).toMatch(
      /^https:\/\/api\.example\.org\/r4\/_page\?cursor=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/,
    );
    expect(JSON.stringify(out)).not.toContain("fhir.internal");
  });
});

describe("server features", () => {
  it("reads _filter per type and the compartments from a CapabilityStatement", () => {
    const f = featuresOf({
      resourceType: "CapabilityStatement",
      rest: [
        {
          mode: "server",
          compartment: ["http://hl7.org/fhir/CompartmentDefinition/patient"],
          resource: [
            { type: "Observation", searchParam: [{ name: "_filter" }, { name: "code" }] },
            { type: "Encounter", searchParam: [{ name: "code" }] },
          ],
        },
      ],
    });
    expect(f).toEqual({ filter: new Set(["Observation"]), compartments: new Set(["Patient"]) });
    expect(featuresOf({ resourceType: "Patient" })).toMatch(/not a CapabilityStatement/);
  });
});

describe("_elements", () => {
  it("keeps id, meta and the named elements, and tags SUBSETTED", () => {
    const r = applyElements(
      {
        resourceType: "Observation",
        id: "o1",
        meta: { security: [{ code: "R" }] },
        status: "final",
        subject: { reference: "x" },
      },
      ["status", "Observation.code"],
    );
    expect(r).toEqual({
      resourceType: "Observation",
      id: "o1",
      status: "final",
      meta: {
        security: [{ code: "R" }],
        tag: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", code: "SUBSETTED" }],
      },
    });
  });
});

describe("the proxy: config section", () => {
  const base = `${DEFAULT_CONFIG_YAML}\nproxy:\n`;
  const parse = (section: string) => parseConfig(`${base}${section}`, "p.yaml", PACKAGE_ROOT);

  it("fills in defaults", () => {
    const c = parse("  upstream:\n    url: http://fhir:8080/fhir/\n");
    expect(c.proxy).toEqual({
      host: "127.0.0.1",
      port: 8080,
      basePath: "/fhir",
      publicBaseUrl: undefined,
      bodyLimitBytes: 4 * 1024 * 1024,
      upstream: {
        url: "http://fhir:8080/fhir",
        auth: { type: "none" },
        timeoutMs: 30_000,
        maxResponseBytes: 16 * 1024 * 1024,
        capabilityRefreshMs: 300_000,
      },
      narrowing: { strategy: "auto", fallback: "primary" },
      cursor: { keyEnv: "SMART_AUTHZ_PROXY_CURSOR_KEY", key: undefined, ttlMs: 900_000 },
    });
  });

  it("reports each problem at its line", () => {
    const yaml =
      "  listen: nope\n  base_path: fhir\n  upstream:\n    url: ftp://x\n    auth: {type: bearer}\n    extra: 1\n  narrowing: {strategy: magic, fallback: guess}\n  cursor: {key_env: 'a b', ttl_seconds: 1}\n";
    let message = "";
    try {
      parse(yaml);
    } catch (err) {
      message = (err as Error).message;
    }
    for (const expected of [
      "proxy.listen:",
      'proxy.base_path: must be a plain path starting with "/"',
      "proxy.upstream.url: must be an absolute http:// or https:// URL",
      'proxy.upstream.auth.token_env: required with type "bearer"',
      "proxy.upstream.extra: unknown field",
      "proxy.narrowing.strategy: must be one of auto, filter, compartment, single",
      "proxy.narrowing.fallback: must be one of primary, response-filter, refuse",
      "proxy.cursor.key_env: must match ^[A-Z_][A-Z0-9_]*$",
      "proxy.cursor.ttl_seconds: must be a whole number from 10 to 86400",
    ])
      expect(message).toContain(expected);
    expect(message).toMatch(/p\.yaml:\d+:\d+: proxy\.upstream\.url/);
    expect(() => parse("  upstream:\n    url: http://user:pw@fhir/fhir\n")).toThrow(
      /must not carry credentials/,
    );
  });

  it("reads secrets from the environment only, and refuses short cursor keys", () => {
    const file = writeFile(
      tempDir(),
      "p.yaml",
      `${base}  upstream:\n    url: http://fhir/fhir\n    auth: {type: basic, username: svc, password_env: UP_PW}\n  cursor: {key_env: CUR_KEY}\n`,
    );
    expect(() => loadConfig(file, {})).toThrow(/UP_PW must hold the upstream password/);
    expect(() => loadConfig(file, { UP_PW: "pw", CUR_KEY: "short" })).toThrow(/at least 32/);
    const ok = loadConfig(file, { UP_PW: "pw", CUR_KEY: "c".repeat(32) });
    expect(ok.proxy?.upstream.auth).toEqual({
      type: "basic",
      username: "svc",
      passwordEnv: "UP_PW",
      password: "pw",
    });
    expect(ok.proxy?.cursor.key).toBe("c".repeat(32));
    expect(loadConfig(file, { UP_PW: "pw" }).proxy?.cursor.key).toBeUndefined();
    const over = loadConfig(file, {
      UP_PW: "pw",
      SMART_AUTHZ_PROXY_UPSTREAM: "https://other/fhir/",
      SMART_AUTHZ_PROXY_LISTEN: "0.0.0.0:9443",
    });
    expect(over.proxy).toMatchObject({
      host: "0.0.0.0",
      port: 9443,
      upstream: { url: "https://other/fhir" },
    });
  });

  it("runs with defaults in front of --upstream when the config has no proxy section", () => {
    const plain = parseConfig(DEFAULT_CONFIG_YAML, "d.yaml", PACKAGE_ROOT);
    expect(plain.proxy).toBeUndefined();
    expect(withProxy(plain, undefined, {}).proxy).toBeUndefined();
    expect(withProxy(plain, "http://fhir:1/fhir", {}).proxy?.upstream.url).toBe("http://fhir:1/fhir");
    expect(() => withProxy(plain, "not a url", {})).toThrow(/--upstream/);
  });
});

describe("smart-authz proxy flags", () => {
  it("turns --upstream and --proxy-addr into the environment overrides", () => {
    const o = proxyFlags({ upstream: "http://f/fhir", "proxy-addr": "0.0.0.0:9" }, { A: "1" });
    expect(o).toEqual({
      upstream: "http://f/fhir",
      env: { A: "1", SMART_AUTHZ_PROXY_UPSTREAM: "http://f/fhir", SMART_AUTHZ_PROXY_LISTEN: "0.0.0.0:9" },
    });
    expect(proxyFlags({}, { SMART_AUTHZ_PROXY_UPSTREAM: "http://g/fhir" }).upstream).toBe("http://g/fhir");
    expect(() => proxyFlags({ "proxy-addr": "nope" }, {})).toThrow(/--proxy-addr/);
  });

  it("exits 2 on a bad flag or without an upstream", async () => {
    let err = "";
    const io = { stdout: () => {}, stderr: (t: string) => (err += t), stdin: () => "", env: {} };
    expect(await main(["proxy", "--bogus"], io)).toBe(2);
    err = "";
    expect(await main(["proxy"], io)).toBe(2);
    expect(err).toContain("the proxy needs a `proxy:` section");
    err = "";
    expect(await main(["proxy", "--upstream", "ftp://x"], io)).toBe(2);
    expect(err).toContain("proxy.upstream.url");
  });
});
