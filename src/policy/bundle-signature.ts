/**
 * OPA bundle signatures: `.signatures.json` verified the way OPA does it, with the JSON files hashed
 * in OPA's canonical form. Used by the bundle source and by `check-config`.
 */
import { createHash } from "node:crypto";
import {
  compactVerify,
  decodeProtectedHeader,
  importJWK,
  importSPKI,
  importX509,
  type CryptoKey as JoseKey,
} from "jose";
import { parse as parseYaml } from "yaml";
import { SmartAuthzError, describeError } from "../core/errors.js";
import type { BundleVerificationConfig } from "../ops/config.js";

export const SIGNATURES_FILE = ".signatures.json";

interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

const HASHES: Record<string, string> = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

/**
 * Verifies `.signatures.json` the way OPA does: exactly one JWS whose payload lists every file of
 * the bundle with its digest; JSON files (data.json, .manifest, data.yaml) are hashed in OPA's
 * canonical form (keys sorted, no whitespace), other files byte for byte.
 */
export class BundleVerifier {
  private constructor(
    private readonly key: JoseKey | Uint8Array,
    private readonly config: BundleVerificationConfig,
  ) {}

  static async create(config: BundleVerificationConfig): Promise<BundleVerifier> {
    return new BundleVerifier(await importVerificationKey(config.publicKey, config.algorithm), config);
  }

  async verify(files: Map<string, Uint8Array>, origin: string): Promise<void> {
    await this.verifiedSigner(files, origin);
  }

  /** Verifies like `verify` and says what signed it: the key id the signature names (if any) and its scope. */
  async verifiedSigner(
    files: Map<string, Uint8Array>,
    origin: string,
  ): Promise<{ keyId: string | undefined; scope: string }> {
    const fail = (message: string): never => {
      throw new SmartAuthzError("BUNDLE_SIGNATURE_INVALID", `${origin}: ${message}`);
    };
    const raw = files.get(SIGNATURES_FILE);
    if (!raw)
      return fail(`bundle is not signed (no ${SIGNATURES_FILE}) but signature verification is configured`);
    let doc: unknown;
    try {
      doc = JSON.parse(new TextDecoder().decode(raw));
    } catch (err) {
      return fail(`${SIGNATURES_FILE} is not valid JSON (${(err as Error).message})`);
    }
    const signatures = (doc as { signatures?: unknown } | null)?.signatures;
    if (!Array.isArray(signatures) || signatures.length !== 1 || typeof signatures[0] !== "string") {
      return fail(`${SIGNATURES_FILE} must hold exactly one JWS in "signatures"`);
    }
    const jws = signatures[0];
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(jws);
    } catch {
      return fail(`${SIGNATURES_FILE}: the signature is not a compact JWS`);
    }
    let payloadBytes: Uint8Array;
    try {
      payloadBytes = (await compactVerify(jws, this.key, { algorithms: [this.config.algorithm] })).payload;
    } catch (err) {
      return fail(`the bundle signature does not verify with the configured key (${describeError(err)})`);
    }
    let payload: { files?: unknown; keyid?: unknown; scope?: unknown };
    try {
      payload = JSON.parse(new TextDecoder().decode(payloadBytes)) as typeof payload;
    } catch {
      return fail("the signature payload is not JSON");
    }
    const kid =
      typeof header.kid === "string"
        ? header.kid
        : typeof payload.keyid === "string"
          ? payload.keyid
          : undefined;
    if (this.config.keyId !== undefined && kid !== undefined && kid !== this.config.keyId) {
      fail(
        `the bundle was signed with key id ${JSON.stringify(kid)}; the configured key is ${JSON.stringify(this.config.keyId)}`,
      );
    }
    const scope = typeof payload.scope === "string" ? payload.scope : "";
    if (scope !== (this.config.scope ?? "")) {
      fail(
        `signature scope ${JSON.stringify(scope)} does not match the configured scope ${JSON.stringify(this.config.scope ?? "")}`,
      );
    }
    if (!Array.isArray(payload.files)) return fail('the signature payload has no "files" list');
    const signed = new Map<string, SignedFile>();
    for (const f of payload.files as unknown[]) {
      const file = f as Partial<SignedFile> | null;
      if (
        !file ||
        typeof file.name !== "string" ||
        typeof file.hash !== "string" ||
        typeof file.algorithm !== "string"
      ) {
        return fail("the signature payload lists a file without name, hash and algorithm");
      }
      signed.set(file.name.replace(/^\/+/, ""), file as SignedFile);
    }
    for (const [name, bytes] of files) {
      if (name === SIGNATURES_FILE) continue;
      const entry = signed.get(name);
      if (!entry) fail(`file ${name} is not included in the bundle signature`);
      const algorithm = HASHES[entry!.algorithm];
      if (!algorithm) fail(`file ${name}: unsupported hash algorithm ${JSON.stringify(entry!.algorithm)}`);
      const digest = hashFile(name, bytes, algorithm!);
      if (digest !== entry!.hash.toLowerCase()) {
        fail(`file ${name}: digest mismatch (signed ${entry!.hash}, actual ${digest})`);
      }
      signed.delete(name);
    }
    if (signed.size > 0)
      fail(`file(s) ${[...signed.keys()].join(", ")} are signed but missing from the bundle`);
    return { keyId: kid, scope };
  }
}

