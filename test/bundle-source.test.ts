import { readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BundleSource } from "../src/policy/bundle-source.js";
import { BundleVerifier, canonicalJson } from "../src/policy/bundle-signature.js";
import type { BundleConfig, BundleVerificationConfig } from "../src/ops/config.js";
import { SmartAuthzError } from "../src/core/errors.js";
import { buildFixtureBundle, readTarGz, signBundleFiles, tempDir, writeTarGz } from "./helpers/fixtures.js";
import { BundleServer } from "./helpers/servers.js";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let keys: KeyPair;
let otherKeys: KeyPair;
let spki: string;
let opaSigned: string;

beforeAll(async () => {
  keys = await generateKeyPair("ES256", { extractable: true });
  otherKeys = await generateKeyPair("ES256", { extractable: true });
  spki = await exportSPKI(keys.publicKey);
  const dir = tempDir();
  const keyFile = join(dir, "signing.pem");
  writeFileSync(keyFile, await exportPKCS8(keys.privateKey));
  opaSigned = buildFixtureBundle("signed-1", { keyFile, alg: "ES256" });
});

const verification = (overrides: Partial<BundleVerificationConfig> = {}): BundleVerificationConfig => ({
  publicKey: spki,
  algorithm: "ES256",
  keyId: undefined,
  scope: undefined,
  ...overrides,
});

async function rejection(files: Map<string, Uint8Array>, v = verification()): Promise<string> {
  const verifier = await BundleVerifier.create(v);
  try {
    await verifier.verify(files, "test-bundle");
  } catch (err) {
    expect((err as SmartAuthzError).code).toBe("BUNDLE_SIGNATURE_INVALID");
    return (err as Error).message;
  }
  throw new Error("expected the bundle to be rejected");
}

describe("OPA bundle signatures", () => {
  it("accepts a bundle signed by the real `opa build --signing-key`", async () => {
    const verifier = await BundleVerifier.create(verification({ keyId: "default" }));
    await expect(verifier.verify(readTarGz(opaSigned), "opa-signed")).resolves.toBeUndefined();
  });

  it("accepts a bundle signed in OPA's format with jose, with a JWK as the key", async () => {
    const files = await signBundleFiles(readTarGz(buildFixtureBundle("plain-1")), keys.privateKey, "ES256", {
      kid: "k1",
    });
    const { exportJWK } = await import("jose");
    const jwk = JSON.stringify(await exportJWK(keys.publicKey));
    await expect(
      (await BundleVerifier.create(verification({ publicKey: jwk }))).verify(files, "x"),
    ).resolves.toBeUndefined();
  });

  it("detects a tampered file by its digest", async () => {
    const files = readTarGz(opaSigned);
    files.set("data.json", new TextEncoder().encode('{"config":{"marker":"tampered"}}'));
    expect(await rejection(files)).toMatch(
      /^test-bundle: file data\.json: digest mismatch \(signed [0-9a-f]{64}, actual [0-9a-f]{64}\)$/,
    );
  });

  it("hashes JSON files canonically, so whitespace and key order do not matter", async () => {
    const files = readTarGz(opaSigned);
    const manifest = JSON.parse(new TextDecoder().decode(files.get(".manifest"))) as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(manifest).reverse());
    files.set(".manifest", new TextEncoder().encode(JSON.stringify(reordered, null, 4)));
    await expect((await BundleVerifier.create(verification())).verify(files, "x")).resolves.toBeUndefined();
  });

  it("rejects a signature by another key, an unsigned bundle, extra and missing files, wrong kid and scope", async () => {
    const plain = readTarGz(buildFixtureBundle("plain-1"));
    expect(await rejection(await signBundleFiles(plain, otherKeys.privateKey, "ES256"))).toMatch(
      /^test-bundle: the bundle signature does not verify with the configured key/,
    );
    expect(await rejection(plain)).toBe(
      "test-bundle: bundle is not signed (no .signatures.json) but signature verification is configured",
    );
    const extra = await signBundleFiles(plain, keys.privateKey, "ES256");
    extra.set("extra.rego", new TextEncoder().encode("package x"));
    expect(await rejection(extra)).toBe(
      "test-bundle: file extra.rego is not included in the bundle signature",
    );
    const missing = await signBundleFiles(plain, keys.privateKey, "ES256");
    missing.delete("data.json");
    expect(await rejection(missing)).toBe(
      "test-bundle: file(s) data.json are signed but missing from the bundle",
    );
    expect(
      await rejection(
        await signBundleFiles(plain, keys.privateKey, "ES256", { kid: "other" }),
        verification({ keyId: "prod" }),
      ),
    ).toBe('test-bundle: the bundle was signed with key id "other"; the configured key is "prod"');
    expect(await rejection(await signBundleFiles(plain, keys.privateKey, "ES256", { scope: "write" }))).toBe(
      'test-bundle: signature scope "write" does not match the configured scope ""',
    );
    const twoSigs = new Map(plain);
    twoSigs.set(".signatures.json", new TextEncoder().encode('{"signatures":["a.b.c","d.e.f"]}'));
    expect(await rejection(twoSigs)).toBe(
      'test-bundle: .signatures.json must hold exactly one JWS in "signatures"',
    );
  });

  it("refuses an unusable verification key at start", async () => {
    await expect(BundleVerifier.create(verification({ publicKey: "not a key" }))).rejects.toThrow(
      "bundle.verification: the public key must be a PEM public key (BEGIN PUBLIC KEY), a PEM certificate or a JWK",
    );
    await expect(BundleVerifier.create(verification({ algorithm: "RS256" }))).rejects.toThrow(
      /^bundle.verification: cannot import the public key for RS256/,
    );
  });

  it("writes canonical JSON the way OPA hashes it", () => {
    expect(canonicalJson('{ "b": 1.50, "a": [true, null, "x\\u2028<&>"], "\\u00e9": {} }')).toBe(
      '{"a":[true,null,"x\\u2028<&>"],"b":1.50,"é":{}}',
    );
    expect(() => canonicalJson("{]")).toThrow();
  });
});

