/**
 * The real service on a free port: every endpoint, token verification against a JWKS served over
 * HTTP (with rotation), bundle hot reload with a bad bundle, decision logs, graceful shutdown.
 * Every response is checked against openapi.yaml.
 */
import { request as httpRequest } from "node:http";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../src/ops/config.js";
import { relativeToBase as relativeToBaseOf } from "../src/api/gateway-request.js";

const relativeToBase = (path: string, base: string) => relativeToBaseOf(path, base).url;
import { startService, type Service } from "../src/server.js";
import { LogSink, buildFixtureBundle, tempDir } from "./helpers/fixtures.js";
import { OpenApiChecker } from "./helpers/openapi.js";
import { BundleServer, TestIssuer } from "./helpers/servers.js";
import { serviceConfig, type ServiceConfigSpec } from "./helpers/service-config.js";

const openapi = new OpenApiChecker();
let issuer: TestIssuer;
let service: Service;
let logs: LogSink;
let dir: string;
let bundlePath: string;
let auditPath: string;

/** The audit file's records, parsed. */
function auditRecords(path = auditPath): Record<string, any>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, any>);
}

function configSpec(extra: Partial<ServiceConfigSpec> = {}): ServiceConfigSpec {
  return {
    issuers: [issuer.configEntry],
    bundle: freshBundle(),
    ...extra,
    server: { body_limit: "16kb", fhir_base_path: "/fhir", ...extra.server },
    tokens: { jwks_cooldown_seconds: 0, ...extra.tokens },
    logging: { level: "info", ...extra.logging },
    policy: { audit: { observer: "from-config" } },
  };
}

async function start(
  spec: ServiceConfigSpec,
  sink = new LogSink(),
): Promise<{ service: Service; logs: LogSink }> {
  const config: Config = serviceConfig(dir, spec, {}, "test.yaml");
  return { service: await startService(config, { logDestination: sink, defaultMetrics: false }), logs: sink };
}

interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- response bodies are checked against openapi.yaml
  text: string;
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string>; base?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  } else if (body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(`${options.base ?? service.url}${path}`, { method, headers, body });
  const text = await res.text();
  const contentType = res.headers.get("content-type");
  const parsed = contentType?.includes("json") && text ? JSON.parse(text) : text;
  openapi.check(method, path, res.status, contentType, parsed);
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** A private copy of the fixture bundle for one service. */
function freshBundle(): string {
  const path = join(tempDir(), "bundle.tar.gz");
  writeFileSync(path, readFileSync(buildFixtureBundle("rev-1")));
  return path;
}

const GET_OBS = { method: "GET", url: "Observation?patient=123" };

beforeAll(async () => {
  issuer = await TestIssuer.start();
  dir = tempDir();
  bundlePath = join(dir, "bundle.tar.gz");
  writeFileSync(bundlePath, readFileSync(buildFixtureBundle("rev-1")));
  auditPath = join(dir, "audit.jsonl");
  ({ service, logs } = await start(
    configSpec({ bundle: bundlePath, audit: { path: "audit.jsonl", sync: "btg" } }),
  ));
});

afterAll(async () => {
  await service.close();
  await issuer.close();
});

describe("POST /v1/decision", () => {
  it("allows with a verified token from the body and reports decision id and revision", async () => {
    const token = await issuer.token();
    const r = await call("POST", "/v1/decision", { body: { token, request: GET_OBS } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ decision: "allow", config_marker: "from-config" });
    expect(Date.now() - Date.parse(r.body.now)).toBeLessThan(10_000);
    expect(r.headers.get("x-decision-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers.get("x-policy-revision")).toBe("rev-1");
    expect(r.headers.get("x-decision")).toBe("allow");
  });

  it("takes the token from a forwarded Authorization header and decides at the server's time, not a given `now` (L3)", async () => {
    const token = await issuer.token();
    const before = Date.now();
    const r = await call("POST", "/v1/decision", {
      body: { request: GET_OBS, now: "2026-11-22T10:00:00Z" },
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.body.decision).toBe("allow");
    expect(r.body.now).not.toBe("2026-11-22T10:00:00Z");
    expect(Date.parse(r.body.now)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(r.body.now)).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it("answers 200 with the deny in default mode, and mirrors it with insufficient_scope in gateway mode", async () => {
    const token = await issuer.token({ scope: "openid" });
    const plain = await call("POST", "/v1/decision", { body: { token, request: GET_OBS } });
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({
      decision: "deny",
      status: 403,
      required_scopes: ["patient/Observation.rs"],
    });
    expect(plain.headers.get("www-authenticate")).toBeNull();

    const gw = await call("POST", "/v1/decision?mode=gateway", { body: { token, request: GET_OBS } });
    expect(gw.status).toBe(403);
    expect(gw.headers.get("www-authenticate")).toBe(
      'Bearer realm="smart-authz", error="insufficient_scope", scope="patient/Observation.rs"',
    );
    const viaHeader = await call("POST", "/v1/decision", {
      body: { token, request: GET_OBS },
      headers: { "x-smart-authz-mode": "gateway" },
    });
    expect(viaHeader.status).toBe(403);
  });

  it("mirrors a 404 deny and a 200 allow in gateway mode", async () => {
    const token = await issuer.token();
    expect(
      (
        await call("POST", "/v1/decision?mode=gateway", {
          body: { token, request: { method: "GET", url: "Secret/1" } },
        })
      ).status,
    ).toBe(404);
    expect(
      (await call("POST", "/v1/decision?mode=gateway", { body: { token, request: GET_OBS } })).status,
    ).toBe(200);
  });

  it("answers 401 with realm only when there is no token (RFC 6750 §3.1)", async () => {
    const r = await call("POST", "/v1/decision", { body: { request: GET_OBS } });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Bearer realm="smart-authz"');
    expect(r.body).toMatchObject({ decision: "deny", status: 401, reasons: [{ code: "token-missing" }] });
    expect(r.body.outcome.resourceType).toBe("OperationOutcome");
  });

  it("answers 401 invalid_token with the precise reason for a rejected token", async () => {
    const expired = await issuer.token({}, { expiresIn: -120 });
    const r = await call("POST", "/v1/decision", { body: { token: expired, request: GET_OBS } });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toMatch(
      /^Bearer realm="smart-authz", error="invalid_token", error_description="the token expired \(.+\)"$/,
    );
    expect(r.body.reasons[0].code).toBe("token-expired");
    const wrongAud = await issuer.token({}, { audience: "https://elsewhere.test" });
    const r2 = await call("POST", "/v1/decision?mode=gateway", {
      body: { token: wrongAud, request: GET_OBS },
    });
    expect(r2.status).toBe(401);
    expect(r2.body.reasons[0]).toEqual({
      code: "token-audience-invalid",
      message: `the token's audience does not include "https://fhir.test"`,
    });
    const notBearer = await call("POST", "/v1/decision", {
      body: { request: GET_OBS },
      headers: { authorization: "Basic Zm9vOmJhcg==" },
    });
    expect(notBearer).toMatchObject({
      status: 400,
      body: { code: "invalid_parameter", message: "the Authorization header is not a Bearer token" },
    });
  });

  it("verifies tokens signed with a rotated key", async () => {
    const k2 = await issuer.rotate("k2-rotated");
    const r = await call("POST", "/v1/decision", {
      body: { token: await issuer.token({}, { key: k2 }), request: GET_OBS },
    });
    expect(r.body.decision).toBe("allow");
  });

  it("rejects malformed bodies with precise 4xx messages, never a stack trace", async () => {
    const token = await issuer.token();
    const cases: [Parameters<typeof call>[2], number, string][] = [
      [{ raw: '{"request": ' }, 400, "request body is not valid JSON"],
      [{ body: [1, 2] }, 400, "the body must be a JSON object"],
      [
        { body: { token, request: GET_OBS, requets: 1 } },
        400,
        'unknown field "requets"; expected token, claims, request, resource, resource_absent, response, now',
      ],
      [{ body: { token } }, 400, '"request" is required: an object with "method" and "url"'],
      [
        { body: { token, request: { method: "get", url: "" } } },
        400,
        '"request.method" must be an HTTP method in upper case, e.g. "GET"',
      ],
      [
        { body: { token, request: { method: "GET", url: "https://fhir.test/Patient" } } },
        400,
        '"request.url" must be relative to the FHIR base',
      ],
      [
        { body: { token, request: { method: "GET", url: "", headers: { Accept: "x" } } } },
        400,
        'header names must be lower case: "request.headers.Accept"',
      ],
      [
        { body: { token, request: GET_OBS, now: "yesterday" } },
        400,
        '"now" must be an RFC 3339 date-time string',
      ],
      [{ body: { token: 42, request: GET_OBS } }, 400, '"token" must be a non-empty string'],
      [
        { body: { claims: { scope: "patient/*.rs" }, request: GET_OBS } },
        400,
        '"claims" are not accepted: send the raw access token in "token" (tokens.trust_forwarded_claims is false)',
      ],
      [
        { raw: "{}", headers: { "content-type": "text/plain" } },
        415,
        "expected a JSON body with Content-Type: application/json",
      ],
      [
        { body: { token, request: { ...GET_OBS, body: "x".repeat(20_000) } } },
        413,
        "request body exceeds the 16384-byte limit",
      ],
    ];
    for (const [options, status, message] of cases) {
      const r = await call("POST", "/v1/decision", options);
      expect({ status: r.status, code: r.body.code }).toMatchObject({ status });
      expect(r.body.message).toContain(message);
      expect(r.text).not.toMatch(/\n\s+at /);
    }
  });

  it("fails closed with a deny when the policy errors, and counts the error", async () => {
    const r = await call("POST", "/v1/decision", {
      body: { token: await issuer.token(), request: { method: "GET", url: "Conflict" } },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ decision: "deny", status: 500, reasons: [{ code: "policy-error" }] });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/smart_authz_errors_total\{kind="policy_error"\} [1-9]/);
  });
});

describe("input the policy cannot read (H-1)", () => {
  const lone = (mode = "") =>
    `{"token": "TOKEN", "request": {"method": "GET", "url": "Observation?code=\\udc00"}${mode}}`;

  it("answers a lone surrogate in client input as 400 input-invalid, not as a policy error", async () => {
    const token = await issuer.token();
    const errorsBefore = await service.metrics.registry.getSingleMetricAsString("smart_authz_errors_total");
    const r = await call("POST", "/v1/decision", { raw: lone().replace("TOKEN", token) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ decision: "deny", status: 400, reasons: [{ code: "input-invalid" }] });
    expect(r.body.reasons[0].message).toContain("lone surrogate \\udc00");
    const gateway = await call("POST", "/v1/decision?mode=gateway", { raw: lone().replace("TOKEN", token) });
    expect(gateway.status).toBe(400);
    expect(gateway.body.reasons[0].code).toBe("input-invalid");
    expect(await service.metrics.registry.getSingleMetricAsString("smart_authz_errors_total")).toBe(
      errorsBefore,
    );
    // An escaped surrogate pair is a well-formed string.
    const pair = await call("POST", "/v1/decision", {
      raw: lone().replace("TOKEN", token).replace("\\udc00", "\\ud83d\\ude00"),
    });
    expect(pair.body.decision).toBe("allow");
    const data = await call("POST", "/v1/data/smart/api/decision", {
      raw: `{"input": {"claims": {"scope": "patient/x.rs"}, "request": {"method": "GET", "url": "\\ud800"}}}`,
    });
    expect(data.status).toBe(400);
    expect(data.body.code).toBe("invalid_parameter");
    const filter = await call("POST", "/v1/filter?mode=gateway", {
      body: {
        token,
        request: { method: "GET", url: "Observation/1" },
        response: { resourceType: "Observation", id: "\udc00" },
      },
    });
    expect(filter.status).toBe(400);
    expect(filter.body).toMatchObject({ status: 400, decision: { reasons: [{ code: "input-invalid" }] } });
  });
});

describe("POST /v1/filter", () => {
  const bundle = {
    resourceType: "Bundle",
    type: "searchset",
    total: 40,
    link: [
      { relation: "self", url: "https://fhir.test/Observation?patient=123" },
      { relation: "next", url: "https://fhir.test/Observation?patient=123&page=2" },
    ],
    entry: [
      { resource: { resourceType: "Observation", id: "1" }, search: { mode: "match" } },
      { resource: { resourceType: "Observation", id: "hidden-2" }, search: { mode: "match" } },
      { resource: { resourceType: "Observation", id: "3" }, search: { mode: "match" } },
    ],
  };

  it("returns the filtered Bundle without leaking the dropped entries through total or paging", async () => {
    const r = await call("POST", "/v1/filter", {
      body: { token: await issuer.token(), request: GET_OBS, response: bundle },
    });
    expect(r.status).toBe(200);
    expect(r.body.decision).toMatchObject({
      decision: "filter",
      drop: [{ ref: "Observation/hidden-2", index: 1 }],
    });
    expect(r.body.status).toBe(200);
    expect(r.body.response.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual(["1", "3"]);
    expect(r.body.response.total).toBe(2);
    expect(r.body.response.link).toEqual([bundle.link[0]]);
  });

  it("turns a dropped single resource into a 404 OperationOutcome (HTTP 404 in gateway mode)", async () => {
    const body = {
      token: await issuer.token(),
      request: { method: "GET", url: "Observation/hidden-9" },
      response: { resourceType: "Observation", id: "hidden-9" },
    };
    const r = await call("POST", "/v1/filter", { body });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: 404,
      response: { resourceType: "OperationOutcome", issue: [{ code: "not-found" }] },
    });
    expect((await call("POST", "/v1/filter?mode=gateway", { body })).status).toBe(404);
  });

  it("requires a response and a token", async () => {
    const r = await call("POST", "/v1/filter", { body: { token: await issuer.token(), request: GET_OBS } });
    expect(r.body).toEqual({
      code: "invalid_parameter",
      message: '"response" is required: the FHIR resource or Bundle to filter',
    });
    const noToken = await call("POST", "/v1/filter", { body: { request: GET_OBS, response: bundle } });
    expect(noToken.status).toBe(401);
    expect(noToken.body.response).toMatchObject({ resourceType: "OperationOutcome" });
  });
});

describe("/v1/gateway (Envoy ext_authz, NGINX auth_request)", () => {
  it("decides the forwarded request from its path and method (Envoy)", async () => {
    const auth = { authorization: `Bearer ${await issuer.token()}` };
    const r = await call("GET", "/v1/gateway/fhir/Observation?patient=123", { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-decision")).toBe("allow");
    expect((await call("DELETE", "/v1/gateway/fhir/Secret/1", { headers: auth })).status).toBe(404);
    expect((await call("GET", "/v1/gateway/fhir/Observation")).status).toBe(401);
  });

  it("decides from X-Original-URI and X-Original-Method (NGINX)", async () => {
    const headers = {
      authorization: `Bearer ${await issuer.token({ scope: "openid" })}`,
      "x-original-uri": "/fhir/Observation?patient=123",
      "x-original-method": "GET",
    };
    const r = await call("GET", "/v1/gateway/auth", { headers });
    expect(r.status).toBe(403);
    expect(r.headers.get("www-authenticate")).toContain(
      'error="insufficient_scope", scope="patient/Observation.rs"',
    );
  });

  // NGINX cannot read an auth_request answer's body: examples/nginx asks again from error_page
  // and hands this answer to the client, so it must be FHIR and carry no internal reasons.
  it("answers the OperationOutcome alone, as FHIR, with X-Smart-Authz-Body: outcome", async () => {
    const nginx = (uri: string, extra: Record<string, string> = {}) => ({
      headers: {
        "x-original-uri": uri,
        "x-original-method": "GET",
        "x-smart-authz-body": "outcome",
        ...extra,
      },
    });
    const scopeless = { authorization: `Bearer ${await issuer.token({ scope: "openid" })}` };
    const refused = await call("GET", "/v1/gateway/auth", nginx("/fhir/Observation?patient=123", scopeless));
    expect(refused.status).toBe(403);
    expect(refused.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
    expect(refused.body).toEqual({
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "forbidden" }],
    });
    expect(refused.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(refused.headers.get("x-decision")).toBe("deny");

    const hidden = await call(
      "GET",
      "/v1/gateway/auth",
      nginx("/fhir/Secret/1", { authorization: `Bearer ${await issuer.token()}` }),
    );
    expect(hidden.status).toBe(404);
    expect(hidden.text).not.toContain("hidden");
    expect(hidden.body).toEqual({
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "not-found" }],
    });

    const anonymous = await call("GET", "/v1/gateway/auth", nginx("/fhir/Observation?patient=123"));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
    expect(anonymous.body).toMatchObject({
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "login" }],
    });
    expect(anonymous.headers.get("www-authenticate")).toBe('Bearer realm="smart-authz"');
    expect(anonymous.headers.get("x-decision")).toBe("deny");
    expect(anonymous.headers.get("x-policy-revision")).toBe("rev-1");

    const malformed = await call(
      "GET",
      "/v1/gateway/auth",
      nginx("/fhir/Observation?patient=123", { authorization: "Basic dXNlcjpwdw==" }),
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "invalid" }] });

    const allowed = await call(
      "GET",
      "/v1/gateway/auth",
      nginx("/fhir/Observation?patient=123", { authorization: `Bearer ${await issuer.token()}` }),
    );
    expect(allowed.status).toBe(200);
    expect(allowed.body).toMatchObject({
      resourceType: "OperationOutcome",
      issue: [{ severity: "information", code: "informational" }],
    });

    // Without the header the gateway still gets the decision document; /v1/filter ignores it.
    const plain = await call("GET", "/v1/gateway/auth", {
      headers: { ...nginx("/fhir/Secret/1").headers, "x-smart-authz-body": "decision", ...scopeless },
    });
    expect(plain.body).toMatchObject({ decision: "deny", reasons: [{ code: "scope-missing" }] });
    const viaDecision = await call("POST", "/v1/decision?mode=gateway", {
      body: { request: { method: "GET", url: "Secret/1" } },
      headers: { ...scopeless, "x-smart-authz-body": "outcome" },
    });
    expect(viaDecision.status).toBe(403);
    expect(viaDecision.body).toEqual({
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "forbidden" }],
    });
    const defaultMode = await call("POST", "/v1/decision", {
      body: { request: { method: "GET", url: "Secret/1" } },
      headers: { ...scopeless, "x-smart-authz-body": "outcome" },
    });
    expect(defaultMode.status).toBe(200);
    expect(defaultMode.body.decision).toBe("deny");
  });
});

