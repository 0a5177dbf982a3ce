/**
 * Access-token verification with jose: JWS signature against the issuer's JWKS (remote with
 * rotation on unknown `kid` and a bounded refresh rate, or a local file/inline set), an algorithm
 * allowlist per issuer, and `iss`/`aud`/`exp`/`nbf`/`iat` with a small clock tolerance. Every failure is
 * a TokenError with a stable `reason` the HTTP layer turns into a 401.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWSHeaderParameters,
  type JSONWebKeySet,
  type FlattenedJWSInput,
  type JWTPayload,
  type CryptoKey as JoseCryptoKey,
} from "jose";
import type { IssuerConfig, JwksSource, TokensConfig } from "../ops/config.js";
import { SmartAuthzError } from "../core/errors.js";

export type TokenReason =
  | "token-missing"
  | "token-malformed"
  | "token-too-large"
  | "token-algorithm-not-allowed"
  | "token-header-unsupported"
  | "token-issuer-unknown"
  | "token-audience-invalid"
  | "token-expired"
  | "token-not-yet-valid"
  | "token-claims-invalid"
  | "token-signature-invalid"
  | "jwks-unavailable";

export class TokenError extends SmartAuthzError {
  readonly reason: TokenReason;
  constructor(reason: TokenReason, message: string) {
    super("TOKEN_INVALID", message, { reason });
    this.name = "TokenError";
    this.reason = reason;
  }
}

export interface VerifiedToken {
  claims: JWTPayload & Record<string, unknown>;
  issuer: string;
  /** True when the claims came from the verified-token cache. */
  cached: boolean;
}

type KeyLookup = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<JoseCryptoKey>;

/** Header parameters a JWS access token may carry that we understand; `crit` naming others is refused. */
const UNDERSTOOD_CRIT: Record<string, boolean> = {};

export interface TokenVerifierOptions {
  /** Current time in ms; tests move the clock. */
  now?: () => number;
}

export class TokenVerifier {
  private readonly issuers = new Map<string, { config: IssuerConfig; keys: KeyLookup }>();
  private readonly cache = new Map<
    string,
    { claims: VerifiedToken["claims"]; issuer: string; expiresAt: number }
  >();
  private readonly now: () => number;

  constructor(
    private readonly config: TokensConfig,
    options: TokenVerifierOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    for (const issuer of config.issuers) {
      this.issuers.set(issuer.issuer, { config: issuer, keys: keyLookup(issuer.jwks, config) });
    }
  }

  /** Verifies a compact JWS access token; throws TokenError with a precise reason. */
  async verify(token: string | undefined): Promise<VerifiedToken> {
    if (token === undefined || token.trim() === "")
      throw new TokenError("token-missing", "no access token was supplied");
    const bytes = Buffer.byteLength(token, "utf8");
    if (bytes > this.config.maxTokenBytes) {
      throw new TokenError(
        "token-too-large",
        `the token is ${bytes} bytes, over the ${this.config.maxTokenBytes}-byte limit`,
      );
    }
    const cacheKey = createHash("sha256").update(token).digest("hex");
    const hit = this.cache.get(cacheKey);
    if (hit) {
      if (hit.expiresAt > this.now()) return { claims: hit.claims, issuer: hit.issuer, cached: true };
      this.cache.delete(cacheKey);
    }
    const { header, unverified } = inspect(token);
    const iss = unverified.iss;
    if (typeof iss !== "string") throw new TokenError("token-issuer-unknown", "the token has no `iss` claim");
    const issuer = this.issuers.get(iss);
    if (!issuer)
      throw new TokenError("token-issuer-unknown", `the issuer ${JSON.stringify(iss)} is not trusted`);
    if (!issuer.config.algorithms.includes(header.alg ?? "")) {
      throw new TokenError(
        "token-algorithm-not-allowed",
        `the token is signed with ${JSON.stringify(header.alg)}; ${iss} allows ${issuer.config.algorithms.join(", ")}`,
      );
    }
    let payload: JWTPayload;
    try {
      const result = await jwtVerify(token, issuer.keys, {
        issuer: iss,
        audience: issuer.config.audience,
        algorithms: issuer.config.algorithms,
        clockTolerance: this.config.clockToleranceSeconds,
        requiredClaims: ["exp"],
        currentDate: new Date(this.now()),
        crit: UNDERSTOOD_CRIT,
      });
      payload = result.payload;
    } catch (err) {
      throw mapJoseError(err, issuer.config);
    }
    // jose checks `iat` only together with maxTokenAge: a token issued in the future is refused here.
    if (
      typeof payload.iat === "number" &&
      payload.iat > this.now() / 1000 + this.config.clockToleranceSeconds
    ) {
      throw new TokenError(
        "token-not-yet-valid",
        `the token was issued in the future (iat ${new Date(payload.iat * 1000).toISOString()}, beyond the ${this.config.clockToleranceSeconds}s clock tolerance)`,
      );
    }
    const claims = payload as VerifiedToken["claims"];
    this.remember(cacheKey, claims, iss);
    return { claims, issuer: iss, cached: false };
  }

