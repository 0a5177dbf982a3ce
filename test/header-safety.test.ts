/**
 * L2: a token whose `iss`, `alg`, `crit` or `kid` holds any character (above U+00FF, Latin-1,
 * CR/LF, NUL, quotes, backslashes) is answered 401 with a WWW-Authenticate header of visible ASCII
 * only, on every endpoint that verifies tokens; never a 500, never an error log line.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../src/server.js";
import {
  headerText,
  insufficientScopeChallenge,
  invalidTokenChallenge,
  quotedHeaderText,
} from "../src/api/headers.js";
import { LogSink, buildFixtureBundle, tempDir } from "./helpers/fixtures.js";
import { OpenApiChecker } from "./helpers/openapi.js";
import { TestIssuer } from "./helpers/servers.js";
import { serviceConfig } from "./helpers/service-config.js";

const openapi = new OpenApiChecker();
const logs = new LogSink();
let issuer: TestIssuer;
let service: Service;

beforeAll(async () => {
  issuer = await TestIssuer.start();
  const config = serviceConfig(tempDir(), {
    issuers: [issuer.configEntry],
    bundle: buildFixtureBundle("rev-1"),
    logging: { level: "info" },
  });
  service = await startService(config, { logDestination: logs, defaultMetrics: false });
});
afterAll(async () => {
  await service?.close();
  await issuer?.close();
});

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** A compact JWS with the given header and claims; the signature never gets checked (or fails). */
function token(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: issuer.issuer,
    aud: "https://fhir.test",
    iat: now,
    exp: now + 300,
    scope: "patient/Observation.rs",
    ...claims,
  };
  return `${b64({ alg: "ES256", kid: "k1", ...header })}.${b64(payload)}.${b64("not-a-signature")}`;
}

const CHARACTERS: [string, string][] = [
  ["U+2603", "\u2603"],
  ["Latin-1 é", "\u00e9"],
  ["CR/LF", "\r\nX-Injected: 1"],
  ["NUL", "\u0000"],
  ["quote and backslash", '"\\'],
  ["U+FFFF and an astral character", "\uffff\u{1f600}"],
];

const FIELDS: [string, (c: string) => string][] = [
  ["iss", (c) => token({}, { iss: `https://evil${c}` })],
  ["alg", (c) => token({ alg: `ES256${c}` }, {})],
  ["crit", (c) => token({ crit: [`x${c}`] }, {})],
  ["kid", (c) => token({ kid: `k${c}` }, {})],
];

const VISIBLE = /^[\x20-\x7e]*$/;
const CHALLENGE =
  /^Bearer realm="smart-authz", error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]*"$/;

describe("tokens with any character in iss, alg, crit or kid (L2)", () => {
  for (const [field, make] of FIELDS) {
    for (const [name, c] of CHARACTERS) {
      it(`${field} with ${name}: 401 and a visible-ASCII challenge on every endpoint`, async () => {
        const t = make(c);
        const replies = [
          await send("POST", "/v1/decision", {
            body: { token: t, request: { method: "GET", url: "Observation" } },
          }),
          await send("GET", "/v1/gateway/Observation", { headers: { authorization: `Bearer ${t}` } }),
          await send("POST", "/v1/data/smart/api/decision", {
            body: { input: { token: t, request: { method: "GET", url: "Observation" } } },
          }),
        ];
        for (const r of replies) {
          expect(r.status, `${r.path}: ${JSON.stringify(r.body)}`).toBe(401);
          const challenge = r.headers.get("www-authenticate") ?? "";
          expect(challenge).toMatch(CHALLENGE);
          expect(challenge).not.toContain("X-Injected:\r");
          expect(r.headers.get("x-injected")).toBeNull();
        }
      });
    }
  }

  it("logged no request failure for any of them", () => {
    expect(logs.lines.filter((l) => l.msg === "request failed")).toEqual([]);
  });
});

describe("header text", () => {
  it("keeps visible ASCII and replaces everything else", () => {
    expect(quotedHeaderText('a"b\\c\u2603\u00e9\r\n\u0000d')).toBe("a'b'c?????d");
    expect(headerText(" rev-\u2603 ")).toBe("rev-?");
    expect(invalidTokenChallenge("bad \u2603")).toBe(
      'Bearer realm="smart-authz", error="invalid_token", error_description="bad ?"',
    );
    expect(insufficientScopeChallenge(["patient/\u2603.rs", 'a"b'])).toMatch(VISIBLE);
  });
});

async function send(
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string> },
): Promise<{ path: string; status: number; headers: Headers; body: unknown }> {
  const headers = { ...(init.headers ?? {}) };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${service.url}${path}`, {
    method,
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const body = (await res.json()) as unknown;
  openapi.check(method, path, res.status, res.headers.get("content-type"), body);
  return { path, status: res.status, headers: res.headers, body };
}
