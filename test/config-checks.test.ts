/**
 * What the config refuses beyond plain types: the policy section's typos, and the named checks of
 * src/ops/config-checks.ts. Each message names the field and sits at its line and column.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/ops/config.js";
import { SmartAuthzError } from "../src/core/errors.js";
import { tempDir, writeFile } from "./helpers/fixtures.js";
import { DEMO_PUBLIC_JWK } from "./helpers/service-config.js";

const BASE = `tokens:
  issuers:
    - issuer: https://issuer.example
      audience: https://fhir.example
      jwks_uri: https://issuer.example/jwks.json
bundle:
  source: ./bundle.tar.gz
`;

function problems(text: string, baseDir = "/etc/smart-authz"): string[] {
  try {
    parseConfig(text, "cfg.yaml", baseDir);
  } catch (err) {
    expect((err as SmartAuthzError).code).toBe("CONFIG_INVALID");
    const issues = (err as SmartAuthzError).details!.issues as {
      field: string;
      message: string;
      line?: number;
      col?: number;
    }[];
    return issues.map((i) => `${i.line}:${i.col} ${i.field}: ${i.message}`);
  }
  throw new Error("expected the config to be rejected");
}

const pem = (type: "ec" | "rsa" | "ed25519", options: Record<string, unknown> = {}) =>
  generateKeyPairSync(type as "ec", options as { namedCurve: string });

describe("the policy section", () => {
  it("refuses typos with a suggestion, and wrong values with what is allowed", () => {
    const text = `${BASE}policy:
  btg:
    eligibel:
      - { role: [er-physician] }
  labels:
    rights:
      - who: { roles: [psychiatrist] }
        confidentiality: X
  deny: { hidden_status: fourofour }
  search: { unknown_parameters: Deny }
  patient: { follow_patient_link: "no" }
`;
    expect(problems(text)).toEqual([
      '10:5 policy.btg.eligibel: unknown field; did you mean "eligible"?',
      "15:26 policy.labels.rights[0].confidentiality: must be one of U, L, M, N, R, V",
      '16:26 policy.deny.hidden_status: must be 403 or 404, got "fourofour"',
      '17:33 policy.search.unknown_parameters: must be "deny" or "allow", got "Deny"',
      '18:35 policy.patient.follow_patient_link: must be true or false, got "no"',
    ]);
  });

  it("checks selectors: known keys only, never empty", () => {
    const text = `${BASE}policy:
  btg:
    eligible:
      - { role: [er-physician] }
      - {}
`;
    expect(problems(text)).toEqual([
      '11:11 policy.btg.eligible[0].role: unknown field; did you mean "roles"?',
      "12:9 policy.btg.eligible[1]: must give at least one of client_ids, roles, users, fhir_user_types, scopes, claims",
    ]);
  });

  it("passes a valid section to the policy exactly as written", () => {
    const policy = `policy:
  btg:
    eligible: [{ roles: [er-physician] }]
    reason_min_length: 10
  operations:
    $export: { contexts: [system] }
`;
    const c = parseConfig(`${BASE}${policy}`, "cfg.yaml", "/x");
    expect(c.policy).toEqual({
      btg: { eligible: [{ roles: ["er-physician"] }], reason_min_length: 10 },
      operations: { $export: { contexts: ["system"] } },
    });
    expect(problems(`${BASE}policy:\n  operations:\n    export: { levels: [system] }\n`)).toEqual([
      '10:5 policy.operations.export: operation names start with "$", e.g. "$export"',
    ]);
  });

  it("refuses a shortest BTG reason longer than the longest", () => {
    expect(problems(`${BASE}policy:\n  btg: { reason_min_length: 600 }\n`)).toEqual([
      "9:29 policy.btg.reason_min_length: must not exceed reason_max_length (600 > 500): no reason could be accepted",
    ]);
  });

  it("treats an empty section (null) as absent", () => {
    const c = parseConfig(`${BASE}audit:\npolicy:\ngateway:\ndata:\n`, "cfg.yaml", "/x");
    expect(c.audit).toBeUndefined();
    expect(c.policy).toEqual({});
    expect(c.gateway.enforcing).toEqual([]);
    expect(c.data).toEqual({});
  });
});

describe("the semantic checks", () => {
  it("listen address and sizes", () => {
    const text = BASE.replace(
      "tokens:",
      "server:\n  listen: 70000\n  body_limit: 99999999999999999mb\ntokens:",
    );
    expect(problems(text)).toEqual([
      "2:11 server.listen: port 70000 is out of range (0-65535)",
      '3:15 server.body_limit: "99999999999999999mb" is too large',
    ]);
    expect(problems(BASE.replace("tokens:", "server: { body_limit: 0kb }\ntokens:"))).toEqual([
      '1:23 server.body_limit: must be a size such as 1048576, "512kb" or "1mb", got "0kb"',
    ]);
  });

  it("URL schemes of key, bundle and data sources and the OperationOutcome extension", () => {
    const text = `${BASE.replace("./bundle.tar.gz", "ftp://bundles.example/b.tar.gz").replace("https://issuer.example/jwks.json", "file:///etc/jwks.json")}data:
  clients: { source: "s3://bucket/clients.json" }
policy:
  outcome: { required_scope_extension_url: required-scope }
`;
    expect(problems(text)).toEqual([
      "5:17 tokens.issuers[0].jwks_uri: must be an http:// or https:// URL",
      '7:11 bundle.source: unsupported URL scheme "ftp:"; give an http(s):// URL or a file path',
      '9:22 data.clients.source: unsupported URL scheme "s3:"; give an http(s):// URL or a file path',
      "11:44 policy.outcome.required_scope_extension_url: must be an absolute URI, e.g. https://example.org/fhir/StructureDefinition/required-scope",
    ]);
  });

  it("bundle verification keys: one of two fields, public, readable, fit for the algorithm", () => {
    const dir = tempDir();
    const ec256 = pem("ec", { namedCurve: "P-256" });
    const ec384 = pem("ec", { namedCurve: "P-384" });
    const rsa1024 = pem("rsa", { modulusLength: 1024 });
    writeFile(dir, "ok.pem", ec256.publicKey.export({ type: "spki", format: "pem" }));
    writeFile(dir, "p384.pem", ec384.publicKey.export({ type: "spki", format: "pem" }));
    writeFile(dir, "rsa1024.pem", rsa1024.publicKey.export({ type: "spki", format: "pem" }));
    writeFile(dir, "private.pem", ec256.privateKey.export({ type: "pkcs8", format: "pem" }));
    const with_ = (v: string) => `${BASE}  verification: { ${v} }\n`;
    expect(
      parseConfig(with_("public_key_file: ok.pem, algorithm: ES256"), "c", dir).bundle.verification,
    ).toMatchObject({
      algorithm: "ES256",
      publicKey: expect.stringContaining("BEGIN PUBLIC KEY") as string,
    });
    expect(problems(with_("public_key_file: p384.pem, algorithm: ES256"), dir)).toEqual([
      `8:36 bundle.verification.public_key_file: ${dir}/p384.pem: the key is an EC P-384 key; ES256 needs an EC P-256 key`,
    ]);
    expect(problems(with_("public_key_file: rsa1024.pem, algorithm: RS256"), dir)).toEqual([
      `8:36 bundle.verification.public_key_file: ${dir}/rsa1024.pem: the RSA key has 1024 bits; RS256 needs at least 2048`,
    ]);
    expect(problems(with_("public_key_file: private.pem, algorithm: ES256"), dir)).toEqual([
      `8:36 bundle.verification.public_key_file: ${dir}/private.pem: is a PRIVATE key; give the public key (a private key never belongs in a config)`,
    ]);
    expect(problems(with_("public_key: x, public_key_file: ok.pem, algorithm: ES256"), dir)).toEqual([
      "8:17 bundle.verification: exactly one of public_key (PEM or JWK text) or public_key_file is required",
    ]);
    const jwk = JSON.stringify({ ...DEMO_PUBLIC_JWK, d: "c2VjcmV0" });
    expect(problems(with_(`public_key: '${jwk}', algorithm: ES256`), dir)).toEqual([
      "8:31 bundle.verification.public_key: holds private key material (d); a config holds only public keys",
    ]);
    expect(
      problems(with_(`public_key: '${JSON.stringify(DEMO_PUBLIC_JWK)}', algorithm: EdDSA`), dir),
    ).toEqual([
      "8:31 bundle.verification.public_key: the key is an EC P-256 key; EdDSA needs an Ed25519 or Ed448 key",
    ]);
  });

  it("inline JWKS: public keys only, complete for their type", () => {
    const text = (key: string) =>
      BASE.replace("jwks_uri: https://issuer.example/jwks.json", `jwks: { keys: [${key}] }`);
    expect(problems(text("{ kty: EC, crv: P-256, x: abc, y: def, d: ghi }"))).toEqual([
      "5:61 tokens.issuers[0].jwks.keys[0].d: private key material: a config holds only public keys",
    ]);
    expect(problems(text("{ kty: oct, k: c2VjcmV0 }"))).toEqual([
      "5:29 tokens.issuers[0].jwks.keys[0].kty: must be one of RSA, EC, OKP",
      "5:34 tokens.issuers[0].jwks.keys[0].k: private key material: a config holds only public keys",
    ]);
    expect(problems(text("{ kty: EC, x: abc }"))).toEqual([
      "5:22 tokens.issuers[0].jwks.keys[0].crv: required",
      "5:22 tokens.issuers[0].jwks.keys[0].y: required",
    ]);
    expect(problems(text("{ kty: EC, crv: P-256, x: abc, y: def }"))[0]).toMatch(
      /^5:22 tokens\.issuers\[0\]\.jwks\.keys\[0\]: is not a usable public JWK \(/,
    );
  });

  it("gateway key variables: never one the service reads, one gateway per name", () => {
    const text = `${BASE}gateway:
  enforcing:
    - { name: apigw, key_env: SMART_AUTHZ_BUNDLE_TOKEN }
    - { name: apigw, key_env: SMART_AUTHZ_DATA_CLIENTS_TOKEN }
`;
    expect(problems(text)).toEqual([
      "10:31 gateway.enforcing[0].key_env: SMART_AUTHZ_BUNDLE_TOKEN is a variable the service reads for something else; give the gateway key its own variable",
      '11:15 gateway.enforcing[1].name: duplicate gateway "apigw"',
      "11:31 gateway.enforcing[1].key_env: SMART_AUTHZ_DATA_CLIENTS_TOKEN is a variable the service reads for something else; give the gateway key its own variable",
    ]);
  });
});

describe("messages for the schema's special forms", () => {
  it("audience, sizes and operation names each get one message, at their node", () => {
    const text = `${BASE.replace("audience: https://fhir.example", "audience: { aud: x }")}server: { body_limit: [1] }
policy:
  operations: []
`;
    expect(problems(text)).toEqual([
      "4:17 tokens.issuers[0].audience: must be the audience (a string or a non-empty list of strings) your tokens carry in `aud`, got a mapping",
      '8:23 server.body_limit: must be a size such as 1048576, "512kb" or "1mb", got a list',
      "10:15 policy.operations: must be a mapping, got a list",
    ]);
  });
});