  private remember(key: string, claims: VerifiedToken["claims"], issuer: string): void {
    if (this.config.cacheMaxEntries === 0 || typeof claims.exp !== "number") return;
    const expiresAt = claims.exp * 1000;
    if (expiresAt <= this.now()) return;
    if (this.cache.size >= this.config.cacheMaxEntries) {
      // Evict expired entries first, then the oldest insertion (Map keeps insertion order).
      const now = this.now();
      for (const [k, v] of this.cache) if (v.expiresAt <= now) this.cache.delete(k);
      while (this.cache.size >= this.config.cacheMaxEntries) {
        const oldest = this.cache.keys().next();
        if (oldest.done) break;
        this.cache.delete(oldest.value);
      }
    }
    this.cache.set(key, { claims, issuer, expiresAt });
  }

  get cacheSize(): number {
    return this.cache.size;
  }
}

/** Decodes header and payload without trusting them, with precise messages for malformed tokens. */
function inspect(token: string): { header: JWSHeaderParameters; unverified: JWTPayload } {
  const parts = token.split(".");
  if (parts.length === 5)
    throw new TokenError("token-malformed", "the token is a JWE; only signed (JWS) tokens are accepted");
  if (parts.length !== 3)
    throw new TokenError("token-malformed", "the token is not a compact JWS (header.payload.signature)");
  let header: JWSHeaderParameters;
  try {
    header = decodeProtectedHeader(token) as JWSHeaderParameters;
  } catch (err) {
    throw new TokenError(
      "token-malformed",
      `the token header is not valid base64url JSON: ${(err as Error).message}`,
    );
  }
  if (typeof header.alg !== "string")
    throw new TokenError("token-malformed", "the token header has no `alg`");
  if (header.alg === "none")
    throw new TokenError("token-algorithm-not-allowed", "unsigned tokens (alg none) are never accepted");
  if (header.crit !== undefined) {
    const unknown = Array.isArray(header.crit)
      ? header.crit.filter((c) => typeof c !== "string" || !Object.hasOwn(UNDERSTOOD_CRIT, c))
      : ["(invalid crit)"];
    if (unknown.length > 0) {
      throw new TokenError(
        "token-header-unsupported",
        `the token marks header parameters critical that are not understood: ${unknown.map((c) => (typeof c === "string" ? c : JSON.stringify(c))).join(", ")}`,
      );
    }
  }
  let unverified: JWTPayload;
  try {
    unverified = decodeJwt(token);
  } catch (err) {
    throw new TokenError(
      "token-malformed",
      `the token payload is not a JSON object: ${(err as Error).message}`,
    );
  }
  return { header, unverified };
}