describe("bundle source", () => {
  const fileConfig = (path: string, verificationConfig?: BundleVerificationConfig): BundleConfig => ({
    source: { kind: "file", path },
    pollIntervalMs: 0,
    timeoutMs: 2000,
    bearerToken: undefined,
    verification: verificationConfig,
  });

  it("hot-reloads a changed bundle file and keeps the last good one when the new one is bad", async () => {
    const dir = tempDir();
    const path = join(dir, "bundle.tar.gz");
    writeFileSync(path, readFileSync(buildFixtureBundle("file-1")));
    const source = new BundleSource(fileConfig(path), { audit: { observer: "m" } });
    const events: string[] = [];
    source.on({
      activated: (e) => events.push(`activated ${e.revision}`),
      failed: (e, kept) => events.push(`failed ${e.code} kept ${kept}`),
    });
    await source.start();
    expect(source.current?.revision).toBe("file-1");
    expect(await source.reload(false)).toBe(false);

    writeFileSync(path, readFileSync(buildFixtureBundle("file-2")));
    expect(await source.reload(false)).toBe(true);
    expect(source.current?.revision).toBe("file-2");

    writeFileSync(path, "this is not a gzip archive");
    expect(await source.reload(false)).toBe(false);
    expect(source.current?.revision).toBe("file-2");
    expect(source.status).toMatchObject({ revision: "file-2", activations: 2, failures: 1 });
    expect(source.status.lastError).toMatch(/not a gzip archive/);
    expect(events).toEqual(["activated file-1", "activated file-2", "failed BUNDLE_INVALID kept file-2"]);

    const noWasm = new Map(readTarGz(buildFixtureBundle("file-3")));
    noWasm.set("policy.wasm", new TextEncoder().encode("\0asm garbage"));
    writeFileSync(path, writeTarGz(noWasm));
    expect(await source.reload(false)).toBe(false);
    expect(source.status.lastError).toMatch(/policy.wasm is not a valid WebAssembly module/);
    expect(source.current?.revision).toBe("file-2");
    expect(
      source.current?.decide({
        claims: { scope: "patient/x" },
        request: { method: "GET", url: "Observation" },
      }),
    ).toMatchObject({
      decision: "allow",
      config_marker: "m",
    });
  });

  it("does not try a rejected bundle file again on every poll, only once it changes (H-3)", async () => {
    const dir = tempDir();
    const path = join(dir, "bundle.tar.gz");
    writeFileSync(path, readFileSync(buildFixtureBundle("file-1")));
    const source = new BundleSource(fileConfig(path), {});
    let unchanged = 0;
    source.on({ unchanged: () => unchanged++ });
    await source.start();
    const bad = new Map(readTarGz(buildFixtureBundle("file-3")));
    bad.set("policy.wasm", new TextEncoder().encode("\0asm garbage"));
    const badBytes = writeTarGz(bad);
    writeFileSync(path, badBytes);
    expect(await source.reload(false)).toBe(false);
    expect(source.status.failures).toBe(1);
    const lastErrorAt = source.status.lastErrorAt;

    // Polls skip it: same file, and the same bytes written again (new mtime).
    expect(await source.reload(false)).toBe(false);
    writeFileSync(path, badBytes);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(await source.reload(false)).toBe(false);
    expect(await source.reload(false)).toBe(false);
    expect(source.status).toMatchObject({ failures: 1, lastErrorAt, revision: "file-1" });
    expect(unchanged).toBe(3);

    // A different bad file is tried (and rejected); SIGHUP (force) always tries again.
    writeFileSync(path, Buffer.concat([badBytes, Buffer.from([0])]));
    expect(await source.reload(false)).toBe(false);
    expect(source.status.failures).toBe(2);
    expect(await source.reload(true)).toBe(false);
    expect(source.status.failures).toBe(3);

    // A good one is activated, and a bad one after it is rejected again.
    writeFileSync(path, readFileSync(buildFixtureBundle("file-2")));
    expect(await source.reload(false)).toBe(true);
    expect(source.current?.revision).toBe("file-2");
    writeFileSync(path, badBytes);
    expect(await source.reload(false)).toBe(false);
    expect(source.status.failures).toBe(4);
  });

  it("refuses a tampered signed bundle on reload and keeps serving the verified one", async () => {
    const dir = tempDir();
    const path = join(dir, "bundle.tar.gz");
    writeFileSync(path, readFileSync(opaSigned));
    const source = new BundleSource(fileConfig(path, verification()), {});
    await source.start();
    expect(source.current?.revision).toBe("signed-1");
    const files = readTarGz(opaSigned);
    files.set(".manifest", new TextEncoder().encode('{"revision":"evil","roots":[""]}'));
    writeFileSync(path, writeTarGz(files));
    expect(await source.reload()).toBe(false);
    expect(source.current?.revision).toBe("signed-1");
    expect(source.status.lastError).toMatch(/file \.manifest: digest mismatch/);
  });

  it("does not activate anything when the first bundle is bad", async () => {
    const source = new BundleSource(fileConfig("/nonexistent/bundle.tar.gz"), {});
    await source.start();
    expect(source.current).toBeUndefined();
    expect(source.status.lastError).toBe("bundle not found: /nonexistent/bundle.tar.gz");
  });

  describe("over HTTP", () => {
    let server: BundleServer;
    beforeAll(async () => {
      server = await BundleServer.start();
    });
    afterAll(async () => {
      await server.close();
    });

    it("polls with ETags, sends the bearer token, activates new revisions and survives a bad one", async () => {
      server.requiredToken = "bundle-secret";
      server.publish(readFileSync(buildFixtureBundle("http-1")));
      const source = new BundleSource(
        {
          source: { kind: "url", url: server.url },
          pollIntervalMs: 0,
          timeoutMs: 2000,
          bearerToken: "bundle-secret",
          verification: undefined,
        },
        {},
      );
      await source.start();
      expect(source.current?.revision).toBe("http-1");
      expect(server.requests.at(-1)).toEqual({ etag: undefined, status: 200, auth: "Bearer bundle-secret" });
      const etag = source.status.etag;
      expect(etag).toMatch(/^"[0-9a-f]{16}"$/);

      expect(await source.reload(false)).toBe(false);
      expect(server.requests.at(-1)).toMatchObject({ etag, status: 304 });

      server.publish(readFileSync(buildFixtureBundle("http-2")));
      expect(await source.reload(false)).toBe(true);
      expect(source.current?.revision).toBe("http-2");

      server.publish(new TextEncoder().encode("garbage"));
      expect(await source.reload(false)).toBe(false);
      expect(source.current?.revision).toBe("http-2");
      // The same rejected download is not tried again on the next poll (H-3).
      const failures = source.status.failures;
      expect(await source.reload(false)).toBe(false);
      expect(source.status.failures).toBe(failures);

      server.requiredToken = "rotated";
      expect(await source.reload(true)).toBe(false);
      expect(source.status.lastError).toBe(`bundle server ${server.url} answered HTTP 401`);
      expect(source.current?.revision).toBe("http-2");
      server.requiredToken = undefined;
    });

    it("polls on its own at the configured interval", async () => {
      server.publish(readFileSync(buildFixtureBundle("poll-1")));
      const source = new BundleSource(
        {
          source: { kind: "url", url: server.url },
          pollIntervalMs: 50,
          timeoutMs: 2000,
          bearerToken: undefined,
          verification: undefined,
        },
        {},
      );
      await source.start();
      server.publish(readFileSync(buildFixtureBundle("poll-2")));
      await expect.poll(() => source.current?.revision, { timeout: 3000 }).toBe("poll-2");
      source.stop();
    });
  });
});