describe("relativeToBase (the forwarded URI, relative to server.fhir_base_path)", () => {
  it("keeps the query and treats the base with a query as the base", () => {
    expect(relativeToBase("/fhir/Observation?patient=123", "/fhir")).toBe("Observation?patient=123");
    expect(relativeToBase("/fhir/", "/fhir")).toBe("");
    expect(relativeToBase("/fhir", "/fhir/")).toBe("");
    expect(relativeToBase("/fhir?_getpages=abc&_count=5", "/fhir")).toBe("?_getpages=abc&_count=5");
    expect(relativeToBase("/fhir/?_format=json", "/fhir")).toBe("?_format=json");
    // A "?" in the query does not move the path.
    expect(relativeToBase("/fhir/Patient?name=a?b/fhir", "/fhir")).toBe("Patient?name=a?b/fhir");
    expect(relativeToBase("/fhirx/Patient", "/fhir")).toBe("fhirx/Patient");
    expect(relativeToBase("/Patient/1", "/")).toBe("Patient/1");
  });
});

describe("POST /v1/data/{path} (OPA Data API)", () => {
  it("evaluates an entrypoint like OPA: {input} -> {result, decision_id}", async () => {
    const token = await issuer.token();
    const r = await call("POST", "/v1/data/smart/api/decision", {
      body: { input: { token, request: GET_OBS } },
    });
    expect(r.status).toBe(200);
    expect(r.body.result).toMatchObject({ decision: "allow" });
    expect(r.body.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    const scopes = await call("POST", "/v1/data/smart/api/scopes", { body: { input: { scope: "a b" } } });
    expect(scopes.body.result).toEqual(["a", "b"]);
    const get = await call("GET", `/v1/data/smart/api/scopes?input=${encodeURIComponent('{"scope":"c"}')}`);
    expect(get.body.result).toEqual(["c"]);
  });

  it("answers OPA-style errors for unknown paths and bad input", async () => {
    const unknown = await call("POST", "/v1/data/smart/api/nope", { body: { input: {} } });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      code: "resource_not_found",
      message: 'unknown entrypoint "smart/api/nope"; this policy has smart/api/decision, smart/api/scopes',
    });
    const notAnObject = await call("POST", "/v1/data/smart/api/decision", { body: { input: [1] } });
    expect(notAnObject.body).toEqual({
      code: "invalid_parameter",
      message: '"input" must be a JSON object',
    });
    expect((await call("POST", "/v1/data/smart/api/decision", { raw: "{nope" })).body.code).toBe(
      "invalid_parameter",
    );
  });
});

