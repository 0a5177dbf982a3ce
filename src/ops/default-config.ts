/**
 * The embedded default config: what `smart-authz serve` uses when no --config or
 * $SMART_AUTHZ_CONFIG is given. It trusts ONLY the demo issuer, whose key pair is published in
 * this repository (see demo-keys.ts): fine for trying the service, never for production.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** DEMO ONLY: the issuer of tokens minted with the published demo key. `.invalid` never resolves. */
export const DEMO_ISSUER = "https://demo.smart-authz.invalid";
export const DEMO_AUDIENCE = "https://fhir.demo.smart-authz.invalid";
export const DEMO_KID = "demo-m5bShnQT2lqOtax_";

/** The repository (or installed package) root: relative paths in the embedded config resolve here. */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

export const DEFAULT_CONFIG_YAML = `# smart-authz embedded default config.
# !!! DEMO ONLY: the issuer below is verified with a key pair whose PRIVATE half is published in
# !!! the smart-authz repository (src/auth/demo-keys.ts). Anyone can mint tokens for it. Never deploy this.
server:
  listen: "127.0.0.1:8282"
  body_limit: 1mb
  shutdown_grace_seconds: 10

tokens:
  issuers:
    - issuer: ${DEMO_ISSUER}   # DEMO ONLY
      audience: ${DEMO_AUDIENCE}
      algorithms: [ES256]
      jwks:
        keys:
          # DEMO ONLY public key; its private half is in src/auth/demo-keys.ts
          - kty: EC
            crv: P-256
            x: uDLFjrr19r9IJz4rBC1MYSCu1vUPSvSWgWV19cCKEK8
            y: E8jKakmmqzaELZb09dNNVm5fmZoTsB8E8flba9ChSl0
            kid: ${DEMO_KID}
            alg: ES256
            use: sig
  clock_tolerance_seconds: 30
  trust_forwarded_claims: false

bundle:
  source: build/bundle.tar.gz
  poll_interval_seconds: 5

data:
  clients:
    source: examples/data/clients.json   # DEMO ONLY: \`token\`'s client demo-app may obtain every scope (schemas/data/clients.schema.json)

logging:
  level: info
  decisions: true
  unmask: false

audit:
  path: build/audit.jsonl   # next to the bundle; written for break-the-glass and label denials
  sync: always

policy: {}
`;

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: unknown }).name === "smart-authz") return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}
