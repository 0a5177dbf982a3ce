import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EMBEDDED_ORIGIN, loadConfig, parseConfig } from "../src/ops/config.js";
import { DEMO_ISSUER, PACKAGE_ROOT } from "../src/ops/default-config.js";
import { SmartAuthzError } from "../src/core/errors.js";
import { REPO, tempDir, writeFile } from "./helpers/fixtures.js";
import { DEMO_PUBLIC_JWK } from "./helpers/service-config.js";

const VALID = `server:
  listen: "0.0.0.0:9000"
tokens:
  issuers:
    - issuer: https://issuer.example
      audience: https://fhir.example
      jwks_uri: https://issuer.example/jwks.json
bundle:
  source: ./bundle.tar.gz
policy:
  deny: { hidden_status: 403 }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, "cfg.yaml", "/etc/smart-authz");
  } catch (err) {
    expect(err).toBeInstanceOf(SmartAuthzError);
    expect((err as SmartAuthzError).code).toBe("CONFIG_INVALID");
    return (
      (err as SmartAuthzError).details!.issues as {
        field: string;
        message: string;
        line?: number;
        col?: number;
      }[]
    ).map((i) => `${i.line}:${i.col} ${i.field}: ${i.message}`);
  }
  throw new Error("expected the config to be rejected");
}

describe("config", () => {
  it("accepts a valid file and fills in defaults", () => {
    const c = parseConfig(VALID, "cfg.yaml", "/etc/smart-authz");
    expect(c.server).toMatchObject({
      host: "0.0.0.0",
      port: 9000,
      bodyLimitBytes: 1024 * 1024,
      fhirBasePath: "/",
      maxConnections: 1024,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      dataApi: true,
    });
    expect(c.tokens.issuers[0]).toEqual({
      issuer: "https://issuer.example",
      audience: ["https://fhir.example"],
      algorithms: ["RS256", "ES256"],
      jwks: { kind: "url", url: "https://issuer.example/jwks.json" },
    });
    expect(c.tokens).toMatchObject({
      clockToleranceSeconds: 30,
      maxTokenBytes: 16384,
      trustForwardedClaims: false,
      trustForwardedNow: false,
    });
    expect(c.limits).toEqual({
      maxUrlBytes: 8192,
      maxParameters: 100,
      maxParameterRepeats: 20,
      policyTimeouts: { burst: 3, refillMs: 20_000 },
    });
    expect(c.bundle.source).toEqual({ kind: "file", path: "/etc/smart-authz/bundle.tar.gz" });
    // The policy section reaches the policy exactly as written: the bundle's defaults fill the rest.
    expect(c.policy).toEqual({ deny: { hidden_status: 403 } });
    expect(c.logging).toEqual({ level: "info", decisions: true, unmask: false, requests: "debug" });
    expect(c.demo).toBe(false);
    expect(c.audit).toBeUndefined();
    expect(c.server.keepAliveTimeoutMs).toBe(65_000);
  });

  it("reads the request limits, connection bounds and trust switches", () => {
    const text = VALID.replace(
      '  listen: "0.0.0.0:9000"',
      '  listen: "0.0.0.0:9000"\n  max_connections: 50\n  headers_timeout_seconds: 2\n  request_timeout_seconds: 5\n  data_api: false',
    ).concat(
      "limits:\n  max_url_bytes: 4kb\n  max_parameters: 10\n  max_parameter_repeats: 2\n  policy_timeouts: { burst: 0, refill_seconds: 1 }\n",
    );
    const c = parseConfig(text, "cfg.yaml", "/etc/smart-authz");
    expect(c.server).toMatchObject({
      maxConnections: 50,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 5000,
      dataApi: false,
    });
    expect(c.limits).toEqual({
      maxUrlBytes: 4096,
      maxParameters: 10,
      maxParameterRepeats: 2,
      policyTimeouts: { burst: 0, refillMs: 1000 },
    });
    const bad = VALID.replace(
      '  listen: "0.0.0.0:9000"',
      '  listen: "0.0.0.0:9000"\n  headers_timeout_seconds: 20\n  request_timeout_seconds: 5',
    )
      .replace("  issuers:", "  trust_forwarded_now: maybe\n  issuers:")
      .concat("limits:\n  max_parameters: 0\n  policy: 1\n");
    expect(problems(bad)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /server\.request_timeout_seconds: must be at least headers_timeout_seconds \(20\)/,
        ),
        expect.stringMatching(/tokens\.trust_forwarded_now: must be true or false/),
        expect.stringMatching(/limits\.max_parameters: must be a whole number from 1 to 10000, got number 0/),
        expect.stringMatching(/limits\.policy: unknown field/),
      ]),
    );
  });

  it("reads the audit section and the keep-alive timeout, resolving the audit path against the file", () => {
    const text = VALID.replace(
      '  listen: "0.0.0.0:9000"',
      '  listen: "0.0.0.0:9000"\n  keep_alive_timeout_seconds: 120',
    ).concat("audit:\n  path: logs/audit.jsonl\n  sync: btg\n");
    const c = parseConfig(text, "cfg.yaml", "/etc/smart-authz");
    expect(c.audit).toEqual({ path: "/etc/smart-authz/logs/audit.jsonl", sync: "btg" });
    expect(c.server.keepAliveTimeoutMs).toBe(120_000);
    expect(parseConfig(`${VALID}audit:\n  path: /var/log/a.jsonl\n`, "c", "/x").audit).toEqual({
      path: "/var/log/a.jsonl",
      sync: "always",
    });
    expect(problems(`${VALID}audit:\n  sync: sometimes\n`)).toEqual([
      "13:3 audit.path: required",
      '13:9 audit.sync: must be "always" or "btg", got "sometimes"',
    ]);
    expect(problems(`${VALID}audit: /var/log/a.jsonl\n`)).toEqual([
      '12:8 audit: must be a mapping, got "/var/log/a.jsonl"',
    ]);
    expect(problems(VALID.replace('  listen: "0.0.0.0:9000"', "  keep_alive_timeout_seconds: 0"))).toEqual([
      "2:31 server.keep_alive_timeout_seconds: must be a number from 1 to 3600, got number 0",
    ]);
  });

  it("uses the embedded demo config when no file is given, with paths relative to the package", () => {
    const c = loadConfig(undefined, {});
    expect(c.origin).toBe(EMBEDDED_ORIGIN);
    expect(c.demo).toBe(true);
    expect(c.tokens.issuers.map((i) => i.issuer)).toEqual([DEMO_ISSUER]);
    expect(c.bundle.source).toEqual({ kind: "file", path: join(PACKAGE_ROOT, "build/bundle.tar.gz") });
    expect(c.audit).toEqual({ path: join(PACKAGE_ROOT, "build/audit.jsonl"), sync: "always" });
    expect(PACKAGE_ROOT).toBe(REPO);
  });

  it("reads the file named by SMART_AUTHZ_CONFIG and applies environment overrides", () => {
    const dir = tempDir();
    const file = writeFile(dir, "c.yaml", VALID);
    const c = loadConfig(undefined, {
      SMART_AUTHZ_CONFIG: file,
      SMART_AUTHZ_LISTEN: "[::1]:7000",
      SMART_AUTHZ_BUNDLE: "https://bundles.example/b.tar.gz",
      SMART_AUTHZ_BUNDLE_TOKEN: "s3cret",
      SMART_AUTHZ_LOG_LEVEL: "debug",
    });
    expect(c.origin).toBe(file);
    expect(c.server).toMatchObject({ host: "::1", port: 7000 });
    expect(c.bundle.source).toEqual({ kind: "url", url: "https://bundles.example/b.tar.gz" });
    expect(c.bundle.bearerToken).toBe("s3cret");
    expect(c.logging.level).toBe("debug");
  });

  it("rejects a bad environment override with the variable's name", () => {
    expect(() => loadConfig(undefined, { SMART_AUTHZ_LISTEN: "nonsense" })).toThrow(
      /SMART_AUTHZ_LISTEN: expected "host:port"/,
    );
    expect(() => loadConfig(undefined, { SMART_AUTHZ_LOG_LEVEL: "loud" })).toThrow(
      /SMART_AUTHZ_LOG_LEVEL: must be one of/,
    );
  });

  it("names a missing config file", () => {
    expect(() => loadConfig("/nonexistent/smart-authz.yaml", {})).toThrow(
      "config file not found: /nonexistent/smart-authz.yaml",
    );
  });

  it("reports YAML syntax errors with line and column", () => {
    const [p] = problems("tokens:\n  issuers: [\n bundle: x\n");
    expect(p).toBe(
      "3:2 (syntax): Flow sequence in block collection must be sufficiently indented and end with a ]",
    );
  });

  it("reports an unknown field at its key, with the field it was probably meant to be", () => {
    const text = VALID.replace("  issuers:", "  isuers: []\n  issuers:");
    expect(problems(text)).toEqual(['4:3 tokens.isuers: unknown field; did you mean "issuers"?']);
    expect(problems(VALID.replace("  issuers:", "  frobnicate: []\n  issuers:"))).toEqual([
      "4:3 tokens.frobnicate: unknown field; expected one of issuers, clock_tolerance_seconds, max_token_bytes, cache_max_entries, jwks_cooldown_seconds, jwks_cache_max_age_seconds, jwks_timeout_ms, trust_forwarded_claims, trust_forwarded_now",
    ]);
    // A required field misspelt is one problem, at the typo, not also a missing field.
    expect(problems(VALID.replace("  source: ./bundle.tar.gz", "  sourse: ./bundle.tar.gz"))).toEqual([
      '9:3 bundle.sourse: unknown field; did you mean "source"?',
    ]);
    // A field that belongs elsewhere says where.
    expect(problems(`${VALID}audit:\n  path: a.jsonl\n  all_decisions: true\n`)).toEqual([
      '14:3 audit.all_decisions: unknown field; expected one of path, sync ("all_decisions" is a field of policy.audit)',
    ]);
  });

  it("reports every problem at once, each at its own line, in the order of the file", () => {
    const text = `server:
  listen: "host:99999"
  body_limit: lots
