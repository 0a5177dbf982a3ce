/**
 * End to end with the REAL policy (build/bundle.tar.gz, built by `make build`) and the embedded
 * demo config: a demo token from the CLI, decisions through the HTTP API. Skipped, with a note,
 * when the bundle has not been built; CI builds it before the host tests.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/ops/config.js";
import { startService, type Service } from "../src/server.js";
import { LogSink, REPO } from "./helpers/fixtures.js";
import { OpenApiChecker } from "./helpers/openapi.js";
import { cliToken as demoToken } from "./helpers/demo-token.js";

const BUNDLE = join(REPO, "build/bundle.tar.gz");
const built = existsSync(BUNDLE);
if (!built) console.warn(`server-e2e: ${BUNDLE} is missing; run \`make build\` to include the real policy`);

describe.skipIf(!built)("the service with the real policy bundle and the demo config", () => {
  const openapi = new OpenApiChecker();
  const logs = new LogSink();
  let service: Service;

  async function decide(token: string, request: { method: string; url: string }, query = "") {
    const res = await fetch(`${service.url}/v1/decision${query}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token, request }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    openapi.check("POST", "/v1/decision", res.status, res.headers.get("content-type"), body);
    return { status: res.status, headers: res.headers, body };
  }

  beforeAll(async () => {
    const config = loadConfig(undefined, { SMART_AUTHZ_LISTEN: "127.0.0.1:0" });
    service = await startService(config, { logDestination: logs, defaultMetrics: false });
  });
  afterAll(async () => {
    await service?.close();
  });

  it("warns that the demo issuer is trusted and announces the revision", () => {
    expect(logs.lines.some((l) => l.level === 40 && String(l.msg).startsWith("DEMO issuer is trusted"))).toBe(
      true,
    );
    expect(logs.lines.find((l) => String(l.msg).includes("listening on"))).toMatchObject({
      revision: service.bundles.current?.revision,
    });
  });

  it("releases a patient's own observations to a patient-scoped demo token", async () => {
    const token = await demoToken("--scope", "patient/Observation.rs launch/patient", "--patient", "123");
    const r = await decide(token, { method: "GET", url: "Observation?patient=123" });
    expect(r.status).toBe(200);
    expect(["allow", "filter"]).toContain(r.body.decision);
  });

  it("denies without the scope, and asks for it in gateway mode", async () => {
    const token = await demoToken("--scope", "openid", "--patient", "123");
    const r = await decide(token, { method: "GET", url: "Observation?patient=123" });
    expect(r.body).toMatchObject({ decision: "deny", status: 403 });
    const gw = await decide(token, { method: "GET", url: "Observation?patient=123" }, "?mode=gateway");
    expect(gw.status).toBe(403);
    const required = gw.body.required_scopes as string[] | undefined;
    if (required?.length) {
      expect(gw.headers.get("www-authenticate")).toBe(
        `Bearer realm="smart-authz", error="insufficient_scope", scope="${required.join(" ")}"`,
      );
    }
  });

  it("answers the OPA Data API for both entrypoints", async () => {
    const token = await demoToken("--scope", "patient/Observation.rs", "--patient", "123");
    for (const [path, input] of [
      ["smart/api/scopes", { scope: "patient/Observation.rs" }],
      ["smart/api/decision", { token, request: { method: "GET", url: "Observation?patient=123" } }],
    ] as const) {
      const res = await fetch(`${service.url}/v1/data/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input }),
      });
      const body = (await res.json()) as { result?: unknown; decision_id?: string };
      openapi.check("POST", `/v1/data/${path}`, res.status, res.headers.get("content-type"), body);
      expect(res.status).toBe(200);
      expect(body.result).toBeDefined();
    }
  });
});
