import { utimesSync } from "node:fs";
import { SignJWT, base64url } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IssuerConfig, TokensConfig } from "../src/ops/config.js";
import { TokenVerifier, type TokenReason } from "../src/auth/tokens.js";
import { tempDir, writeFile } from "./helpers/fixtures.js";
import { TestIssuer, newKey } from "./helpers/servers.js";

let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await TestIssuer.start();
});
afterAll(async () => {
  await issuer.close();
});

function tokensConfig(
  overrides: Partial<TokensConfig> = {},
  issuerOverrides: Partial<IssuerConfig> = {},
): TokensConfig {
  return {
    issuers: [
      {
        issuer: issuer.issuer,
        audience: ["https://fhir.test"],
        algorithms: ["RS256", "ES256"],
        jwks: { kind: "url", url: issuer.jwksUri },
        ...issuerOverrides,
      },
    ],
    clockToleranceSeconds: 30,
    maxTokenBytes: 16 * 1024,
    cacheMaxEntries: 100,
    jwksCooldownMs: 30_000,
    jwksCacheMaxAgeMs: 600_000,
    jwksTimeoutMs: 2000,
    trustForwardedClaims: false,
    trustForwardedNow: false,
    ...overrides,
  };
}

async function reasonOf(
  verifier: TokenVerifier,
  token: string | undefined,
): Promise<{ reason: TokenReason; message: string }> {
  try {
    await verifier.verify(token);
  } catch (err) {
    const e = err as { reason: TokenReason; message: string };
    return { reason: e.reason, message: e.message };
  }
  throw new Error("expected the token to be rejected");
}