tokens:
  issuers:
    - issuer: https://a.example
      algorithms: [none, HS256, ES256]
      jwks_uri: ftp://a.example/jwks
      jwks_file: ./jwks.json
bundle: {}
logging:
  level: loud
  unmask: "yes"
policy: [1, 2]
`;
    expect(problems(text)).toEqual([
      "2:11 server.listen: port 99999 is out of range (0-65535)",
      '3:15 server.body_limit: must be a size such as 1048576, "512kb" or "1mb", got "lots"',
      "6:7 tokens.issuers[0].audience: required: the audience (a string or a list of strings) your tokens carry in `aud`",
      "6:7 tokens.issuers[0]: exactly one of jwks_uri, jwks_file or jwks is required (got jwks_uri, jwks_file)",
      "7:20 tokens.issuers[0].algorithms[0]: none is never accepted (unsigned or shared-secret tokens); allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
      "7:26 tokens.issuers[0].algorithms[1]: HS256 is never accepted (unsigned or shared-secret tokens); allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
      "8:17 tokens.issuers[0].jwks_uri: must be an http:// or https:// URL",
      "10:9 bundle.source: required",
      "12:10 logging.level: must be one of fatal, error, warn, info, debug, trace, silent",
      '13:11 logging.unmask: must be true or false, got "yes"',
      "14:9 policy: must be a mapping, got a list",
    ]);
  });

  it("requires at least one issuer and rejects duplicates", () => {
    expect(problems("tokens:\n  issuers: []\nbundle:\n  source: b.tar.gz\n")).toEqual([
      "2:12 tokens.issuers: must be a non-empty list of trusted token issuers",
    ]);
    const dup = VALID.replace(
      "bundle:",
      "    - issuer: https://issuer.example\n      audience: x\n      jwks_uri: https://issuer.example/jwks.json\nbundle:",
    );
    expect(problems(dup)).toEqual([
      '8:15 tokens.issuers[1].issuer: duplicate issuer "https://issuer.example"',
    ]);
  });

  it("rejects an empty file and a non-mapping root", () => {
    expect(problems("")).toEqual([
      "undefined:undefined (root): the config is empty; expected a mapping with at least `tokens` and `bundle`",
    ]);
    expect(problems("- a\n- b\n")).toEqual(["1:1 (root): must be a mapping, got a list"]);
  });

  it("checks the bundle verification section", () => {
    const text = VALID.replace(
      "  source: ./bundle.tar.gz",
      "  source: ./bundle.tar.gz\n  verification:\n    public_key_file: ./missing.pem\n    algorithm: HS256",
    );
    expect(problems(text)).toEqual([
      "11:22 bundle.verification.public_key_file: file not found: /etc/smart-authz/missing.pem",
      "12:16 bundle.verification.algorithm: HS256 is never accepted (unsigned or shared-secret tokens); allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
    ]);
  });

  it("accepts inline and file JWKS and sizes with units", () => {
    const text = `server: { body_limit: 256kb, listen: 8080 }
tokens:
  issuers:
    - { issuer: a, audience: [x, y], jwks: { keys: [${JSON.stringify(DEMO_PUBLIC_JWK)}] } }
    - { issuer: b, audience: x, jwks_file: keys/jwks.json, algorithms: [PS256] }
bundle: { source: "http://bundles.local/b.tar.gz" }
`;
    const c = parseConfig(text, "c.yaml", "/srv");
    expect(c.server).toMatchObject({ host: "127.0.0.1", port: 8080, bodyLimitBytes: 256 * 1024 });
    expect(c.tokens.issuers[0]!.jwks).toEqual({ kind: "inline", jwks: { keys: [DEMO_PUBLIC_JWK] } });
    expect(c.tokens.issuers[1]!.jwks).toEqual({ kind: "file", path: "/srv/keys/jwks.json" });
    expect(c.bundle.source).toEqual({ kind: "url", url: "http://bundles.local/b.tar.gz" });
  });
});
