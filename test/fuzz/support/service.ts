/** The real service on 127.0.0.1:0 with the real policy bundle (a private copy) for HTTP fuzzing. */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../../src/config.js";
import { startService, type Service } from "../../../src/server.js";
import { bundlePath } from "../../support/policy.js";

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
  const yaml = `server:
  listen: "127.0.0.1:0"
  body_limit: 1mb
tokens:
  issuers:
    - issuer: https://issuer.fuzz.test
      audience: https://fhir.fuzz.test
      algorithms: [ES256]
      jwks:
        keys:
          - { kty: EC, crv: P-256, x: uDLFjrr19r9IJz4rBC1MYSCu1vUPSvSWgWV19cCKEK8, y: E8jKakmmqzaELZb09dNNVm5fmZoTsB8E8flba9ChSl0, kid: k1, alg: ES256 }
  trust_forwarded_claims: ${options.trustForwardedClaims ? "true" : "false"}
bundle:
  source: bundle.tar.gz
  poll_interval_seconds: 0
logging:
  level: silent
policy: {}
`;
  const service = await startService(parseConfig(yaml, join(dir, "fuzz.yaml"), dir), {
    defaultMetrics: false,
  });
  return {
    url: service.url,
    service,
    close: async () => {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
