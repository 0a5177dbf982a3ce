/** The real service on 127.0.0.1:0 with the real policy bundle (a private copy) for HTTP fuzzing. */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startService, type Service } from "../../../src/server.js";
import { bundlePath } from "../../helpers/policy.js";
import { DEMO_PUBLIC_JWK, serviceConfig } from "../../helpers/service-config.js";

export interface RealService {
  url: string;
  service: Service;
  close(): Promise<void>;
}

export async function startRealService(
  options: { trustForwardedClaims?: boolean } = {},
): Promise<RealService> {
  const dir = mkdtempSync(join(tmpdir(), "smart-authz-fuzz-"));
  copyFileSync(bundlePath, join(dir, "bundle.tar.gz"));
  const config = serviceConfig(dir, {
    issuers: [
      {
        issuer: "https://issuer.fuzz.test",
        audience: "https://fhir.fuzz.test",
        algorithms: ["ES256"],
        jwks: { keys: [{ ...DEMO_PUBLIC_JWK, kid: "k1" }] },
      },
    ],
    bundle: "bundle.tar.gz",
    server: { body_limit: "1mb" },
    tokens: { trust_forwarded_claims: options.trustForwardedClaims === true },
  });
  const service = await startService(config, { defaultMetrics: false });
  return {
    url: service.url,
    service,
    close: async () => {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
