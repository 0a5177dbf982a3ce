/**
 * The real service on 127.0.0.1:0 with the real policy bundle (a private copy) for HTTP fuzzing,
 * with a declared enforcing gateway, and a way to mint tokens it accepts.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, importJWK } from "jose";
import { DEMO_PRIVATE_JWK } from "../../../src/auth/demo-keys.js";
import { startService, type Service } from "../../../src/server.js";
import { bundlePath } from "../../helpers/policy.js";
import { DEMO_PUBLIC_JWK, serviceConfig } from "../../helpers/service-config.js";

export interface RealService {
  url: string;
  service: Service;
  /** The key of the service's declared enforcing gateway. */
  enforcingKey: string;
  /** A token of the service's issuer carrying `claims`. */
  mint(claims: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

const ISSUER = "https://issuer.fuzz.test";
const AUDIENCE = "https://fhir.fuzz.test";
const ENFORCING_KEY = "fuzz-enforcing-gateway-key-0123456789abcdef";

export async function startRealService(
  options: { trustForwardedClaims?: boolean } = {},
): Promise<RealService> {
  const dir = mkdtempSync(join(tmpdir(), "smart-authz-fuzz-"));
  copyFileSync(bundlePath, join(dir, "bundle.tar.gz"));
  const config = serviceConfig(
    dir,
    {
      issuers: [
        {
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: ["ES256"],
          jwks: { keys: [{ ...DEMO_PUBLIC_JWK, kid: "k1" }] },
        },
      ],
      bundle: "bundle.tar.gz",
      server: { body_limit: "1mb" },
      tokens: { trust_forwarded_claims: options.trustForwardedClaims === true },
      gateway: { enforcing: [{ name: "fuzz", key_env: "FUZZ_GATEWAY_KEY" }] },
    },
    { FUZZ_GATEWAY_KEY: ENFORCING_KEY },
  );
  const key = await importJWK(DEMO_PRIVATE_JWK, "ES256");
  const service = await startService(config, { defaultMetrics: false });
  return {
    url: service.url,
    service,
    enforcingKey: ENFORCING_KEY,
    mint: (claims) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600, ...claims })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .sign(key);
    },
    close: async () => {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
