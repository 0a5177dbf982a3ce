/**
 * Test fixtures for the sidecar: the tiny fixture policy built with the real OPA binary (cached
 * per content), tar.gz reading/writing for tampering, OPA-format bundle signing with jose, and a
 * log sink. Nothing here depends on the real policy's semantics.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import { CompactSign, type CryptoKey as JoseKey } from "jose";
import { untar } from "../../src/policy/bundle.js";
import { canonicalJson } from "../../src/policy/bundle-signature.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURE_POLICY = join(REPO, "test/fixtures/policy");

/** The OPA binary: $OPA, the Makefile's .tools/bin/opa, or `opa` on PATH. */
export function opaBinary(): string {
  const candidates = [process.env.OPA, join(REPO, ".tools/bin/opa")].filter((p): p is string => !!p);
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    execFileSync("opa", ["version"], { stdio: "ignore" });
    return "opa";
  } catch {
    throw new Error("the OPA binary is needed to build test bundles: run `make tools` or set $OPA");
  }
}

const CACHE = join(tmpdir(), "smart-authz-test-bundles");

/**
 * Builds the fixture policy into a wasm bundle with the given revision (cached by content), and
 * optionally signs it with `opa build --signing-key` (a PEM file path).
 */
export function buildFixtureBundle(revision: string, signing?: { keyFile: string; alg: string }): string {
  const rego = readdirSync(FIXTURE_POLICY)
    .sort()
    .map((f) => readFileSync(join(FIXTURE_POLICY, f), "utf8"))
    .join("\n");
  const signingId = signing ? readFileSync(signing.keyFile, "utf8") + signing.alg : "";
  const key = createHash("sha256").update(`${rego}\n${revision}\n${signingId}`).digest("hex").slice(0, 16);
  const out = join(CACHE, `${key}.tar.gz`);
  if (existsSync(out)) return out;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  const args = [
    "build",
    "-b",
    "-t",
    "wasm",
    "-e",
    "smart/api/decision",
    "-e",
    "smart/api/scopes",
    "--revision",
    revision,
  ];
  if (signing) args.push("--signing-key", signing.keyFile, "--signing-alg", signing.alg);
  execFileSync(opaBinary(), [...args, "-o", tmp, "."], { cwd: FIXTURE_POLICY, stdio: "pipe" });
  renameSync(tmp, out);
  return out;
}

export function readTarGz(path: string | Uint8Array): Map<string, Uint8Array> {
  const bytes = typeof path === "string" ? readFileSync(path) : path;
  return untar(gunzipSync(bytes));
}

/** A ustar archive of `files`, gzipped: enough for OPA bundles. */
export function writeTarGz(files: Map<string, Uint8Array>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of files) {
    const header = Buffer.alloc(512);
    header.write(`/${name}`, 0, 100, "utf8");
    header.write("0000644\0", 100);
    header.write("0000000\0", 108);
    header.write("0000000\0", 116);
    header.write(`${content.length.toString(8).padStart(11, "0")}\0`, 124);
    header.write("00000000000\0", 136);
    header.write("        ", 148);
    header.write("0", 156);
    header.write("ustar\0", 257);
    header.write("00", 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(header, Buffer.from(content));
    const pad = (512 - (content.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/** OPA's digest of a bundle file: canonical JSON for data.json/.manifest, raw bytes otherwise. */
export function opaFileHash(name: string, bytes: Uint8Array): string {
  const structured = /(^|\/)(data\.json|\.manifest)$/.test(name);
  const h = createHash("sha256");
  return structured
    ? h.update(canonicalJson(new TextDecoder().decode(bytes))).digest("hex")
    : h.update(bytes).digest("hex");
}

/** Signs `files` the way `opa sign` does and returns a copy with `.signatures.json`. */
export async function signBundleFiles(
  files: Map<string, Uint8Array>,
  key: JoseKey,
  alg: string,
  options: { kid?: string; scope?: string; omit?: string[] } = {},
): Promise<Map<string, Uint8Array>> {
  const listed = [...files]
    .filter(([name]) => name !== ".signatures.json" && !(options.omit ?? []).includes(name))
    .map(([name, bytes]) => ({ name, hash: opaFileHash(name, bytes), algorithm: "SHA-256" }));
  const payload: Record<string, unknown> = { files: listed };
  if (options.kid) payload.keyid = options.kid;
  if (options.scope) payload.scope = options.scope;
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg, ...(options.kid ? { kid: options.kid } : {}), typ: "JWT" })
    .sign(key);
  const out = new Map(files);
  out.set(".signatures.json", new TextEncoder().encode(JSON.stringify({ signatures: [jws] })));
  return out;
}

export function tempDir(prefix = "smart-authz-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeFile(dir: string, name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** A pino destination that keeps every log line as parsed JSON. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    cb();
  }
  find(msg: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l.msg === msg);
  }
}