/** Signs without jose's header checks (jose refuses to produce a `crit` it does not know). */
async function signRaw(header: Record<string, unknown>, payload: object): Promise<string> {
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}`;
  const key = issuer.keys[0]!.privateKey;
  const sig = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}

const unsigned = (header: object, payload: object) =>
  `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}.`;

describe("token verification", () => {
  it("accepts a valid token against the issuer's JWKS over HTTP and caches it until expiry", async () => {
    const verifier = new TokenVerifier(tokensConfig());
    const token = await issuer.token({ scope: "patient/*.rs", patient: "42" });
    const first = await verifier.verify(token);
    expect(first).toMatchObject({
      issuer: issuer.issuer,
      cached: false,
      claims: { scope: "patient/*.rs", patient: "42" },
    });
    const fetches = issuer.fetches;
    expect(await verifier.verify(token)).toMatchObject({ cached: true, claims: { patient: "42" } });
    expect(issuer.fetches).toBe(fetches);
  });

  it("names every failure with a stable reason", async () => {
    const verifier = new TokenVerifier(tokensConfig({ clockToleranceSeconds: 5 }));
    const now = Math.floor(Date.now() / 1000);
    const key = issuer.keys[0]!;
    const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: key.kid, ...header }).sign(key.privateKey);
    const base = { iss: issuer.issuer, aud: "https://fhir.test", exp: now + 300 };

    expect(await reasonOf(verifier, undefined)).toEqual({
      reason: "token-missing",
      message: "no access token was supplied",
    });
    expect((await reasonOf(verifier, "not-a-token")).reason).toBe("token-malformed");
    expect((await reasonOf(verifier, "a.b.c.d.e")).message).toBe(
      "the token is a JWE; only signed (JWS) tokens are accepted",
    );
    expect((await reasonOf(verifier, "e30.e30.")).reason).toBe("token-malformed");
    expect(await reasonOf(verifier, unsigned({ alg: "none" }, base))).toEqual({
      reason: "token-algorithm-not-allowed",
      message: "unsigned tokens (alg none) are never accepted",
    });
    expect(await reasonOf(verifier, await sign({ ...base, exp: now - 60 }))).toMatchObject({
      reason: "token-expired",
    });
    expect((await reasonOf(verifier, await sign({ ...base, nbf: now + 120 }))).reason).toBe(
      "token-not-yet-valid",
    );
    expect(await reasonOf(verifier, await sign({ ...base, aud: "https://other.test" }))).toEqual({
      reason: "token-audience-invalid",
      message: `the token's audience does not include "https://fhir.test"`,
    });
    expect(await reasonOf(verifier, await sign({ ...base, iss: "https://evil.test" }))).toEqual({
      reason: "token-issuer-unknown",
      message: 'the issuer "https://evil.test" is not trusted',
    });
    expect((await reasonOf(verifier, await sign({ aud: "https://fhir.test", exp: now + 60 }))).reason).toBe(
      "token-issuer-unknown",
    );
    expect(
      (await reasonOf(verifier, await sign({ iss: issuer.issuer, aud: "https://fhir.test" }))).reason,
    ).toBe("token-claims-invalid");
    expect(
      await reasonOf(
        verifier,
        await signRaw({ alg: "ES256", kid: key.kid, crit: ["exp-ext"], "exp-ext": 1 }, base),
      ),
    ).toEqual({
      reason: "token-header-unsupported",
      message: "the token marks header parameters critical that are not understood: exp-ext",
    });
    const good = await sign(base);
    const [h, , s] = good.split(".");
    const forged = `${h}.${base64url.encode(JSON.stringify({ ...base, scope: "system/*.cruds" }))}.${s}`;
    expect((await reasonOf(verifier, forged)).reason).toBe("token-signature-invalid");
    const big = await sign({ ...base, pad: "x".repeat(17 * 1024) });
    expect((await reasonOf(verifier, big)).message).toMatch(
      /^the token is \d+ bytes, over the 16384-byte limit$/,
    );
  });

  it("tolerates small clock skew but not more", async () => {
    const verifier = new TokenVerifier(tokensConfig({ clockToleranceSeconds: 30 }));
    const now = Math.floor(Date.now() / 1000);
    const key = issuer.keys[0]!;
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ iss: issuer.issuer, aud: "https://fhir.test", ...claims })
        .setProtectedHeader({ alg: "ES256", kid: key.kid })
        .sign(key.privateKey);
    await expect(verifier.verify(await sign({ exp: now - 10 }))).resolves.toMatchObject({ cached: false });
    await expect(verifier.verify(await sign({ exp: now + 60, nbf: now + 10 }))).resolves.toMatchObject({
      cached: false,
    });
    expect((await reasonOf(verifier, await sign({ exp: now - 40 }))).reason).toBe("token-expired");
    // H-2: iat in the future within the tolerance passes; beyond it the token is not valid yet.
    await expect(verifier.verify(await sign({ exp: now + 60, iat: now + 20 }))).resolves.toMatchObject({
      cached: false,
    });
    expect(await reasonOf(verifier, await sign({ exp: now + 3600, iat: now + 3600 }))).toMatchObject({
      reason: "token-not-yet-valid",
      message: expect.stringMatching(/^the token was issued in the future/),
    });
  });

  it("refuses algorithms outside the issuer's allowlist, including HS256 signed with the public key", async () => {
    const verifier = new TokenVerifier(tokensConfig({}, { algorithms: ["RS256"] }));
    const es = await issuer.token();
    expect(await reasonOf(verifier, es)).toEqual({
      reason: "token-algorithm-not-allowed",
      message: `the token is signed with "ES256"; ${issuer.issuer} allows RS256`,
    });
    const secret = new TextEncoder().encode(JSON.stringify(issuer.keys[0]!.publicJwk));
    const hs = await new SignJWT({
      iss: issuer.issuer,
      aud: "https://fhir.test",
      exp: Math.floor(Date.now() / 1000) + 60,
    })
      .setProtectedHeader({ alg: "HS256", kid: issuer.keys[0]!.kid })
      .sign(secret);
    expect((await reasonOf(new TokenVerifier(tokensConfig()), hs)).reason).toBe(
      "token-algorithm-not-allowed",
    );
  });

  it("picks up a rotated key on an unknown kid, and refetches at most once per cooldown", async () => {
    const rotating = await TestIssuer.start("https://rotating.test");
    try {
      const verifier = new TokenVerifier({
        ...tokensConfig({ jwksCooldownMs: 1000 }),
        issuers: [
          {
            issuer: rotating.issuer,
            audience: ["https://fhir.test"],
            algorithms: ["ES256"],
            jwks: { kind: "url", url: rotating.jwksUri },
          },
        ],
      });
      await verifier.verify(await rotating.token());
      expect(rotating.fetches).toBe(1);
      const k2 = await rotating.rotate("k2");
      await new Promise((r) => setTimeout(r, 1100)); // past the cooldown that follows the first fetch
      await expect(verifier.verify(await rotating.token({}, { key: k2 }))).resolves.toMatchObject({
        cached: false,
      });
      expect(rotating.fetches).toBe(2);
      const stranger = await newKey("k9");
      for (let i = 0; i < 5; i++) {
        expect((await reasonOf(verifier, await rotating.token({ n: i }, { key: stranger }))).reason).toBe(
          "token-signature-invalid",
        );
      }
      expect(rotating.fetches).toBe(2);
    } finally {
      await rotating.close();
    }
  });

  it("reports an unreachable or failing JWKS as jwks-unavailable", async () => {
    issuer.available = false;
    try {
      const verifier = new TokenVerifier(tokensConfig());
      expect(await reasonOf(verifier, await issuer.token({ fresh: 1 }))).toEqual({
        reason: "jwks-unavailable",
        message: `the JWKS of ${issuer.issuer} could not be loaded: Expected 200 OK from the JSON Web Key Set HTTP response`,
      });
    } finally {
      issuer.available = true;
    }
    const dead = new TokenVerifier(
      tokensConfig({}, { jwks: { kind: "url", url: "http://127.0.0.1:9/jwks.json" } }),
    );
    expect((await reasonOf(dead, await issuer.token({ fresh: 2 }))).reason).toBe("jwks-unavailable");
  });

  it("re-reads a JWKS file when a token names a key it lacks and the file changed", async () => {
    const dir = tempDir();
    const k1 = await newKey("f1");
    const file = writeFile(dir, "jwks.json", JSON.stringify({ keys: [k1.publicJwk] }));
    const verifier = new TokenVerifier(
      tokensConfig({ jwksCooldownMs: 0 }, { jwks: { kind: "file", path: file } }),
    );
    await verifier.verify(await issuer.token({}, { key: k1 }));
    const k2 = await newKey("f2");
    writeFile(dir, "jwks.json", JSON.stringify({ keys: [k2.publicJwk] }));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await expect(verifier.verify(await issuer.token({}, { key: k2 }))).resolves.toMatchObject({
      cached: false,
    });
    const missing = new TokenVerifier(tokensConfig({}, { jwks: { kind: "file", path: `${dir}/nope.json` } }));
    expect((await reasonOf(missing, await issuer.token({}, { key: k1 }))).reason).toBe("jwks-unavailable");
  });

  it("keeps the verified-token cache bounded", async () => {
    const verifier = new TokenVerifier(tokensConfig({ cacheMaxEntries: 2 }));
    for (let i = 0; i < 4; i++) await verifier.verify(await issuer.token({ n: i }));
    expect(verifier.cacheSize).toBe(2);
  });
});
