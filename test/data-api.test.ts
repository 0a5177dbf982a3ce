/**
 * /v1/data: M5 (it trusts callers exactly as /v1/decision does, writes no audit record for an
 * unauthenticated caller, and can be turned off) and the OPA Data API conventions OPA users rely
 * on (no Content-Type needed, GET with or without input, missing input with OPA's warning,
 * ?pretty, ?metrics, ?instrument, ?provenance, ?explain refused), plus OPA's /health parameters.
 * Through HTTP against the real service with the fixture policy; every answer is checked against
 * openapi.yaml.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../src/server.js";
import { LogSink, buildFixtureBundle, tempDir } from "./helpers/fixtures.js";
import { OpenApiChecker } from "./helpers/openapi.js";
import { TestIssuer } from "./helpers/servers.js";
import { serviceConfig, type ServiceConfigSpec } from "./helpers/service-config.js";

const openapi = new OpenApiChecker();
let issuer: TestIssuer;
let service: Service;
let dir: string;

function spec(extra: Partial<ServiceConfigSpec> = {}): ServiceConfigSpec {
  return {
    issuers: [issuer.configEntry],
    bundle: buildFixtureBundle("rev-1"),
    audit: { path: "audit.jsonl" },
    ...extra,
  };
}

async function start(extra: Partial<ServiceConfigSpec> = {}): Promise<{ service: Service; dir: string }> {
  const d = tempDir();
  const s = await startService(serviceConfig(d, spec(extra)), {
    logDestination: new LogSink(),
    defaultMetrics: false,
  });
  return { service: s, dir: d };
}

function audits(inDir = dir): Record<string, any>[] {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  const path = join(inDir, "audit.jsonl");
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked against openapi.yaml
}

async function call(
  method: string,
  path: string,
  init: { json?: unknown; raw?: string | Blob; headers?: Record<string, string>; base?: string } = {},
): Promise<Reply> {
  const headers = { ...(init.headers ?? {}) };
  let body: string | Blob | undefined = init.raw;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(`${init.base ?? service.url}${path}`, { method, headers, body });
  const text = await res.text();
  const parsed = res.headers.get("content-type")?.includes("json") && text ? JSON.parse(text) : text;
  openapi.check(method, path, res.status, res.headers.get("content-type"), parsed);
  return { status: res.status, headers: res.headers, text, body: parsed };
}

const GET_OBS = { method: "GET", url: "Observation?patient=123" };

beforeAll(async () => {
  issuer = await TestIssuer.start();
  ({ service, dir } = await start());
});
afterAll(async () => {
  await service?.close();
  await issuer?.close();
});

describe("/v1/data trusts callers as /v1/decision does (M5)", () => {
  it("refuses forged input.claims and writes no audit record for them", async () => {
    const before = audits().length;
    const r = await call("POST", "/v1/data/smart/api/decision", {
      json: {
        input: {
          claims: { scope: "patient/Observation.rs", sub: "dr.innocent" },
          request: { method: "GET", url: "Audited/1" },
        },
      },
    });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      code: "invalid_parameter",
      message:
        '"input.claims" are not accepted: send the raw access token in "input.token" (tokens.trust_forwarded_claims is false)',
    });
    expect(audits()).toHaveLength(before);
  });

  it("verifies input.token, decides with its claims and audits the decision", async () => {
    const token = await issuer.token({ sub: "dr.real" });
    const r = await call("POST", "/v1/data/smart/api/decision", {
      json: { input: { token, request: { method: "GET", url: "Audited/7" } } },
    });
    expect(r.status).toBe(200);
    expect(r.body.result).toMatchObject({ decision: "allow" });
    expect(audits().at(-1)).toMatchObject({
      decision_id: r.body.decision_id,
      event: { entity: [{ what: { reference: "Audited/7" } }] },
    });
    expect(r.headers.get("x-decision-id")).toBe(r.body.decision_id);
  });

  it("answers a rejected input.token with 401 and a challenge, and refuses a token with claims", async () => {
    const expired = await issuer.token({}, { expiresIn: -3600 });
    const r = await call("POST", "/v1/data/smart/api/decision", {
      json: { input: { token: expired, request: GET_OBS } },
    });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe("unauthorized");
    expect(r.body.message).toMatch(/expired/);
    expect(r.headers.get("www-authenticate")).toMatch(/^Bearer realm="smart-authz", error="invalid_token"/);
    const both = await call("POST", "/v1/data/smart/api/decision", {
      json: { input: { token: expired, claims: {}, request: GET_OBS } },
    });
    expect(both.status).toBe(400);
  });

  it("never writes an audit record for an unauthenticated caller: the decision is refused instead", async () => {
    const before = audits().length;
    const r = await call("POST", "/v1/data/smart/api/decision", {
      json: { input: { request: { method: "GET", url: "AuditedAnonymous/1" } } },
    });
    expect(r.status).toBe(200);
    expect(r.body.result).toMatchObject({
      decision: "deny",
      status: 401,
      reasons: [{ code: "audit-needs-authentication" }],
      outcome: { resourceType: "OperationOutcome" },
    });
    expect(audits()).toHaveLength(before);
  });

  it("decides at the server's time, not a caller's input.now (L3)", async () => {
    const token = await issuer.token();
    const r = await call("POST", "/v1/data/smart/api/decision", {
      json: { input: { token, request: GET_OBS, now: "2020-01-01T00:00:00Z" } },
    });
    expect(r.body.result.decision).toBe("allow");
    expect(Math.abs(Date.parse(r.body.result.now) - Date.now())).toBeLessThan(60_000);
  });

  it("takes forwarded claims and now only when the config trusts them", async () => {
    const trusting = await start({ tokens: { trust_forwarded_claims: true, trust_forwarded_now: true } });
    try {
      const r = await call("POST", "/v1/data/smart/api/decision", {
        base: trusting.service.url,
        json: {
          input: {
            claims: { scope: "patient/Observation.rs" },
            request: { method: "GET", url: "Audited/9" },
            now: "2020-01-01T00:00:00Z",
          },
        },
      });
      expect(r.body.result.decision).toBe("allow");
      expect(audits(trusting.dir).at(-1)).toMatchObject({ decision_id: r.body.decision_id });
      const now = await call("POST", "/v1/data/smart/api/decision", {
        base: trusting.service.url,
        json: {
          input: {
            claims: { scope: "patient/Observation.rs" },
            request: GET_OBS,
            now: "2020-01-01T00:00:00Z",
          },
        },
      });
      expect(now.body.result.now).toBe("2020-01-01T00:00:00Z");
    } finally {
      await trusting.service.close();
    }
  });

  it("is off entirely with server.data_api: false", async () => {
    const off = await start({ server: { data_api: false } });
    try {
      for (const method of ["GET", "POST"]) {
        const r = await call(method, "/v1/data/smart/api/decision", { base: off.service.url });
        expect(r.status).toBe(404);
        expect(r.body).toEqual({
          code: "resource_not_found",
          message: "the Data API is turned off (server.data_api: false)",
        });
      }
      // The decision API is unaffected.
      const token = await issuer.token();
      expect(
        (await call("POST", "/v1/decision", { base: off.service.url, json: { token, request: GET_OBS } }))
          .body.decision,
      ).toBe("allow");
    } finally {
      await off.service.close();
    }
  });
});

describe("OPA Data API conventions", () => {
  it("needs no Content-Type, and reads JSON sent as text/plain", async () => {
    const token = await issuer.token();
    const body = JSON.stringify({ input: { token, request: GET_OBS } });
    const none = await call("POST", "/v1/data/smart/api/decision", { raw: new Blob([body]) });
    expect(none.status).toBe(200);
    expect(none.body.result.decision).toBe("allow");
    const text = await call("POST", "/v1/data/smart/api/decision", {
      raw: body,
      headers: { "content-type": "text/plain" },
    });
    expect(text.body.result.decision).toBe("allow");
  });

  it("evaluates without input when there is none, with OPA's warning for a POST", async () => {
    for (const raw of [undefined, "", "{}", '{"inptu": {}}']) {
      const r = await call("POST", "/v1/data/smart/api/scopes", { raw });
      expect(r.status, String(raw)).toBe(200);
      expect(r.body.warning).toEqual({
        code: "api_usage_warning",
        message: "'input' key missing from the request",
      });
      // The scopes entrypoint is undefined without input: no result key at all.
      expect("result" in r.body).toBe(false);
    }
    const get = await call("GET", "/v1/data/smart/api/scopes");
    expect(get.status).toBe(200);
    expect(get.body.warning).toBeUndefined();
    expect("result" in get.body).toBe(false);
  });

  it("reads GET input from the query, the last one counting", async () => {
    const q = encodeURIComponent(JSON.stringify({ scope: "a b" }));
    const r = await call(
      "GET",
      `/v1/data/smart/api/scopes?input=${encodeURIComponent('{"scope":"x"}')}&input=${q}`,
    );
    expect(r.body.result).toEqual(["a", "b"]);
    expect((await call("GET", "/v1/data/smart/api/scopes?input=%7Bnope")).status).toBe(400);
    // The trust rules hold for GET too.
    const forged = encodeURIComponent(
      JSON.stringify({ claims: { scope: "patient/Observation.rs" }, request: GET_OBS }),
    );
    expect((await call("GET", `/v1/data/smart/api/decision?input=${forged}`)).status).toBe(400);
  });

  it("answers ?pretty with indented JSON, ?metrics and ?instrument with OPA's timers, ?provenance with the revision", async () => {
    const input = { input: { scope: "a" } };
    const plain = await call("POST", "/v1/data/smart/api/scopes", { json: input });
    expect(plain.text).not.toContain("\n");
    for (const q of ["?pretty", "?pretty=true", "?pretty=TRUE"]) {
      const r = await call("POST", `/v1/data/smart/api/scopes${q}`, { json: input });
      expect(r.text, q).toContain('\n  "result": [\n    "a"\n  ]');
    }
    expect(
      (await call("POST", "/v1/data/smart/api/scopes?pretty=false", { json: input })).text,
    ).not.toContain("\n");
    for (const q of ["?metrics", "?metrics=true", "?instrument"]) {
      const r = await call("POST", `/v1/data/smart/api/scopes${q}`, { json: input });
      expect(r.body.metrics, q).toEqual({
        timer_rego_input_parse_ns: expect.any(Number),
        timer_rego_query_eval_ns: expect.any(Number),
        timer_server_handler_ns: expect.any(Number),
      });
      expect(Number.isInteger(r.body.metrics.timer_rego_query_eval_ns)).toBe(true);
      expect(r.body.metrics.timer_server_handler_ns).toBeGreaterThanOrEqual(
        r.body.metrics.timer_rego_query_eval_ns,
      );
    }
    expect(plain.body.metrics).toBeUndefined();
    const prov = await call("GET", "/v1/data/smart/api/scopes?provenance", {});
    expect(prov.body.provenance).toEqual({ version: "0.1.0", revision: "rev-1" });
  });

  it("refuses ?explain it cannot honour, and accepts explain=off", async () => {
    for (const mode of ["full", "notes", "fails", "debug"]) {
      const r = await call("POST", `/v1/data/smart/api/scopes?explain=${mode}`, {
        json: { input: { scope: "a" } },
      });
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(/explain=.* is not supported/);
    }
    expect(
      (await call("POST", "/v1/data/smart/api/scopes?explain=off", { json: { input: { scope: "a" } } }))
        .status,
    ).toBe(200);
  });

  it("refuses YAML and bodies that are not JSON objects", async () => {
    expect(
      (
        await call("POST", "/v1/data/smart/api/scopes", {
          raw: "input: {}",
          headers: { "content-type": "application/yaml" },
        })
      ).status,
    ).toBe(415);
    expect((await call("POST", "/v1/data/smart/api/scopes", { raw: "{nope" })).status).toBe(400);
    expect((await call("POST", "/v1/data/smart/api/scopes", { raw: "[1]" })).status).toBe(400);
  });
});

describe("/health with OPA's parameters", () => {
  it("accepts ?bundles and ?bundle, and checks data documents for ?plugins", async () => {
    for (const q of ["", "?bundles", "?bundle=true", "?plugins"]) {
      expect((await call("GET", `/health${q}`)).status, q).toBe(200);
    }
    const withData = await start({ data: { relationships: { source: "missing.json" } } });
    try {
      const base = withData.service.url;
      expect((await call("GET", "/health?bundles", { base })).status).toBe(200);
      const plugins = await call("GET", "/health?plugins", { base });
      expect(plugins).toMatchObject({
        status: 500,
        body: { error: "one or more plugins are not up: data document relationships" },
      });
      expect((await call("GET", "/health?plugins&exclude-plugin=relationships", { base })).status).toBe(200);
    } finally {
      await withData.service.close();
    }
  });
});
