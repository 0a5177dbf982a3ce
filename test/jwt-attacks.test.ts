/**
 * The JWT attack matrix, through the HTTP API of the real service (startService, real policy
 * bundle, JWKS served over HTTP on loopback): every forged, stale, misdirected or malformed
 * token is answered 401 with RFC 6750 `invalid_token` and the stable reason code, and a valid
 * token gets the policy's real answer. Ends with the JWKS endpoint going down: keys already
 * fetched keep working for new tokens, unknown kids are denied.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  SignJWT,
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type CryptoKey as JoseKey,
  type JWK,
  type JWTPayload,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceConfig } from "./helpers/service-config.js";
import { startService, type Service } from "../src/server.js";
import { bundlePath } from "./helpers/policy.js";

// --- A JWKS endpoint on loopback -------------------------------------------------------------

interface Key {
  kid: string;
  alg: string;
  privateKey: JoseKey;
  publicKey: JoseKey;
  jwk: JWK;
}

async function newKey(kid: string, alg: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

class JwksServer {
  fetches = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
    public keys: Key[],
  ) {}

  static async start(keys: Key[]): Promise<JwksServer> {
    let self: JwksServer | undefined;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      self!.fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: self!.keys.map((k) => k.jwk) }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const { port } = server.address() as AddressInfo;
    self = new JwksServer(server, `http://127.0.0.1:${port}/jwks.json`, keys);
    return self;
  }

  stop(): Promise<void> {
    return new Promise((r) => {
      this.server.closeAllConnections();
      this.server.close(() => r());
    });
  }
}

// --- Tokens -------------------------------------------------------------------------------------

const ISS_A = "https://issuer-a.test"; // RS256 and ES256
const ISS_B = "https://issuer-b.test"; // ES256
const ISS_C = "https://issuer-c.test"; // RS256, its JWKS endpoint goes down at the end
const AUD = "https://fhir.test";
const MAX_TOKEN_BYTES = 8192;

const now = () => Math.floor(Date.now() / 1000);
const CLAIMS = { scope: "patient/Observation.rs", patient: "123" };
const REQUEST = { method: "GET", url: "Observation/1" };
const RESOURCE = { resourceType: "Observation", id: "1", subject: { reference: "Patient/123" } };

let a: Key;
let a2: Key;
let b: Key;
let c: Key;
let jwksA: JwksServer;
let jwksB: JwksServer;
let jwksC: JwksServer;
let attacker: JwksServer;
let service: Service;
let dir: string;

function jwt(
  key: Key,
  claims: JWTPayload & Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ ...CLAIMS, iss: ISS_A, aud: AUD, iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...header })
    .sign(key.privateKey);
}

/** Signs any header/payload bytes with an RSA or EC key, bypassing jose's own refusals (crit, b64). */
async function signRaw(key: Key, header: Record<string, unknown>, payload: string): Promise<string> {
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(payload)}`;
  const algorithm = key.alg.startsWith("RS")
    ? { name: "RSASSA-PKCS1-v1_5" }
    : { name: "ECDSA", hash: "SHA-256" };
  const sig = await crypto.subtle.sign(
    algorithm,
    key.privateKey as CryptoKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}

const unsigned = (header: object, payload: object) =>
  `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}.`;

const validPayload = () => ({ ...CLAIMS, iss: ISS_A, aud: AUD, iat: now(), exp: now() + 300 });

// --- HTTP -----------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: { decision?: string; status?: number; reasons?: { code: string; message: string }[] } & Record<
    string,
    unknown
  >;
  text: string;
  wwwAuthenticate: string | null;
}

async function decide(token: string | undefined, via: "body" | "header" = "body"): Promise<Reply> {
  const body = {
    ...(via === "body" && token !== undefined ? { token } : {}),
    request: REQUEST,
    resource: RESOURCE,
  };
  const res = await fetch(`${service.url}/v1/decision`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(via === "header" && token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: JSON.parse(text),
    text,
    wwwAuthenticate: res.headers.get("www-authenticate"),
  };
}

function expectRejected(r: Reply, reason: string): void {
  expect({ status: r.status, reason: r.body.reasons?.[0]?.code }, r.text).toEqual({ status: 401, reason });
  expect(r.body.decision).toBe("deny");
  expect(r.body.status).toBe(401);
  expect(r.wwwAuthenticate).toMatch(
    /^Bearer realm="smart-authz", error="invalid_token", error_description="[^"]+"$/,
  );
  expect(r.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
}

// --- The service ------------------------------------------------------------------------------------

beforeAll(async () => {
  [a, a2, b, c] = await Promise.all([
    newKey("a1", "RS256"),
    newKey("a-es", "ES256"),
    newKey("b1", "ES256"),
    newKey("c1", "RS256"),
  ]);
  jwksA = await JwksServer.start([a, a2]);
  jwksB = await JwksServer.start([b]);
  jwksC = await JwksServer.start([c]);
  attacker = await JwksServer.start([]);
  dir = mkdtempSync(join(tmpdir(), "smart-authz-jwt-"));
  copyFileSync(bundlePath, join(dir, "bundle.tar.gz"));
  const config = serviceConfig(dir, {
    issuers: [
      { issuer: ISS_A, audience: AUD, algorithms: ["RS256", "ES256"], jwks_uri: jwksA.url },
      { issuer: ISS_B, audience: AUD, algorithms: ["ES256"], jwks_uri: jwksB.url },
      { issuer: ISS_C, audience: AUD, algorithms: ["RS256"], jwks_uri: jwksC.url },
    ],
    tokens: {
      clock_tolerance_seconds: 30,
      max_token_bytes: MAX_TOKEN_BYTES,
      jwks_cooldown_seconds: 0,
      jwks_timeout_ms: 1000,
    },
    bundle: "bundle.tar.gz",
  });
  service = await startService(config, { defaultMetrics: false });
}, 60_000);

afterAll(async () => {
  await service?.close();
  await Promise.all([jwksA, jwksB, jwksC, attacker].map((s) => s?.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// --- The matrix --------------------------------------------------------------------------------------

/** Case -> the token, and the expected reason (401) or "allow" (200). */
const MATRIX: [string, () => Promise<string | undefined>, string][] = [
  ["valid RS256 token (control)", () => jwt(a), "allow"],
  ["valid ES256 token of the same issuer (control)", () => jwt(a2), "allow"],
  ["expired 10 s ago, inside the 30 s clock tolerance (control)", () => jwt(a, { exp: now() - 10 }), "allow"],
  ["no token at all", async () => undefined, "token-missing"],
  [
    "alg: none, no signature",
    async () => unsigned({ alg: "none", kid: "a1" }, validPayload()),
    "token-algorithm-not-allowed",
  ],
  [
    "alg: None (case variant), no signature",
    async () => unsigned({ alg: "None", kid: "a1" }, validPayload()),
    "token-algorithm-not-allowed",
  ],
  [
    "alg: NONE with a signature-shaped tail",
    async () => `${unsigned({ alg: "NONE" }, validPayload())}AAAA`,
    "token-algorithm-not-allowed",
  ],
  [
    "HS256 signed with the RSA public key (SPKI PEM as HMAC secret)",
    async () =>
      new SignJWT(validPayload())
        .setProtectedHeader({ alg: "HS256", kid: "a1" })
        .sign(new TextEncoder().encode(await exportSPKI(a.publicKey))),
    "token-algorithm-not-allowed",
  ],
  [
    "HS256 signed with the RSA public JWK (JSON as HMAC secret)",
    async () =>
      new SignJWT(validPayload())
        .setProtectedHeader({ alg: "HS256", kid: "a1" })
        .sign(new TextEncoder().encode(JSON.stringify(a.jwk))),
    "token-algorithm-not-allowed",
  ],
  [
    "ES256 token for an issuer that allows RS256 only (alg substitution)",
    () => jwt(b, { iss: ISS_C }),
    "token-algorithm-not-allowed",
  ],
  ["expired 120 s ago (beyond tolerance)", () => jwt(a, { exp: now() - 120 }), "token-expired"],
  ["not yet valid: nbf 120 s ahead", () => jwt(a, { nbf: now() + 120 }), "token-not-yet-valid"],
  [
    "no exp claim",
    async () =>
      signRaw(a, { alg: "RS256", kid: "a1" }, JSON.stringify({ ...validPayload(), exp: undefined })),
    "token-claims-invalid",
  ],
  ["exp is a string", () => jwt(a, { exp: "2999-01-01" as unknown as number }), "token-claims-invalid"],
  ["wrong iss (untrusted issuer)", () => jwt(a, { iss: "https://evil.test" }), "token-issuer-unknown"],
  [
    "iss missing",
    async () =>
      signRaw(a, { alg: "RS256", kid: "a1" }, JSON.stringify({ ...validPayload(), iss: undefined })),
    "token-issuer-unknown",
  ],
  [
    "iss names issuer A, signed with issuer B's key (kid b1)",
    () => jwt(b, { iss: ISS_A }),
    "token-signature-invalid",
  ],
  ["wrong aud", () => jwt(a, { aud: "https://other-fhir.test" }), "token-audience-invalid"],
  [
    "aud missing",
    async () =>
      signRaw(a, { alg: "RS256", kid: "a1" }, JSON.stringify({ ...validPayload(), aud: undefined })),
    "token-audience-invalid",
  ],
  [
    "unknown kid (a key the issuer never published)",
    async () => jwt(await newKey("zz", "RS256")),
    "token-signature-invalid",
  ],
  [
    "known kid, signed with another key",
    async () => jwt({ ...(await newKey("x", "RS256")), kid: "a1" }),
    "token-signature-invalid",
  ],
  [
    "tampered payload (scope raised to system/*.cruds, original signature)",
    async () => {
      const [h, , s] = (await jwt(a)).split(".");
      return `${h}.${base64url.encode(JSON.stringify({ ...validPayload(), scope: "system/*.cruds" }))}.${s}`;
    },
    "token-signature-invalid",
  ],
  [
    "signature stripped (header.payload.)",
    async () => `${(await jwt(a)).split(".").slice(0, 2).join(".")}.`,
    "token-signature-invalid",
  ],
  [
    "attacker key embedded in the header (jwk), kid a1",
    async () => {
      const evil = { ...(await newKey("a1", "RS256")) };
      return jwt(evil, {}, { jwk: evil.jwk });
    },
    "token-signature-invalid",
  ],
  [
    "attacker JWKS URL in the header (jku), kid a1",
    async () => {
      const evil = await newKey("a1", "RS256");
      attacker.keys = [evil];
      return jwt(evil, {}, { jku: attacker.url });
    },
    "token-signature-invalid",
  ],
  [
    "crit header naming an unknown extension",
    async () =>
      signRaw(
        a,
        { alg: "RS256", kid: "a1", crit: ["exp-ext"], "exp-ext": 1 },
        JSON.stringify(validPayload()),
      ),
    "token-header-unsupported",
  ],
  [
    "crit b64: false (RFC 7797 unencoded payload)",
    async () =>
      signRaw(a, { alg: "RS256", kid: "a1", b64: false, crit: ["b64"] }, JSON.stringify(validPayload())),
    "token-header-unsupported",
  ],
  [
    "oversized token (over max_token_bytes), in the body",
    () => jwt(a, { pad: "x".repeat(MAX_TOKEN_BYTES) }),
    "token-too-large",
  ],
  ["JWE-shaped (five parts)", async () => "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "token-malformed"],
  ["not a JWT", async () => "definitely-not-a-jwt", "token-malformed"],
  [
    "header is not JSON",
    async () => `${base64url.encode("{alg:")}.${base64url.encode("{}")}.c2ln`,
    "token-malformed",
  ],
  [
    "payload is not JSON (correctly signed)",
    async () => signRaw(a, { alg: "RS256", kid: "a1" }, "not json"),
    "token-malformed",
  ],
];

/** Filled as the cases run; printed at the end (docs/testing.md carries a copy). */
const table: string[] = [];

describe("JWT attack matrix via POST /v1/decision (real service, real policy, JWKS over HTTP)", () => {
  it.each(MATRIX.map(([name, make, want]) => [name, want, make] as const))(
    "%s -> %s",
    async (name, want, make) => {
      const r = await decide(await make());
      table.push(`| ${name} | ${r.status} | ${r.body.reasons?.[0]?.code ?? r.body.decision} |`);
      if (want === "allow") {
        expect({ status: r.status, decision: r.body.decision }, r.text).toEqual({
          status: 200,
          decision: "allow",
        });
        return;
      }
      if (want === "token-missing") {
        expect({ status: r.status, reason: r.body.reasons?.[0]?.code }).toEqual({
          status: 401,
          reason: "token-missing",
        });
        expect(r.wwwAuthenticate).toBe('Bearer realm="smart-authz"');
        return;
      }
      expectRejected(r, want);
    },
  );

  it("never fetches a JWKS named by the token (jku)", () => {
    expect(attacker.fetches).toBe(0);
  });

  it("rejects the same attacks in the Authorization header (oversized, tampered, alg none)", async () => {
    expectRejected(
      await decide(await jwt(a, { pad: "x".repeat(MAX_TOKEN_BYTES) }), "header"),
      "token-too-large",
    );
    const [h, , s] = (await jwt(a)).split(".");
    const tampered = `${h}.${base64url.encode(JSON.stringify({ ...validPayload(), patient: "456" }))}.${s}`;
    expectRejected(await decide(tampered, "header"), "token-signature-invalid");
    // "alg none" has an empty signature part, which the Bearer header grammar (RFC 6750 b64token) still allows.
    expectRejected(
      await decide(unsigned({ alg: "none" }, validPayload()), "header"),
      "token-algorithm-not-allowed",
    );
    expect((await decide(await jwt(a), "header")).body.decision).toBe("allow");
  });

  it("refuses a token larger than Node's 16 KiB header limit at the HTTP layer (431, never a decision)", async () => {
    const huge = await jwt(a, { pad: "x".repeat(20 * 1024) });
    const res = await fetch(`${service.url}/v1/decision`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${huge}` },
      body: JSON.stringify({ request: REQUEST }),
    });
    table.push(
      `| oversized token (20 KiB) in the Authorization header | ${res.status} | (Node: header too large) |`,
    );
    expect(res.status).toBe(431);
    expect((await decide(await jwt(a))).body.decision).toBe("allow");
  });

  it("denies a token once it is past exp plus the clock tolerance, even after it was accepted", async () => {
    const token = await jwt(a, { exp: now() - 27 }); // 3 s of tolerance left
    expect((await decide(token)).body.decision).toBe("allow");
    await new Promise((r) => setTimeout(r, 4000));
    expectRejected(await decide(token), "token-expired");
  });

  // H-2 (fixed): jose checks iat against the clock only with `maxTokenAge`; tokens.ts now refuses
  // an iat beyond the clock tolerance itself.
  it("iat in the future (1 h ahead) is denied as not yet valid", async () => {
    const r = await decide(await jwt(a, { iat: now() + 3600 }));
    table.push(
      `| iat 1 h in the future (H-2) | ${r.status} | ${r.body.reasons?.[0]?.code ?? r.body.decision} |`,
    );
    expectRejected(r, "token-not-yet-valid");
  });
});

