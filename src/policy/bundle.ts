/**
 * Reads an OPA bundle (`opa build -t wasm` output): a .tar.gz or an extracted directory holding
 * `policy.wasm`, `data.json` and `.manifest`. Only those files are used; the others are kept in
 * `files` for signature verification.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { SmartAuthzError } from "../core/errors.js";

export interface BundleManifest {
  revision?: string;
  roots?: string[];
  wasm?: { entrypoint: string; module: string }[];
  [key: string]: unknown;
}

export interface PolicyBundle {
  wasm: Uint8Array;
  data: Record<string, unknown>;
  manifest: BundleManifest;
  /** Every file of the bundle by its path inside the archive (leading "/" removed), for signature checks. */
  files: Map<string, Uint8Array>;
  /** sha256 of the wasm module: identifies the compiled policy independently of the revision string. */
  wasmSha256: string;
}

const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

export function readBundle(path: string): PolicyBundle {
  if (!existsSync(path)) throw new SmartAuthzError("BUNDLE_INVALID", `bundle not found: ${path}`);
  const files = statSync(path).isDirectory()
    ? readDirectoryBundle(path)
    : untar(gunzip(readFileSync(path), path));
  return bundleFromFiles(files, path);
}

export function readBundleBytes(archive: Uint8Array, origin: string): PolicyBundle {
  return bundleFromFiles(untar(gunzip(archive, origin)), origin);
}

function gunzip(bytes: Uint8Array, origin: string): Uint8Array {
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_BUNDLE_BYTES });
  } catch (err) {
    throw new SmartAuthzError("BUNDLE_INVALID", `${origin}: not a gzip archive (${(err as Error).message})`);
  }
}

/** Every regular file under `dir` (as an extracted tar would hold them), for signature checks. */
function readDirectoryBundle(
  dir: string,
  prefix = "",
  files = new Map<string, Uint8Array>(),
): Map<string, Uint8Array> {
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) readDirectoryBundle(dir, rel, files);
    else if (entry.isFile()) files.set(rel, readFileSync(join(dir, rel)));
  }
  return files;
}

/**
 * A strict ustar reader for OPA bundles: regular files and directories only. Every other entry
 * type (links, PAX or GNU extension headers, devices) is refused rather than skipped, and so are a
 * bad header checksum, a path that climbs out of the bundle and a file named twice.
 */
export function untar(tar: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = new TextDecoder();
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number) =>
      text.decode(header.subarray(start, start + len)).replace(/\0.*$/s, "");
    const name = field(0, 100);
    const corrupt = (why: string): never => {
      throw new SmartAuthzError("BUNDLE_INVALID", `corrupt tar entry ${JSON.stringify(name)}: ${why}`);
    };
    if (!checksumMatches(header, field(148, 8))) corrupt("header checksum mismatch");
    const prefix = field(345, 155);
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1);
    if (!Number.isFinite(size) || size < 0 || offset + 512 + size > tar.length) corrupt("truncated");
    const fullName = (prefix ? `${prefix}/${name}` : name).replace(/^\/+/, "");
    if (fullName.split("/").some((segment) => segment === "..")) corrupt("path leaves the bundle");
    if (type === "0" || type === "") {
      if (files.has(fullName)) corrupt("file appears twice");
      files.set(fullName, tar.slice(offset + 512, offset + 512 + size));
    } else if (type !== "5") {
      corrupt(`unsupported entry type ${JSON.stringify(type)} (only regular files and directories)`);
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** The ustar checksum: the sum of the header's bytes with the checksum field read as spaces. */
function checksumMatches(header: Uint8Array, stored: string): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return parseInt(stored.trim() || "-1", 8) === sum;
}

function bundleFromFiles(files: Map<string, Uint8Array>, origin: string): PolicyBundle {
  const wasm = files.get("policy.wasm");
  if (!wasm) throw new SmartAuthzError("BUNDLE_INVALID", `${origin}: bundle has no policy.wasm`);
  const data = parseJsonFile(files, "data.json", origin) ?? {};
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new SmartAuthzError("BUNDLE_INVALID", `${origin}: data.json must hold a JSON object`);
  }
  const manifest = (parseJsonFile(files, ".manifest", origin) ?? {}) as BundleManifest;
  return {
    wasm,
    data: data as Record<string, unknown>,
    manifest,
    files,
    wasmSha256: createHash("sha256").update(wasm).digest("hex"),
  };
}

function parseJsonFile(files: Map<string, Uint8Array>, name: string, origin: string): unknown {
  const bytes = files.get(name);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new SmartAuthzError(
      "BUNDLE_INVALID",
      `${origin}: ${name} is not valid JSON (${(err as Error).message})`,
    );
  }
}