function mapJoseError(err: unknown, issuer: IssuerConfig): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof joseErrors.JWTExpired)
    return new TokenError("token-expired", `the token expired (${err.message})`);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "nbf":
        return new TokenError("token-not-yet-valid", `the token is not valid yet (${err.message})`);
      case "iat":
        return new TokenError("token-not-yet-valid", `the token was issued in the future (${err.message})`);
      case "aud":
        return new TokenError(
          "token-audience-invalid",
          `the token's audience does not include ${issuer.audience.map((a) => JSON.stringify(a)).join(" or ")}`,
        );
      case "iss":
        return new TokenError("token-issuer-unknown", `unexpected issuer (${err.message})`);
      default:
        return new TokenError("token-claims-invalid", `the token's claims are invalid: ${err.message}`);
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return new TokenError(
      "token-algorithm-not-allowed",
      `the token's algorithm is not allowed for ${issuer.issuer}`,
    );
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenError(
      "token-signature-invalid",
      "the token signature does not verify with the issuer's key",
    );
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new TokenError(
      "token-signature-invalid",
      `no key of ${issuer.issuer} matches the token (kid and alg)`,
    );
  }
  if (err instanceof joseErrors.JWKSTimeout) {
    return new TokenError("jwks-unavailable", `fetching the JWKS of ${issuer.issuer} timed out`);
  }
  if (err instanceof joseErrors.JWKSInvalid) {
    return new TokenError("jwks-unavailable", `the JWKS of ${issuer.issuer} is invalid: ${err.message}`);
  }
  if (err instanceof joseErrors.JOSENotSupported) {
    return new TokenError("token-header-unsupported", `unsupported token: ${err.message}`);
  }
  if (
    err instanceof joseErrors.JWTInvalid ||
    err instanceof joseErrors.JWSInvalid ||
    err instanceof joseErrors.JWKInvalid
  ) {
    return new TokenError("token-malformed", `the token is malformed: ${err.message}`);
  }
  if (err instanceof JwksUnavailable || err instanceof joseErrors.JOSEError || err instanceof TypeError) {
    return new TokenError(
      "jwks-unavailable",
      `the JWKS of ${issuer.issuer} could not be loaded: ${describe(err)}`,
    );
  }
  return new TokenError("token-signature-invalid", `the token could not be verified: ${describe(err)}`);
}

class JwksUnavailable extends Error {}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}

function keyLookup(source: JwksSource, config: TokensConfig): KeyLookup {
  switch (source.kind) {
    case "url":
      return createRemoteJWKSet(new URL(source.url), {
        cooldownDuration: config.jwksCooldownMs,
        cacheMaxAge: config.jwksCacheMaxAgeMs,
        timeoutDuration: config.jwksTimeoutMs,
      });
    case "inline":
      return createLocalJWKSet(source.jwks as JSONWebKeySet);
    case "file":
      return fileJwks(source.path, config.jwksCooldownMs);
  }
}

/**
 * A JWKS file, re-read when a token names a key it lacks and the file changed since (rotation by
 * replacing the file), at most once per cooldown.
 */
function fileJwks(path: string, cooldownMs: number): KeyLookup {
  let local: KeyLookup | undefined;
  let mtime = -1;
  let checkedAt = -Infinity;
  const load = (): void => {
    let stat;
    try {
      stat = statSync(path);
    } catch (err) {
      throw new JwksUnavailable(`cannot read ${path}: ${(err as Error).message}`);
    }
    if (local && stat.mtimeMs === mtime) return;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new JwksUnavailable(`${path} is not valid JSON: ${(err as Error).message}`);
    }
    local = createLocalJWKSet(json as JSONWebKeySet);
    mtime = stat.mtimeMs;
  };
  return async (header, token) => {
    if (!local) load();
    try {
      return await local!(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey && Date.now() - checkedAt >= cooldownMs) {
        checkedAt = Date.now();
        load();
        return local!(header, token);
      }
      throw err;
    }
  };
}
