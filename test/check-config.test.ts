/**
 * `smart-authz check-config`: it passes only what `serve` could load, and says exactly what it
 * checked: a bundle that is missing, not a bundle, unsigned or signed by another key fails; a
 * signature is "verified" only when it was; a URL source is "not fetched" unless --fetch asks.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { main, type CliIO } from "../src/cli.js";
import {
  buildFixtureBundle,
  readTarGz,
  signBundleFiles,
  tempDir,
  writeFile,
  writeTarGz,
} from "./helpers/fixtures.js";
import { BundleServer } from "./helpers/servers.js";
import {
  DEMO_PUBLIC_JWK,
  DEMO_TEST_ISSUER,
  serviceConfigYaml,
  type ServiceConfigSpec,
} from "./helpers/service-config.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function checkConfig(file: string, ...flags: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stdin: () => "", env: {} };
  const code = await main(["check-config", file, ...flags], io);
  return { code, stdout, stderr };
}

let dir: string;
let unsigned: string;
let signed: string;
let publicPem: string;
let otherPem: string;

function config(name: string, spec: Partial<ServiceConfigSpec>): string {
  return writeFile(dir, name, serviceConfigYaml({ bundle: unsigned, ...spec }));
}

beforeAll(async () => {
  dir = tempDir();
  unsigned = buildFixtureBundle("check-1");
  const keys = await generateKeyPair("ES256", { extractable: true });
  publicPem = await exportSPKI(keys.publicKey);
  otherPem = await exportSPKI((await generateKeyPair("ES256", { extractable: true })).publicKey);
  const keyFile = writeFile(dir, "signing.pem", await exportPKCS8(keys.privateKey));
  signed = buildFixtureBundle("check-signed-1", { keyFile, alg: "ES256" });
  writeFile(dir, "bundle-signing.pub.pem", publicPem);
  writeFile(dir, "other.pub.pem", otherPem);
});

describe("check-config and the bundle", () => {
  it("loads a bundle file and says no signature was checked when none is configured", async () => {
    const r = await checkConfig(config("plain.yaml", {}));
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toContain(`plain.yaml: OK\n`);
    expect(r.stdout).toContain(`  bundle: ${unsigned} (revision check-1), signature: not configured\n`);
    expect(r.stdout).not.toMatch(/verified/);
  });

  it("fails when the bundle does not exist or is not a bundle", async () => {
    const missing = await checkConfig(config("missing.yaml", { bundle: "./nope.tar.gz" }));
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/^.*missing\.yaml: FAILED \(1 problem\)\n/);
    expect(missing.stderr).toBe(
      `smart-authz: bundle: ${join(dir, "nope.tar.gz")}: bundle not found: ${join(dir, "nope.tar.gz")}\n`,
    );
    writeFile(dir, "garbage.tar.gz", "this is not a gzip archive");
    const garbage = await checkConfig(config("garbage.yaml", { bundle: "./garbage.tar.gz" }));
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toMatch(/not a gzip archive/);
    const noWasm = new Map(readTarGz(unsigned));
    noWasm.set("policy.wasm", new TextEncoder().encode("\0asm garbage"));
    writeFileSync(join(dir, "nowasm.tar.gz"), writeTarGz(noWasm));
    const bad = await checkConfig(config("nowasm.yaml", { bundle: "./nowasm.tar.gz" }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/policy\.wasm is not a valid WebAssembly module/);
  });

  it("verifies the signature when verification is configured, and says with which key", async () => {
    const verification = { public_key_file: "bundle-signing.pub.pem", algorithm: "ES256" };
    const ok = await checkConfig(config("signed.yaml", { bundle: signed, bundleOptions: { verification } }));
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    expect(ok.stdout).toMatch(
      new RegExp(
        `  bundle: ${signed} \\(revision check-signed-1\\), signature: verified \\(ES256, key id \\S+\\)\\n`,
      ),
    );
  });

  it("never claims a signature it did not verify: unsigned, another key, another key id", async () => {
    const unsignedRun = await checkConfig(
      config("unsigned.yaml", {
        bundleOptions: { verification: { public_key_file: "bundle-signing.pub.pem", algorithm: "ES256" } },
      }),
    );
    expect(unsignedRun.code).toBe(1);
    expect(unsignedRun.stdout).not.toMatch(/verified \(/);
    expect(unsignedRun.stderr).toContain(
      "bundle is not signed (no .signatures.json) but signature verification is configured",
    );
    const other = await checkConfig(
      config("other.yaml", {
        bundle: signed,
        bundleOptions: { verification: { public_key_file: "other.pub.pem", algorithm: "ES256" } },
      }),
    );
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("the bundle signature does not verify with the configured key");
    const keyId = await checkConfig(
      config("kid.yaml", {
        bundle: signed,
        bundleOptions: {
          verification: { public_key_file: "bundle-signing.pub.pem", algorithm: "ES256", key_id: "prod-9" },
        },
      }),
    );
    expect(keyId.code).toBe(1);
    expect(keyId.stderr).toMatch(/the configured key is "prod-9"/);
  });

  it("notes a signed bundle whose signature nothing checks", async () => {
    const r = await checkConfig(config("signed-unchecked.yaml", { bundle: signed }));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "signature: not configured (the bundle carries .signatures.json; nothing checks it)",
    );
  });
});

describe("check-config and URL sources", () => {
  let server: BundleServer;

  beforeAll(async () => {
    server = await BundleServer.start();
    const keys = await generateKeyPair("ES256", { extractable: true });
    const files = await signBundleFiles(readTarGz(unsigned), keys.privateKey, "ES256", { kid: "prod-1" });
    server.publish(writeTarGz(files));
    writeFile(dir, "url-signing.pub.pem", await exportSPKI(keys.publicKey));
  });

  afterAll(() => server.close());

  it("does not fetch a URL bundle unless asked, and says so", async () => {
    const file = config("url.yaml", {
      bundle: server.url,
      bundleOptions: { verification: { public_key_file: "url-signing.pub.pem", algorithm: "ES256" } },
    });
    const r = await checkConfig(file);
    expect(r.code).toBe(0);
    expect(server.requests).toEqual([]);
    expect(r.stdout).toContain("url.yaml: OK, except 1 URL source not fetched (--fetch checks them too)\n");
    expect(r.stdout).toContain(
      `  bundle: ${server.url}: not fetched, signature: configured (ES256), not checked\n`,
    );

    const fetched = await checkConfig(file, "--fetch");
    expect(fetched).toMatchObject({ code: 0, stderr: "" });
    expect(server.requests).toHaveLength(1);
    expect(fetched.stdout).toContain("url.yaml: OK\n");
    expect(fetched.stdout).toContain(
      `  bundle: ${server.url} (revision check-1), signature: verified (ES256, key id prod-1)\n`,
    );
  });

  it("fails a fetched bundle the server does not serve", async () => {
    const r = await checkConfig(config("url404.yaml", { bundle: `${server.url}.missing` }), "--fetch");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/answered HTTP 404/);
  });
});

describe("check-config and data documents and key files", () => {
  it("validates data documents that are files with their schema, and fails an invalid one", async () => {
    writeFile(
      dir,
      "relationships.json",
      JSON.stringify({ users: { "Practitioner/1": { patients: ["123"] } } }),
    );
    writeFile(
      dir,
      "clients.json",
      JSON.stringify({ clients: { app: { scopes: ["patient/*.rs"], trust: true } } }),
    );
    const r = await checkConfig(
      config("data.yaml", {
        data: {
          relationships: { source: "relationships.json" },
          clients: { source: "clients.json" },
        },
      }),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `  data.relationships: ${join(dir, "relationships.json")}: valid (schemas/data/relationships.schema.json)\n`,
    );
    expect(r.stderr).toMatch(
      /^smart-authz: data\.clients: .*clients\.json: clients document from .* does not match schemas\/data\/clients\.schema\.json: \/clients\/app must NOT have additional properties/,
    );
  });

  it("reads JWKS files and refuses one without usable public keys", async () => {
    writeFile(dir, "jwks.json", JSON.stringify({ keys: [DEMO_PUBLIC_JWK] }));
    writeFile(dir, "private-jwks.json", JSON.stringify({ keys: [{ ...DEMO_PUBLIC_JWK, d: "c2VjcmV0" }] }));
    const issuer = (jwks_file: string) => [{ issuer: "https://a.example", audience: "x", jwks_file }];
    const ok = await checkConfig(config("jwks.yaml", { issuers: issuer("jwks.json") }));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(
      `  issuer https://a.example (RS256, ES256): jwks_file ${join(dir, "jwks.json")}: 1 valid public key\n`,
    );
    const bad = await checkConfig(config("jwks-bad.yaml", { issuers: issuer("private-jwks.json") }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("keys[0] holds private key material (d); a config holds only public keys");
    const missing = await checkConfig(
      config("jwks-missing.yaml", { issuers: [DEMO_TEST_ISSUER, ...issuer("absent.json")] }),
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/jwks_file .*absent\.json: ENOENT/);
  });

  it("still refuses an invalid config with exit 2 and every problem", async () => {
    const r = await checkConfig(writeFile(dir, "invalid.yaml", "tokens: {}\nbundle: {}\n"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("tokens.issuers: required");
    expect(r.stderr).toContain("bundle.source: required");
  });
});