async function importVerificationKey(text: string, alg: string): Promise<JoseKey | Uint8Array> {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith("{")) return await importJWK(JSON.parse(trimmed) as Record<string, unknown>, alg);
    if (trimmed.includes("BEGIN CERTIFICATE")) return await importX509(trimmed, alg);
    if (trimmed.includes("BEGIN PUBLIC KEY")) return await importSPKI(trimmed, alg);
  } catch (err) {
    throw new SmartAuthzError(
      "CONFIG_INVALID",
      `bundle.verification: cannot import the public key for ${alg}: ${describeError(err)}`,
    );
  }
  throw new SmartAuthzError(
    "CONFIG_INVALID",
    "bundle.verification: the public key must be a PEM public key (BEGIN PUBLIC KEY), a PEM certificate or a JWK",
  );
}

function isStructured(name: string): boolean {
  const base = name.slice(name.lastIndexOf("/") + 1);
  return base === "data.json" || base === "data.yaml" || base === ".manifest" || base === SIGNATURES_FILE;
}

function hashFile(name: string, bytes: Uint8Array, algorithm: string): string {
  const h = createHash(algorithm);
  if (!isStructured(name)) return h.update(bytes).digest("hex");
  const text = new TextDecoder().decode(bytes);
  let canonical: string;
  try {
    canonical = name.endsWith(".yaml") ? canonicalFromValue(parseYaml(text) as unknown) : canonicalJson(text);
  } catch (err) {
    throw new SmartAuthzError(
      "BUNDLE_SIGNATURE_INVALID",
      `file ${name}: cannot parse for hashing (${describeError(err)})`,
    );
  }
  return h.update(canonical, "utf8").digest("hex");
}

// OPA hashes structured files over a canonical encoding: objects with keys in byte order, no
// whitespace, numbers exactly as written, strings as Go's encoding/json writes them (HTML escaping off).

/** Canonical form of JSON text, keeping every number's original spelling. */
export function canonicalJson(text: string): string {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t"))
      i++;
  };
  const value = (): string => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const members = new Map<string, string>();
      ws();
      if (text[i] === "}") {
        i++;
        return "{}";
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new Error(`expected a key at offset ${i}`);
        const key = str();
        ws();
        if (text[i++] !== ":") throw new Error(`expected ":" at offset ${i - 1}`);
        members.set(key, value());
        ws();
        const sep = text[i++];
        if (sep === "}") break;
        if (sep !== ",") throw new Error(`expected "," or "}" at offset ${i - 1}`);
      }
      return `{${sortKeys([...members.keys()])
        .map((k) => `${goString(k)}:${members.get(k)}`)
        .join(",")}}`;
    }
    if (c === "[") {
      i++;
      const items: string[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return "[]";
      }
      for (;;) {
        items.push(value());
        ws();
        const sep = text[i++];
        if (sep === "]") break;
        if (sep !== ",") throw new Error(`expected "," or "]" at offset ${i - 1}`);
      }
      return `[${items.join(",")}]`;
    }
    if (c === '"') return goString(str());
    for (const lit of ["true", "false", "null"]) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return lit;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) throw new Error(`unexpected character at offset ${i}`);
    i += m[0].length;
    return m[0];
  };
  const str = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) throw new Error(`unterminated string at offset ${start}`);
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const out = value();
  ws();
  if (i !== text.length) throw new Error(`trailing content at offset ${i}`);
  return out;
}

function canonicalFromValue(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return goString(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(canonicalFromValue).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${sortKeys(Object.keys(o))
    .map((k) => `${goString(k)}:${canonicalFromValue(o[k])}`)
    .join(",")}}`;
}

function sortKeys(keys: string[]): string[] {
  return keys.sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

/** A string as Go's encoding/json writes it with SetEscapeHTML(false). */
function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (code < 0x20) out += `\\u00${code.toString(16).padStart(2, "0")}`;
    else if (code === 0x2028 || code === 0x2029) out += `\\u${code.toString(16)}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += "\ufffd";
    else out += ch;
  }
  return `${out}"`;
}
