/**
 * The one builder of service configs for tests: a plain object with the test's differences, merged
 * over a quiet loopback default, written as YAML (the `yaml` package, never string templates) and
 * loaded through the same code path as a real config file. Tests of the config parser itself keep
 * their literal YAML, because line and column numbers are what they check.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig, type Config } from "../../src/ops/config.js";
import { DEMO_AUDIENCE, DEMO_ISSUER, DEMO_KID } from "../../src/ops/default-config.js";

type Section = Record<string, unknown>;

export interface ServiceConfigSpec {
  /** `tokens.issuers`: defaults to the demo issuer with its published key (inline JWKS). */
  issuers?: Section[];
  /** `bundle.source`: a path (relative to the config's folder) or a URL. */
  bundle: string;
  server?: Section;
  tokens?: Section;
  bundleOptions?: Section;
  logging?: Section;
  audit?: Section;
  gateway?: Section;
  policy?: Section;
  [section: string]: unknown;
}

export const DEMO_PUBLIC_JWK = {
  kty: "EC",
  crv: "P-256",
  x: "uDLFjrr19r9IJz4rBC1MYSCu1vUPSvSWgWV19cCKEK8",
  y: "E8jKakmmqzaELZb09dNNVm5fmZoTsB8E8flba9ChSl0",
  kid: DEMO_KID,
  alg: "ES256",
};

export const DEMO_TEST_ISSUER = {
  issuer: DEMO_ISSUER,
  audience: DEMO_AUDIENCE,
  algorithms: ["ES256"],
  jwks: { keys: [DEMO_PUBLIC_JWK] },
};

/** The config as a plain object, ready for YAML. */
export function serviceConfigObject(spec: ServiceConfigSpec): Section {
  const { issuers, bundle, server, tokens, bundleOptions, logging, policy, ...rest } = spec;
  return {
    server: { listen: "127.0.0.1:0", ...server },
    tokens: { issuers: issuers ?? [DEMO_TEST_ISSUER], ...tokens },
    bundle: { source: bundle, poll_interval_seconds: 0, ...bundleOptions },
    logging: { level: "silent", ...logging },
    ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    policy: policy ?? {},
  };
}

export function serviceConfigYaml(spec: ServiceConfigSpec): string {
  return stringify(serviceConfigObject(spec));
}

/** Writes `<dir>/<name>` and loads it like `smart-authz serve --config` would, with `env`. */
export function serviceConfig(
  dir: string,
  spec: ServiceConfigSpec,
  env: NodeJS.ProcessEnv = {},
  name = "smart-authz.yaml",
): Config {
  const file = join(dir, name);
  writeFileSync(file, serviceConfigYaml(spec));
  return loadConfig(file, env);
}