describe("JWKS endpoint down", () => {
  it("keeps verifying new tokens with keys already fetched, and denies unknown kids", async () => {
    // First successful verification fetches issuer C's JWKS.
    expect((await decide(await jwt(c, { iss: ISS_C }))).body.decision).toBe("allow");
    const fetched = jwksC.fetches;
    expect(fetched).toBeGreaterThan(0);
    await jwksC.stop();

    // New tokens (not in the verified-token cache) signed with the cached key still verify.
    for (let i = 0; i < 3; i++) {
      const r = await decide(await jwt(c, { iss: ISS_C, jti: `fresh-${i}` }));
      expect({ status: r.status, decision: r.body.decision }, r.text).toEqual({
        status: 200,
        decision: "allow",
      });
    }
    // A kid the cache does not have cannot be fetched: denied.
    const unknown = await decide(await jwt(await newKey("c2", "RS256"), { iss: ISS_C }));
    expect(unknown.status).toBe(401);
    expect(["jwks-unavailable", "token-signature-invalid"]).toContain(unknown.body.reasons?.[0]?.code);
    table.push(`| JWKS down: new token, cached kid c1 | 200 | allow |`);
    table.push(`| JWKS down: unknown kid c2 | ${unknown.status} | ${unknown.body.reasons?.[0]?.code} |`);
    // A forged token with the cached kid is still a bad signature, not a pass.
    expectRejected(
      await decide(await jwt({ ...(await newKey("x", "RS256")), kid: "c1" }, { iss: ISS_C })),
      "token-signature-invalid",
    );
    // Other issuers are unaffected.
    expect((await decide(await jwt(b, { iss: ISS_B }))).body.decision).toBe("allow");
  });

  afterAll(() => {
    if (process.env.JWT_MATRIX_PRINT)
      console.log(["| case | HTTP | reason |", "| --- | --- | --- |", ...table].join("\n"));
  });
});
