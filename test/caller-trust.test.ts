/**
 * The review's break-the-glass reproductions, through HTTP with the real policy:
 * - L3: a caller's `now` cannot move the break-the-glass time box (or backdate its audit record)
 *   unless `tokens.trust_forwarded_now` is on; `trust_forwarded_claims` alone does not imply it.
 * - M5: /v1/data no longer takes forged claims, so nobody can frame a user in the audit trail.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../src/server.js";
import { LogSink, tempDir } from "./helpers/fixtures.js";
import { demoToken } from "./helpers/demo-token.js";
import { bundlePath } from "./helpers/policy.js";
import { serviceConfig } from "./helpers/service-config.js";

const HIV_OBSERVATION = {
  resourceType: "Observation",
  id: "h1",
  meta: {
    security: [
      { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" },
      { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "HIV" },
    ],
  },
  status: "final",
  code: { text: "x" },
  subject: { reference: "Patient/123" },
};
const BTG_REQUEST = {
  method: "GET",
  url: "Observation/h1",
  headers: { "x-btg-reason": "unconscious patient, suspected overdose" },
};

/** A clinician who may break the glass; `issuedSecondsAgo` sets the token's iat. */
function clinician(issuedSecondsAgo: number, extra: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return demoToken({
    scope: "user/Observation.rs",
    sub: "dr.real",
    fhirUser: "Practitioner/42",
    client_id: "ehr",
    roles: ["er-physician"],
    purpose_of_use: ["BTG"],
    iat: now - issuedSecondsAgo,
    ...extra,
  });
}

describe.skipIf(!existsSync(bundlePath))("caller-supplied time and claims with the real policy", () => {
  const services: Service[] = [];
  async function start(tokens: Record<string, unknown> = {}): Promise<{ service: Service; dir: string }> {
    const dir = tempDir();
    // The clinician acts for patient 123 (user/ scopes reach only the user's related patients).
    writeFileSync(
      join(dir, "relationships.json"),
      JSON.stringify({ users: { "Practitioner/42": { patients: ["123"] } } }),
    );
    const config = serviceConfig(dir, {
      bundle: bundlePath,
      tokens,
      audit: { path: "audit.jsonl" },
      policy: { btg: { eligible: [{ roles: ["er-physician"] }] } },
      data: { relationships: { source: "relationships.json" } },
    });
    const service = await startService(config, { logDestination: new LogSink(), defaultMetrics: false });
    services.push(service);
    return { service, dir };
  }
  afterAll(async () => {
    await Promise.all(services.map((s) => s.close()));
  });

  function audits(dir: string): Record<string, any>[] {
    // eslint-disable-line @typescript-eslint/no-explicit-any
    const path = join(dir, "audit.jsonl");
    if (!existsSync(path)) return [];
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  async function post(service: Service, path: string, body: unknown): Promise<{ status: number; body: any }> {
    // eslint-disable-line @typescript-eslint/no-explicit-any
    const res = await fetch(`${service.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  describe("L3: the break-the-glass time box runs on the server clock", () => {
    let strict: { service: Service; dir: string };
    let trustingClaims: { service: Service; dir: string };
    let trustingNow: { service: Service; dir: string };
    let stale: string;
    let forgedNow: string;

    beforeAll(async () => {
      strict = await start();
      trustingClaims = await start({ trust_forwarded_claims: true });
      trustingNow = await start({ trust_forwarded_now: true });
      stale = await clinician(2 * 3600); // issued two hours ago: outside the one-hour time box
      forgedNow = new Date((Math.floor(Date.now() / 1000) - 2 * 3600 + 200) * 1000).toISOString();
    }, 120_000);

    it("a fresh token breaks the glass (control)", async () => {
      const r = await post(strict.service, "/v1/decision", {
        token: await clinician(60),
        request: BTG_REQUEST,
        resource: HIV_OBSERVATION,
      });
      expect(r.body.decision).toBe("allow");
    });

    it("a stale token with a forged `now` inside its time box is refused, on /v1/decision and /v1/data", async () => {
      const before = audits(strict.dir).filter((a) => a.event.outcome === "0").length;
      const decision = await post(strict.service, "/v1/decision", {
        token: stale,
        request: BTG_REQUEST,
        resource: HIV_OBSERVATION,
        now: forgedNow,
      });
      expect(decision.body.decision).toBe("deny");
      expect(decision.body.reasons[0].code).toBe("label-restricted");
      const data = await post(strict.service, "/v1/data/smart/api/decision", {
        input: { token: stale, request: BTG_REQUEST, resource: HIV_OBSERVATION, now: forgedNow },
      });
      expect(data.body.result.decision).toBe("deny");
      // No break-the-glass record was written, let alone a backdated one.
      expect(audits(strict.dir).filter((a) => a.event.outcome === "0")).toHaveLength(before);
    });

    it("trusting forwarded claims does not mean trusting a forwarded `now`", async () => {
      const r = await post(trustingClaims.service, "/v1/decision", {
        token: stale,
        request: BTG_REQUEST,
        resource: HIV_OBSERVATION,
        now: forgedNow,
      });
      expect(r.body.decision).toBe("deny");
    });

    it("with tokens.trust_forwarded_now, the caller's `now` decides", async () => {
      const r = await post(trustingNow.service, "/v1/decision", {
        token: stale,
        request: BTG_REQUEST,
        resource: HIV_OBSERVATION,
        now: forgedNow,
      });
      expect(r.body.decision).toBe("allow");
    });
  });

  describe("M5: nobody can frame a user in the audit trail through /v1/data", () => {
    it("refuses the review's forged break-the-glass request and writes nothing", async () => {
      const { service, dir } = await start();
      const now = Math.floor(Date.now() / 1000);
      const r = await post(service, "/v1/data/smart/api/decision", {
        input: {
          claims: {
            scope: "user/Observation.rs",
            sub: "dr.innocent",
            fhirUser: "Practitioner/42",
            client_id: "ehr",
            roles: ["er-physician"],
            purpose_of_use: ["BTG"],
            iat: now,
          },
          request: { ...BTG_REQUEST, headers: { "x-btg-reason": "forged by attacker without any token" } },
          resource: HIV_OBSERVATION,
          now: new Date().toISOString(),
        },
      });
      expect(r.status).toBe(400);
      expect(audits(dir)).toEqual([]);
    });

    it("evaluates the decision entrypoint without input as OPA does: no result", async () => {
      const { service } = await start();
      const res = await fetch(`${service.url}/v1/data/smart/api/decision`);
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status).toBe(200);
      expect(body).toEqual({ decision_id: expect.any(String) });
    });
  });
});
