/**
 * What a gateway forwards, decided as the upstream will see it, with the real policy:
 * - H4: a form-encoded POST _search body reaches the policy; a POST _search whose body is not
 *   available (none, unreadable, cut short) is never released on its URL alone.
 * - L4: an absolute X-Original-URI is used verbatim after its authority, never normalized; an
 *   unreadable one is a 400, never a 500.
 * - Item 9: GET/HEAD of exactly `metadata` and `.well-known/smart-configuration` under the FHIR
 *   base need no token, on /v1/gateway and /v1/decision; nothing else does.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Decision } from "../src/core/contract.js";
import { startService, type Service } from "../src/server.js";
import { LogSink, tempDir } from "./helpers/fixtures.js";
import { demoToken } from "./helpers/demo-token.js";
import { OpenApiChecker } from "./helpers/openapi.js";
import { bundlePath } from "./helpers/policy.js";
import { serviceConfig } from "./helpers/service-config.js";

const openapi = new OpenApiChecker();
const KEY = "g".repeat(40);

interface Reply {
  status: number;
  headers: Headers;
  body: Decision & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked against openapi.yaml
}

describe.skipIf(!existsSync(bundlePath))("gateway requests with the real policy", () => {
  let service: Service;
  let patient: string;
  let user: string;

  beforeAll(async () => {
    const config = serviceConfig(
      tempDir(),
      {
        bundle: bundlePath,
        server: { fhir_base_path: "/fhir" },
        audit: { path: "audit.jsonl" },
        gateway: { enforcing: [{ name: "apigw", key_env: "APIGW_KEY" }] },
        // These cases are about request bodies; the clinician's user/ scope is left unconfined.
        policy: { user: { access: "server" } },
      },
      { APIGW_KEY: KEY },
    );
    service = await startService(config, { logDestination: new LogSink(), defaultMetrics: false });
    patient = await demoToken({ scope: "patient/Observation.rs patient/Patient.rs", patient: "123" });
    user = await demoToken({ scope: "user/Observation.rs", sub: "u1", fhirUser: "Practitioner/9" });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
  });

  async function call(
    method: string,
    path: string,
    init: { token?: string; headers?: Record<string, string>; body?: string; json?: unknown } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(`${service.url}${path}`, { method, headers, body });
    const text = await res.text();
    const parsed = text ? JSON.parse(text) : {};
    if (method !== "HEAD") openapi.check(method, path, res.status, res.headers.get("content-type"), parsed);
    return { status: res.status, headers: res.headers, body: parsed };
  }
  const form = { "content-type": "application/x-www-form-urlencoded" };

  describe("POST _search bodies (H4)", () => {
    it("reads a form body: other patients' ids in it are refused", async () => {
      const r = await call("POST", "/v1/gateway/fhir/Observation/_search?patient=123", {
        token: patient,
        headers: form,
        body: "patient=999",
      });
      expect(r.status).toBe(403);
      expect(r.body.reasons?.[0]?.code).toBe("search-other-patient");
    });

    it("reads a form body: _include and _revinclude in it need the response filtered", async () => {
      const body = "_revinclude=Observation:has-member&_include=Observation:has-member&code=1";
      const plain = await call("POST", "/v1/gateway/fhir/Observation/_search", {
        token: user,
        headers: form,
        body,
      });
      expect(plain.status).toBe(403);
      expect(plain.body.reasons?.[0]?.code).toBe("gateway-cannot-enforce");
      const enforcing = await call("POST", "/v1/gateway/fhir/Observation/_search", {
        token: user,
        headers: { ...form, "x-smart-authz-gateway-key": KEY },
        body,
      });
      expect(enforcing.status).toBe(200);
      expect(enforcing.body.obligations?.map((o) => o.type)).toEqual(["filter-response"]);
      expect(enforcing.body.reasons?.map((r) => r.code)).not.toContain("search-body-not-supplied");
    });

    it("decides a form body as the search (every search's response is filtered: H3)", async () => {
      const r = await call("POST", "/v1/gateway/fhir/Observation/_search", {
        token: user,
        headers: { ...form, "x-smart-authz-gateway-key": KEY },
        body: "code=1234-5&_count=10",
      });
      expect(r.status).toBe(200);
      expect(r.body.decision).toBe("allow");
      expect(r.body.obligations?.map((o) => o.type)).toEqual(["filter-response"]);
      expect(r.body.reasons?.map((x) => x.code) ?? []).not.toContain("search-body-not-supplied");
    });

    it.each([
      ["no body (NGINX auth_request never forwards it)", {}, undefined],
      ["an empty body", form, ""],
      ["a body of a content type it cannot read", { "content-type": "text/plain" }, "_include=*"],
      ["a multipart body", { "content-type": "multipart/form-data; boundary=x" }, "--x--"],
    ])("never releases a POST _search with %s on its URL alone", async (_what, headers, body) => {
      const r = await call("POST", "/v1/gateway/fhir/Observation/_search?code=1", {
        token: user,
        headers: headers as Record<string, string>,
        body,
      });
      expect(r.status).toBe(403);
      expect(r.body.reasons?.[0]?.code).toBe("gateway-cannot-enforce");
      // An enforcing gateway gets it with the obligation to filter the response, and why.
      const enforcing = await call("POST", "/v1/gateway/fhir/Observation/_search?code=1", {
        token: user,
        headers: { ...(headers as Record<string, string>), "x-smart-authz-gateway-key": KEY },
        body,
      });
      expect(enforcing.status).toBe(200);
      expect(enforcing.body.obligations?.map((o) => o.type)).toEqual(["filter-response"]);
      expect(enforcing.body.reasons?.map((x) => x.code)).toContain("search-body-not-supplied");
    });

    it("refuses a body the gateway cut short, even when what arrived would be allowed", async () => {
      for (const [headers, body] of [
        [form, "code=1234-5&_inclu"],
        [{ "content-type": "application/fhir+json" }, '{"resourceType":"Observation","sta'],
      ] as const) {
        const r = await call("POST", "/v1/gateway/fhir/Observation/_search", {
          token: user,
          headers: { ...headers, "x-envoy-auth-partial-body": "true", "x-smart-authz-gateway-key": KEY },
          body,
        });
        expect(r.status).toBe(403);
        expect(r.body.reasons?.[0]?.code).toBe("gateway-body-truncated");
        expect(r.body.outcome).toMatchObject({ resourceType: "OperationOutcome" });
      }
    });

    it("on /v1/decision, a POST _search without request.body carries the filter obligation and says why", async () => {
      const r = await call("POST", "/v1/decision", {
        json: { token: user, request: { method: "POST", url: "Observation/_search?code=1" } },
      });
      expect(r.status).toBe(200);
      expect(r.body.decision).toBe("allow");
      expect(r.body.obligations?.map((o) => o.type)).toEqual(["filter-response"]);
      expect(r.body.reasons?.[0]?.code).toBe("search-body-not-supplied");
      const withForm = await call("POST", "/v1/decision", {
        json: {
          token: patient,
          request: { method: "POST", url: "Observation/_search", body: "patient=999" },
        },
      });
      expect(withForm.body.reasons?.[0]?.code).toBe("search-other-patient");
    });
  });

  describe("absolute X-Original-URI (L4)", () => {
    // An enforcing gateway: reads by id without the stored resource carry filter-response (H3).
    const nginx = (uri: string, token = patient) =>
      call("GET", "/v1/gateway/auth", {
        token,
        headers: { "x-original-uri": uri, "x-original-method": "GET", "x-smart-authz-gateway-key": KEY },
      });

    it.each([
      "http://x/fhir/Patient/999/../123",
      "http://x/fhir/Patient/999/%2e%2e/123",
      "http://x/fhir/Patient/999/%2E%2E/123",
      "http://x/fhir/Patient/999\\..\\123",
      "http://x/fhir/Patient/999/..%2F123",
      "https://user@x:8443/fhir/Patient/999/./../123",
      "HTTP://X/fhir/Patient/999/../123",
    ])("decides %s as written, never as Patient/123", async (uri) => {
      const r = await nginx(uri);
      expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body.decision).toBe("deny");
    });

    it("decides an absolute URI's path and query like the relative one", async () => {
      expect((await nginx("http://fhir.example:8080/fhir/Patient/123")).status).toBe(200);
      expect((await nginx("/fhir/Patient/123")).status).toBe(200);
      const other = await nginx("http://x/fhir/Observation?patient=999");
      expect(other.status).toBe(403);
      expect(other.body.reasons?.[0]?.code).toBe("search-other-patient");
      expect((await nginx("http://x/fhir/metadata?_format=json", "")).status).toBe(200);
    });

    it.each([
      "http://[bad/fhir/Patient/123",
      "http://a b/fhir/Patient/123",
      "http://x:80ab/fhir/Patient/123",
      "http://x@y@z/fhir/Patient/123",
      "ftp://x/fhir/Patient/123",
    ])("refuses the unreadable URI %j with 400, never 500", async (uri) => {
      const r = await nginx(uri);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe("invalid_parameter");
    });
  });

  describe("public discovery endpoints (item 9)", () => {
    it.each([
      ["GET", "/v1/gateway/fhir/metadata"],
      ["GET", "/v1/gateway/fhir/metadata?_format=json"],
      ["HEAD", "/v1/gateway/fhir/metadata"],
      ["GET", "/v1/gateway/fhir/.well-known/smart-configuration"],
    ])("%s %s needs no token", async (method, path) => {
      const r = await call(method, path);
      expect(r.status).toBe(200);
      expect(r.headers.get("x-decision")).toBe("allow");
    });

    it("needs no token through NGINX (X-Original-URI) or /v1/decision either, in both modes", async () => {
      const nginx = await call("GET", "/v1/gateway/auth", {
        headers: { "x-original-uri": "/fhir/.well-known/smart-configuration", "x-original-method": "GET" },
      });
      expect(nginx.status).toBe(200);
      for (const query of ["", "?mode=gateway"]) {
        const r = await call("POST", `/v1/decision${query}`, {
          json: { request: { method: "GET", url: "metadata" } },
        });
        expect(r.status).toBe(200);
        expect(r.body.decision).toBe("allow");
      }
    });

    it("does not look at a token sent anyway", async () => {
      const r = await call("GET", "/v1/gateway/fhir/metadata", {
        headers: { authorization: "Bearer not.a.token" },
      });
      expect(r.status).toBe(200);
    });

    it.each([
      ["GET", "/v1/gateway/fhir/metadata/../Patient/123"],
      ["GET", "/v1/gateway/fhir/metadata/"],
      ["GET", "/v1/gateway/fhir/%6Detadata"],
      ["GET", "/v1/gateway/fhir/Metadata"],
      ["GET", "/v1/gateway/fhir/metadata%3F_format=json"],
      ["GET", "/v1/gateway/fhir/Patient/123/metadata"],
      ["GET", "/v1/gateway/metadata"], // outside the FHIR base
      ["GET", "/v1/gateway/fhir/.well-known/smart-configuration/x"],
      ["POST", "/v1/gateway/fhir/metadata"],
      ["DELETE", "/v1/gateway/fhir/metadata"],
    ])("%s %s still needs a token", async (method, path) => {
      const r = await call(method, path);
      expect(r.status).toBe(401);
      expect(r.body.reasons?.[0]?.code).toBe("token-missing");
    });
  });
});