describe("audit obligations", () => {
  const AUDITED = { method: "GET", url: "Audited/1" };

  it("writes the audit record of a break-the-glass decision before answering, on every endpoint", async () => {
    const token = await issuer.token();
    const before = auditRecords().length;
    const r = await call("POST", "/v1/decision", { body: { token, request: AUDITED } });
    expect(r.status).toBe(200);
    expect(r.body.decision).toBe("allow");
    const decisionId = r.headers.get("x-decision-id");
    // The response is only sent once the record is on disk.
    const records = auditRecords();
    expect(records).toHaveLength(before + 1);
    expect(records.at(-1)).toMatchObject({
      decision_id: decisionId,
      timestamp: expect.any(String),
      event: {
        resourceType: "AuditEvent",
        purposeOfEvent: [{ coding: [{ code: "BTG" }] }],
        entity: [{ what: { reference: "Audited/1" } }],
      },
    });
    expect(Date.parse(records.at(-1)!.event.recorded)).not.toBeNaN();

    const gateway = await call("GET", "/v1/gateway/fhir/Audited/2", {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(gateway.status).toBe(200);
    expect(auditRecords().at(-1)).toMatchObject({
      decision_id: gateway.headers.get("x-decision-id"),
      event: { entity: [{ what: { reference: "Audited/2" } }] },
    });

    const data = await call("POST", "/v1/data/smart/api/decision", {
      body: { input: { token, request: AUDITED } },
    });
    expect(data.status).toBe(200);
    expect(data.body.result.decision).toBe("allow");
    expect(auditRecords().at(-1)).toMatchObject({ decision_id: data.body.decision_id });

    // A decision without an audit obligation writes nothing.
    const count = auditRecords().length;
    expect((await call("POST", "/v1/decision", { body: { token, request: GET_OBS } })).body.decision).toBe(
      "allow",
    );
    expect(auditRecords()).toHaveLength(count);
  });

  it("reopens the audit file on reload (SIGHUP), for log rotation", async () => {
    const token = await issuer.token();
    await call("POST", "/v1/decision", { body: { token, request: AUDITED } });
    const rotated = `${auditPath}.1`;
    renameSync(auditPath, rotated);
    await service.reload();
    const r = await call("POST", "/v1/decision", {
      body: { token, request: { ...AUDITED, url: "Audited/9" } },
    });
    expect(r.body.decision).toBe("allow");
    expect(auditRecords()).toEqual([
      expect.objectContaining({ decision_id: r.headers.get("x-decision-id") }),
    ]);
    expect(auditRecords(rotated).some((rec) => rec.event.entity[0].what.reference === "Audited/9")).toBe(
      false,
    );
  });

  it("refuses a decision whose audit record cannot be written: 500 deny audit-unavailable", async () => {
    const unwritable = join(tempDir(), "a-directory");
    mkdirSync(unwritable);
    const sink = new LogSink();
    const { service: broken } = await start(configSpec({ audit: { path: unwritable } }), sink);
    try {
      const token = await issuer.token();
      const r = await call("POST", "/v1/decision", { base: broken.url, body: { token, request: AUDITED } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        decision: "deny",
        status: 500,
        reasons: [{ code: "audit-unavailable" }],
      });
      expect(r.headers.get("x-decision")).toBe("deny");
      const gateway = await call("GET", "/v1/gateway/fhir/Audited/1", {
        base: broken.url,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(gateway.status).toBe(500);
      expect(gateway.body.reasons[0].code).toBe("audit-unavailable");
      const data = await call("POST", "/v1/data/smart/api/decision", {
        base: broken.url,
        body: { input: { token, request: AUDITED } },
      });
      expect(data.body.result).toMatchObject({ decision: "deny", reasons: [{ code: "audit-unavailable" }] });
      // Decisions that need no audit record are unaffected.
      const plain = await call("POST", "/v1/decision", {
        base: broken.url,
        body: { token, request: GET_OBS },
      });
      expect(plain.body.decision).toBe("allow");
      expect(sink.find("audit record could not be written: the decision is refused").length).toBe(3);
    } finally {
      await broken.close();
    }
  });

  it("refuses decisions that must be audited when no audit log is configured", async () => {
    const { service: none } = await start(configSpec());
    try {
      const r = await call("POST", "/v1/decision", {
        base: none.url,
        body: { token: await issuer.token(), request: AUDITED },
      });
      expect(r.body).toMatchObject({ decision: "deny", reasons: [{ code: "audit-unavailable" }] });
    } finally {
      await none.close();
    }
  });
});

describe("operations endpoints", () => {
  it("reports health, readiness and status with the active revision", async () => {
    expect(await call("GET", "/health")).toMatchObject({ status: 200, body: {} });
    expect((await call("GET", "/health?bundles")).status).toBe(200);
    expect(await call("GET", "/ready")).toMatchObject({ status: 200, body: { ready: true } });
    const status = await call("GET", "/status");
    expect(status.body.bundle).toMatchObject({ revision: "rev-1", source: bundlePath, last_error: null });
    expect(status.body.demo_issuer_active).toBe(false);
  });

  it("exposes Prometheus metrics: decisions by outcome, latency, bundle revision", async () => {
    const r = await call("GET", "/metrics");
    expect(r.headers.get("content-type")).toContain("text/plain");
    expect(r.text).toMatch(/smart_authz_decisions_total\{endpoint="decision",outcome="allow"\} \d+/);
    expect(r.text).toMatch(/smart_authz_decisions_total\{endpoint="decision",outcome="deny"\} \d+/);
    expect(r.text).toMatch(
      /smart_authz_decision_duration_seconds_bucket\{le="0.005",endpoint="decision"\} \d+/,
    );
    expect(r.text).toContain('smart_authz_bundle_info{revision="rev-1"} 1');
    expect(r.text).toMatch(/smart_authz_token_failures_total\{reason="token-missing"\} [1-9]/);
  });

  it("serves its OpenAPI document and 404s unknown routes as JSON", async () => {
    const doc = await call("GET", "/openapi.yaml");
    expect(doc.text).toContain("openapi: 3.1.0");
    const res = await fetch(`${service.url}/v2/nothing`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: "resource_not_found", message: "no route for GET /v2/nothing" });
  });

  it("writes one masked decision log line per decision", async () => {
    const token = await issuer.token({ patient: "p-4711" });
    const r = await call("POST", "/v1/decision", {
      body: { token, request: { method: "GET", url: "Observation?patient=p-4711" } },
    });
    const id = r.headers.get("x-decision-id");
    const line = logs.find("decision").find((l) => l.decision_id === id);
    expect(line).toMatchObject({
      revision: "rev-1",
      outcome: "allow",
      endpoint: "decision",
      method: "GET",
      resource_type: "Observation",
    });
    expect(typeof line!.latency_ms).toBe("number");
    expect(line).not.toHaveProperty("request_id");
    const all = logs.raw.join("\n");
    expect(all).not.toContain(token);
    expect(all).not.toContain("p-4711");
  });

  it("logs a gateway's X-Request-Id when it is a plain token, and nothing else in its place", async () => {
    const token = await issuer.token();
    const decide = (requestId: string) =>
      call("POST", "/v1/decision", {
        body: { token, request: GET_OBS },
        headers: { "x-request-id": requestId },
      });
    const plain = await decide("req-42.a:b_c");
    expect(
      logs.find("decision").find((l) => l.decision_id === plain.headers.get("x-decision-id")),
    ).toMatchObject({
      request_id: "req-42.a:b_c",
    });
    for (const odd of ["Patient 123", "x".repeat(129), "a/b"]) {
      const r = await decide(odd);
      const line = logs.find("decision").find((l) => l.decision_id === r.headers.get("x-decision-id"));
      expect(line).toBeDefined();
      expect(line).not.toHaveProperty("request_id");
    }
  });
});

describe("bundle hot reload", () => {
  it("activates a new bundle, keeps serving the last good one when the next is bad, and reports both", async () => {
    writeFileSync(bundlePath, readFileSync(buildFixtureBundle("rev-2")));
    expect(await service.reload()).toBe(true);
    expect((await call("GET", "/status")).body.bundle.revision).toBe("rev-2");

    writeFileSync(bundlePath, "not a bundle");
    expect(await service.reload()).toBe(false);
    const status = await call("GET", "/status");
    expect(status.body.bundle).toMatchObject({ revision: "rev-2", failures: 1 });
    expect(status.body.bundle.last_error).toMatch(/not a gzip archive/);
    const r = await call("POST", "/v1/decision", { body: { token: await issuer.token(), request: GET_OBS } });
    expect(r.body.decision).toBe("allow");
    expect(r.headers.get("x-policy-revision")).toBe("rev-2");
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toContain('smart_authz_bundle_info{revision="rev-2"} 1');
    expect(metrics).not.toContain('smart_authz_bundle_info{revision="rev-1"}');
    expect(metrics).toMatch(/smart_authz_bundle_failures_total 1/);
    expect(
      logs.lines.some((l) => l.level === 50 && String(l.msg).includes("still serving revision rev-2")),
    ).toBe(true);
  });
});

describe("other configurations", () => {
  it("keeps idle connections open longer than gateways' upstream idle timeouts (H-4)", async () => {
    expect(service.server.keepAliveTimeout).toBe(65_000);
    // The request clocks run from a request's first byte, so they are independent of keep-alive.
    expect(service.server.headersTimeout).toBe(10_000);
    expect(service.server.requestTimeout).toBe(30_000);
    const { service: custom } = await start(configSpec({ server: { keep_alive_timeout_seconds: 400 } }));
    try {
      expect(custom.server.keepAliveTimeout).toBe(400_000);
    } finally {
      await custom.close();
    }
  });

  it("logs every request at logging.requests, pino-http style, without tokens, bodies or patient ids", async () => {
    const sink = new LogSink();
    const { service: logged } = await start(configSpec({ logging: { requests: "info" } }), sink);
    try {
      const token = await issuer.token();
      await call("POST", "/v1/decision", { base: logged.url, body: { token, request: GET_OBS } });
      await call("GET", "/v1/gateway/fhir/Patient/123?name=secret", {
        base: logged.url,
        headers: { authorization: `Bearer ${token}` },
      });
      await call("GET", "/health", { base: logged.url });
      await new Promise((r) => setTimeout(r, 50));
      const lines = sink.find("request completed");
      expect(lines.map((l) => (l.req as { route: string }).route)).toEqual([
        "/v1/decision",
        "/v1/gateway/{fhirPath}",
        "/health",
      ]);
      expect(lines[1]).toMatchObject({
        level: 30,
        req: { method: "GET", url: "[masked]", remoteAddress: expect.any(String) },
        res: { statusCode: 200 },
        responseTime: expect.any(Number),
        decision_id: expect.any(String),
      });
      const raw = sink.raw.join("\n");
      expect(raw).not.toContain(token);
      expect(raw).not.toContain("secret");
      expect(raw).not.toContain("Patient/123");
    } finally {
      await logged.close();
    }
    // The default level is debug, below the service's info: no request lines.
    expect(logs.find("request completed")).toEqual([]);
  });

  it("accepts forwarded claims only when trust_forwarded_claims is on", async () => {
    const { service: trusting } = await start(configSpec({ tokens: { trust_forwarded_claims: true } }));
    try {
      const r = await call("POST", "/v1/decision", {
        base: trusting.url,
        body: { claims: { scope: "patient/Observation.rs" }, request: GET_OBS },
      });
      expect(r.body.decision).toBe("allow");
    } finally {
      await trusting.close();
    }
  });

  it("starts without a bundle from an unavailable server, is not ready, denies, then recovers", async () => {
    const bundles = await BundleServer.start();
    const { service: remote } = await start(configSpec({ bundle: bundles.url }));
    try {
      expect((await call("GET", "/ready", { base: remote.url })).status).toBe(503);
      expect(await call("GET", "/health", { base: remote.url })).toMatchObject({
        status: 500,
        body: { error: "unable to perform evaluation: no policy bundle is active" },
      });
      const denied = await call("POST", "/v1/decision", {
        base: remote.url,
        body: { token: await issuer.token(), request: GET_OBS },
      });
      expect(denied.body).toMatchObject({
        decision: "deny",
        status: 503,
        reasons: [{ code: "bundle-not-loaded" }],
      });
      const data = await call("POST", "/v1/data/smart/api/decision", {
        base: remote.url,
        body: { input: {} },
      });
      expect(data.status).toBe(404);
      bundles.publish(readFileSync(buildFixtureBundle("remote-1")));
      expect(await remote.reload()).toBe(true);
      expect((await call("GET", "/ready", { base: remote.url })).status).toBe(200);
    } finally {
      await remote.close();
      await bundles.close();
    }
  });

  it("drains an in-flight request on shutdown and then refuses connections", async () => {
    const { service: draining } = await start(configSpec());
    const token = await issuer.token();
    const body = JSON.stringify({ token, request: GET_OBS });
    const { port } = new URL(draining.url);
    const pending = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/v1/decision",
          method: "POST",
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const closed = draining.close();
    const result = await pending;
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body).decision).toBe("allow");
    await closed;
    await expect(fetch(`${draining.url}/health`)).rejects.toThrow();
  });
});

describe("openapi.yaml", () => {
  it("documents every route the tests exercised, and the tests exercised every documented operation", () => {
    const documented = openapi.operations().filter((op) => !/^(PUT|PATCH|HEAD|POST) \/v1\/gateway/.test(op));
    const missing = documented.filter((op) => !openapi.exercised.has(op));
    expect(missing).toEqual([]);
  });
});
