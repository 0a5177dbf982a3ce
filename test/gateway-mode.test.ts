/**
 * C1: in gateway mode a 2xx means "forward it", because NGINX auth_request and Envoy ext_authz look
 * at nothing else. With the real policy and the demo config: a 2xx only for an allow that needs no
 * response filtering, unless the caller is a declared enforcing gateway with its key; never for a
 * decision that needed the stored resource or a batch with a refused entry.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, parseConfig } from "../src/ops/config.js";
import { startService, type Service } from "../src/server.js";
import { DEFAULT_CONFIG_YAML, PACKAGE_ROOT } from "../src/ops/default-config.js";
import { gatewayDecision } from "../src/api/gateway-mode.js";
import type { Decision } from "../src/core/contract.js";
import { checkGatewayCase, gatewayCaseArb } from "./fuzz/support/gateway-invariant.js";
import { cliToken as demoToken, demoToken as mintDemoToken } from "./helpers/demo-token.js";
import { LogSink, REPO, tempDir } from "./helpers/fixtures.js";
import { serviceConfig } from "./helpers/service-config.js";

const BUNDLE = join(REPO, "build/bundle.tar.gz");
const built = existsSync(BUNDLE);
const KEY = "k".repeat(40);

describe("gatewayDecision", () => {
  const allow: Decision = { decision: "allow", reasons: [] };
  const filter: Decision = { decision: "filter", narrow: [{ patient: "Patient/123" }], reasons: [] };

  it("passes allow and deny unchanged", () => {
    expect(gatewayDecision(allow, false)).toBe(allow);
    const deny: Decision = { decision: "deny", status: 404, reasons: [] };
    expect(gatewayDecision(deny, false)).toBe(deny);
  });

  it("refuses a filter unless the caller enforces it", () => {
    expect(gatewayDecision(filter, false)).toMatchObject({
      decision: "deny",
      status: 403,
      reasons: [{ code: "gateway-cannot-enforce" }],
      outcome: { resourceType: "OperationOutcome" },
    });
    expect(gatewayDecision(filter, true)).toBe(filter);
  });

  it("refuses an allow that needs its response filtered unless the caller enforces it", () => {
    const d: Decision = { ...allow, obligations: [{ type: "filter-response" }] };
    expect(gatewayDecision(d, false).decision).toBe("deny");
    expect(gatewayDecision(d, true)).toBe(d);
    const audited: Decision = { ...allow, obligations: [{ type: "audit" }] };
    expect(gatewayDecision(audited, false)).toBe(audited);
  });

  it("refuses what needed the stored resource, whoever asks", () => {
    const d: Decision = {
      ...filter,
      reasons: [{ code: "stored-resource-not-supplied", message: "x" }],
    };
    expect(gatewayDecision(d, true)).toMatchObject({
      status: 403,
      reasons: [{ code: "gateway-needs-stored-resource" }],
    });
    const batch: Decision = { decision: "allow", entries: [allow, d] };
    expect(gatewayDecision(batch, true).reasons?.[0]?.code).toBe("gateway-needs-stored-resource");
  });

  it("refuses a batch with a refused entry at any depth, whoever asks", () => {
    const nested: Decision = {
      decision: "filter",
      entries: [allow, { decision: "allow", entries: [{ decision: "deny", status: 404 }] }],
    };
    expect(gatewayDecision(nested, true).reasons?.[0]?.code).toBe("gateway-batch-entry-refused");
  });
});

describe("gateway.enforcing config", () => {
  const yaml = `${DEFAULT_CONFIG_YAML}\ngateway:\n  enforcing:\n    - name: apigw\n      key_env: APIGW_KEY\n`;

  it("needs the key in the environment, long enough", async () => {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const file = join(mkdtempSync(join(tmpdir(), "gw-")), "c.yaml");
    writeFileSync(file, yaml);
    expect(() => loadConfig(file, {})).toThrow(/APIGW_KEY must hold a key of at least 32 characters/);
    expect(() => loadConfig(file, { APIGW_KEY: "short" })).toThrow(/at least 32/);
    expect(loadConfig(file, { APIGW_KEY: KEY }).gateway.enforcing).toEqual([
      { name: "apigw", keyEnv: "APIGW_KEY", key: KEY },
    ]);
  });

  it("rejects a key_env that is not a variable name and unknown fields", () => {
    const bad = `${DEFAULT_CONFIG_YAML}\ngateway:\n  enforcing:\n    - name: apigw\n      key_env: "a b"\n      trust: yes\n`;
    expect(() => parseConfig(bad, "t.yaml", PACKAGE_ROOT)).toThrow(
      /key_env: must name an environment variable/,
    );
    expect(() => parseConfig(bad, "t.yaml", PACKAGE_ROOT)).toThrow(/enforcing\[0\]\.trust: unknown field/);
  });
});

describe.skipIf(!built)("gateway mode with the real policy (C1)", () => {
  let service: Service;
  const logs = new LogSink();
  let token: string;

  beforeAll(async () => {
    const config = serviceConfig(
      tempDir(),
      {
        bundle: BUNDLE,
        audit: { path: "audit.jsonl" },
        gateway: { enforcing: [{ name: "apigw", key_env: "APIGW_KEY" }] },
      },
      { APIGW_KEY: KEY },
    );
    service = await startService(config, { logDestination: logs, defaultMetrics: false });
    token = await demoToken("--scope", "patient/*.cruds", "--patient", "123");
  });
  afterAll(async () => {
    await service?.close();
  });

  async function gateway(method: string, path: string, init: { body?: unknown; key?: string } = {}) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (init.body !== undefined) headers["content-type"] = "application/fhir+json";
    if (init.key !== undefined) headers["x-smart-authz-gateway-key"] = init.key;
    const res = await fetch(`${service.url}/v1/gateway/${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    return {
      status: res.status,
      body: (await res.json()) as Decision,
      decision: res.headers.get("x-decision"),
    };
  }

  it.each([
    ["GET", "Observation/o999"],
    ["DELETE", "Observation/o999"],
    ["PATCH", "Observation/o999"],
    ["PUT", "Observation/o999"],
    ["GET", "Observation/o999/_history/1"],
    ["GET", "Condition/c1"],
  ])("refuses %s %s, which needs the stored resource, even to an enforcing gateway", async (method, path) => {
    for (const key of [undefined, KEY]) {
      const r = await gateway(method, path, { key });
      expect(r.status, `${method} ${path} key=${key !== undefined}`).toBe(403);
      expect(r.decision).toBe("deny");
      expect(r.body.outcome).toMatchObject({ resourceType: "OperationOutcome" });
    }
  });

  it.each([
    ["DELETE", "Observation?code=1234-5"],
    ["GET", "Observation"],
    // H3: an allow that releases data the policy has not seen carries a filter-response obligation.
    ["GET", "Observation?patient=123"],
    ["GET", "Patient/123/Observation"],
  ])("refuses the narrowed %s %s to a gateway that did not declare it narrows", async (method, path) => {
    const r = await gateway(method, path);
    expect(r.status).toBe(403);
    expect(r.body.reasons?.[0]?.code).toBe("gateway-cannot-enforce");
    const wrongKey = await gateway(method, path, { key: "x".repeat(40) });
    expect(wrongKey.status).toBe(403);
  });

  it("refuses type history to a patient/ token whoever asks (M1: history cannot be narrowed)", async () => {
    for (const key of [undefined, KEY]) {
      const r = await gateway("GET", "Observation/_history", { key });
      expect(r.status).toBe(403);
      expect(r.body.reasons?.[0]?.code).toBe("patient-scope-type-history");
    }
  });

  it("answers a filter 200 to the declared enforcing gateway that presents its key", async () => {
    const r = await gateway("GET", "Observation", { key: KEY });
    expect(r.status).toBe(200);
    expect(r.decision).toBe("filter");
  });

  it("refuses a batch with a refused entry, and denies one whose every entry is refused", async () => {
    const allDenied = await gateway("POST", "", {
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          { request: { method: "GET", url: "Patient/999" } },
          { request: { method: "DELETE", url: "Patient/999" } },
        ],
      },
      key: KEY,
    });
    expect(allDenied.status).toBe(404);
    expect(allDenied.body.reasons?.[0]?.code).toBe("batch-every-entry-denied");
    const mixed = await gateway("POST", "", {
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          { request: { method: "GET", url: "Patient/123" } },
          { request: { method: "DELETE", url: "Patient/999" } },
        ],
      },
      key: KEY,
    });
    expect(mixed.status).toBe(403);
    expect(mixed.body.reasons?.[0]?.code).toBe("gateway-batch-entry-refused");
  });

  it("still answers 200 to a plain allow", async () => {
    const r = await gateway("POST", "Observation", {
      body: {
        resourceType: "Observation",
        status: "final",
        code: { text: "x" },
        subject: { reference: "Patient/123" },
      },
    });
    expect(r.status).toBe(200);
    expect(r.decision).toBe("allow");
  });

  it("applies the same rule to ?mode=gateway on /v1/decision", async () => {
    const res = await fetch(`${service.url}/v1/decision?mode=gateway`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token, request: { method: "GET", url: "Observation/o999" } }),
    });
    expect(res.status).toBe(403);
  });

  // The property `make fuzz` runs with thousands of inputs (test/fuzz/http.fuzz.ts, HTTP-4).
  it("answers 2xx only to an allow that needs nothing more, or an enforcing gateway's filter (sample)", async () => {
    await fc.assert(
      fc.asyncProperty(gatewayCaseArb, (c) =>
        checkGatewayCase({ url: service.url, mint: mintDemoToken, enforcingKey: KEY }, c),
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});
