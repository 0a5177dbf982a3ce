/**
 * The checks a JSON Schema cannot express, run after it on the same YAML document (each issue at
 * the node it concerns). They read the validated-and-defaulted object defensively: a field the
 * schema already refused is skipped, so every problem is reported once.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Issues, Path } from "./config-schema.js";

type Raw = Record<string, unknown>;

export interface CheckContext {
  /** Relative paths in the file resolve against this folder. */
  baseDir: string;
  /** Environment variables the service itself reads: no gateway key may live in one. */
  reservedEnv: readonly string[];
}

/** Runs every check; issues go to `issues`. */
export function checkSemantics(root: unknown, issues: Issues, context: CheckContext): void {
  const config = asObject(root);
  if (!config) return;
  listenAddress(config, issues);
  sizes(config, issues);
  requestTimeouts(config, issues);
  jwksSources(config, issues);
  uniqueIssuers(config, issues);
  inlineJwks(config, issues);
  urlSchemes(config, issues);
  verificationKey(config, issues, context.baseDir);
  gatewayKeyEnvs(config, issues, context.reservedEnv);
  btgReasonBounds(config, issues);
  proxySection(config, issues, context.reservedEnv);
}

// --- the checks ----------------------------------------------------------------------------

/** `server.listen`: "host:port", "[v6]:port" or a port, with the port in range. */
function listenAddress(config: Raw, issues: Issues): void {
  const listen = asObject(config.server)?.listen;
  if (typeof listen !== "string" && typeof listen !== "number") return;
  const parsed = parseListen(String(listen));
  if (typeof parsed === "string") issues.add(["server", "listen"], parsed);
}

/** Sizes (`body_limit`, `max_size`): the schema checks the spelling, this the magnitude. */
function sizes(config: Raw, issues: Issues): void {
  const at: [Path, unknown][] = [
    [["server", "body_limit"], asObject(config.server)?.body_limit],
    [["limits", "max_url_bytes"], asObject(config.limits)?.max_url_bytes],
  ];
  for (const [name, doc] of Object.entries(asObject(config.data) ?? {})) {
    at.push([["data", name, "max_size"], asObject(doc)?.max_size]);
  }
  for (const [path, value] of at) {
    if (value === undefined || issues.reported(path)) continue;
    const size = parseSize(value);
    if (typeof size === "string") issues.add(path, size);
  }
}

/** A request's headers are part of it: its timeout cannot be shorter than theirs. */
function requestTimeouts(config: Raw, issues: Issues): void {
  const server = asObject(config.server);
  const headers = server?.headers_timeout_seconds ?? 10;
  const request = server?.request_timeout_seconds;
  if (typeof request === "number" && typeof headers === "number" && request < headers) {
    issues.add(
      ["server", "request_timeout_seconds"],
      `must be at least headers_timeout_seconds (${headers}): the headers are part of the request`,
    );
  }
}

/** Each issuer names exactly one key source. */
function jwksSources(config: Raw, issues: Issues): void {
  issuers(config).forEach((issuer, i) => {
    const given = ["jwks_uri", "jwks_file", "jwks"].filter((k) => issuer[k] !== undefined);
    if (given.length === 1) return;
    issues.add(
      ["tokens", "issuers", i],
      `exactly one of jwks_uri, jwks_file or jwks is required${given.length ? ` (got ${given.join(", ")})` : ""}`,
    );
  });
}

/** No issuer is listed twice (which one's keys and audience would apply?). */
function uniqueIssuers(config: Raw, issues: Issues): void {
  const seen = new Set<string>();
  issuers(config).forEach((issuer, i) => {
    if (typeof issuer.issuer !== "string") return;
    if (seen.has(issuer.issuer)) {
      issues.add(["tokens", "issuers", i, "issuer"], `duplicate issuer ${JSON.stringify(issuer.issuer)}`);
    }
    seen.add(issuer.issuer);
  });
}

/** Inline JWKs are usable public keys (private members are refused by the schema). */
function inlineJwks(config: Raw, issues: Issues): void {
  issuers(config).forEach((issuer, i) => {
    asList(asObject(issuer.jwks)?.keys).forEach((jwk, k) => {
      const key = asObject(jwk);
      const at: Path = ["tokens", "issuers", i, "jwks", "keys", k];
      if (!key || issues.reported(at)) return;
      const parsed = parseJwk(key);
      if (typeof parsed === "string") issues.add(at, parsed);
    });
  });
}

/** URLs use a scheme the service fetches: http(s) for JWKS, bundles and data documents. */
function urlSchemes(config: Raw, issues: Issues): void {
  issuers(config).forEach((issuer, i) => {
    const at: Path = ["tokens", "issuers", i, "jwks_uri"];
    if (typeof issuer.jwks_uri === "string" && !issues.reported(at) && !isHttpUrl(issuer.jwks_uri)) {
      issues.add(at, "must be an http:// or https:// URL");
    }
  });
  const sources: [Path, unknown][] = [[["bundle", "source"], asObject(config.bundle)?.source]];
  for (const [name, doc] of Object.entries(asObject(config.data) ?? {})) {
    sources.push([["data", name, "source"], asObject(doc)?.source]);
  }
  for (const [path, source] of sources) {
    if (typeof source !== "string" || issues.reported(path)) continue;
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1];
    if (scheme && !/^https?$/i.test(scheme)) {
      issues.add(
        path,
        `unsupported URL scheme ${JSON.stringify(`${scheme}:`)}; give an http(s):// URL or a file path`,
      );
    } else if (scheme && !isHttpUrl(source)) {
      issues.add(path, "is not a valid URL");
    }
  }
  const url = asObject(asObject(config.policy)?.outcome)?.required_scope_extension_url;
  const urlAt: Path = ["policy", "outcome", "required_scope_extension_url"];
  if (typeof url === "string" && !issues.reported(urlAt) && !/^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(url)) {
    issues.add(
      urlAt,
      "must be an absolute URI, e.g. https://example.org/fhir/StructureDefinition/required-scope",
    );
  }
}

/** `bundle.verification`: exactly one key, readable, public, and fit for the algorithm. */
function verificationKey(config: Raw, issues: Issues, baseDir: string): void {
  const v = asObject(asObject(config.bundle)?.verification);
  if (!v) return;
  const at: Path = ["bundle", "verification"];
  if ((v.public_key === undefined) === (v.public_key_file === undefined)) {
    issues.add(at, "exactly one of public_key (PEM or JWK text) or public_key_file is required");
    return;
  }
  const field = v.public_key !== undefined ? "public_key" : "public_key_file";
  let text = v.public_key;
  let prefix = "";
  if (typeof v.public_key_file === "string") {
    const file = resolvePath(v.public_key_file, baseDir);
    text = readKeyFile(file);
    if (text === undefined) {
      issues.add([...at, field], existsSync(file) ? `cannot read ${file}` : `file not found: ${file}`);
      return;
    }
    prefix = `${file}: `;
  }
  if (typeof text !== "string") return;
  const key = parsePublicKey(text);
  if (typeof key === "string") return issues.add([...at, field], `${prefix}${key}`);
  if (typeof v.algorithm !== "string" || issues.reported([...at, "algorithm"])) return;
  const misfit = keyAlgorithmMismatch(key, v.algorithm);
  if (misfit) issues.add([...at, field], `${prefix}${misfit}`);
}

/** Gateway key variables: not one of the service's own variables, and one gateway per name. */
function gatewayKeyEnvs(config: Raw, issues: Issues, reserved: readonly string[]): void {
  const names = new Set<string>();
  asList(asObject(config.gateway)?.enforcing).forEach((item, i) => {
    const g = asObject(item);
    if (!g) return;
    const env = g.key_env;
    if (typeof env === "string" && (reserved.includes(env) || /^SMART_AUTHZ_DATA_\w+_TOKEN$/.test(env))) {
      issues.add(
        ["gateway", "enforcing", i, "key_env"],
        `${env} is a variable the service reads for something else; give the gateway key its own variable`,
      );
    }
    if (typeof g.name !== "string") return;
    if (names.has(g.name)) {
      issues.add(["gateway", "enforcing", i, "name"], `duplicate gateway ${JSON.stringify(g.name)}`);
    }
    names.add(g.name);
  });
}

/** `policy.btg`: the shortest reason may not be longer than the longest. */
function btgReasonBounds(config: Raw, issues: Issues): void {
  const btg = asObject(asObject(config.policy)?.btg);
  const min = btg?.reason_min_length;
  const max = btg?.reason_max_length;
  if (typeof min === "number" && typeof max === "number" && min > max) {
    issues.add(
      ["policy", "btg", "reason_min_length"],
      `must not exceed reason_max_length (${min} > ${max}): no reason could be accepted`,
    );
  }
}

/**
 * `proxy`: its listen address and sizes, base URLs a proxy can use (http(s), no query, fragment
 * or credentials), upstream credentials that name what their type needs and nothing else, and
 * secret variables that are not the service's own.
 */
function proxySection(config: Raw, issues: Issues, reserved: readonly string[]): void {
  const proxy = asObject(config.proxy);
  if (!proxy) return;
  const listen = proxy.listen;
  if ((typeof listen === "string" || typeof listen === "number") && !issues.reported(["proxy", "listen"])) {
    const parsed = parseListen(String(listen));
    if (typeof parsed === "string") issues.add(["proxy", "listen"], parsed);
  }
  const basePath = proxy.base_path;
  if (
    typeof basePath === "string" &&
    !issues.reported(["proxy", "base_path"]) &&
    (!/^\/([A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*)?\/?$/.test(basePath) || /(^|\/)\.\.?(\/|$)/.test(basePath))
  ) {
    issues.add(["proxy", "base_path"], 'must be a plain path starting with "/", e.g. "/fhir" or "/"');
  }
  const upstream = asObject(proxy.upstream);
  for (const [path, value] of [
    [["proxy", "body_limit"], proxy.body_limit],
    [["proxy", "upstream", "max_response_size"], upstream?.max_response_size],
  ] as [Path, unknown][]) {
    if (value === undefined || issues.reported(path)) continue;
    const size = parseSize(value);
    if (typeof size === "string") issues.add(path, size);
  }
  for (const [path, value] of [
    [["proxy", "upstream", "url"], upstream?.url],
    [["proxy", "public_base_url"], proxy.public_base_url],
  ] as [Path, unknown][]) {
    if (typeof value !== "string" || issues.reported(path)) continue;
    const problem = baseUrlProblem(value);
    if (problem) issues.add(path, problem);
  }
  const auth = asObject(upstream?.auth);
  const at: Path = ["proxy", "upstream", "auth"];
  if (auth && typeof auth.type === "string" && !issues.reported([...at, "type"])) {
    const needs: Record<string, string[]> = {
      none: [],
      "forward-client-token": [],
      bearer: ["token_env"],
      basic: ["username", "password_env"],
    };
    const wanted = needs[auth.type] ?? [];
    for (const field of wanted) {
      if (auth[field] === undefined)
        issues.add([...at, field], `required with type ${JSON.stringify(auth.type)}`);
    }
    for (const field of ["token_env", "username", "password_env"]) {
      if (auth[field] !== undefined && !wanted.includes(field))
        issues.add([...at, field], `not used with type ${JSON.stringify(auth.type)}`, true);
    }
  }
  const secrets: [Path, unknown][] = [
    [[...at, "token_env"], auth?.token_env],
    [[...at, "password_env"], auth?.password_env],
    [["proxy", "cursor", "key_env"], asObject(proxy.cursor)?.key_env],
  ];
  for (const [path, env] of secrets) {
    if (typeof env !== "string" || issues.reported(path)) continue;
    if (reserved.includes(env) || /^SMART_AUTHZ_DATA_\w+_TOKEN$/.test(env))
      issues.add(
        path,
        `${env} is a variable the service reads for something else; give this secret its own variable`,
      );
  }
}

/** Why `value` cannot be a FHIR base URL for the proxy, or undefined. */
export function baseUrlProblem(value: string): string | undefined {
  if (!isHttpUrl(value)) return "must be an absolute http:// or https:// URL";
  const u = new URL(value);
  if (u.search !== "" || u.hash !== "" || value.includes("?") || value.includes("#"))
    return "must not have a query or fragment";
  if (u.username !== "" || u.password !== "")
    return "must not carry credentials; use proxy.upstream.auth with the environment";
  return undefined;
}

// --- parsers shared with the typed config and check-config ----------------------------------

export function parseListen(value: string): { host: string; port: number } | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  if (!m) return `expected "host:port" or a port number, got ${JSON.stringify(value)}`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  return { host: m[1] || m[2] || "127.0.0.1", port };
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, kib: 1024, mb: 1024 * 1024, mib: 1024 * 1024 };

/** A size in bytes: a positive whole number, or a number with a unit ("512kb", "1mb"). */
export function parseSize(value: unknown): number | string {
  const m = typeof value === "string" ? /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(value) : null;
  const unit = m ? SIZE_UNITS[(m[2] || "b").toLowerCase()] : undefined;
  const bytes = typeof value === "number" ? value : m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isInteger(bytes) || bytes <= 0) {
    return `must be a size such as 1048576, "512kb" or "1mb", got ${JSON.stringify(value)}`;
  }
  if (!Number.isSafeInteger(bytes)) return `${JSON.stringify(value)} is too large`;
  return bytes;
}

export function resolvePath(file: string, baseDir: string): string {
  return isAbsolute(file) ? file : resolve(baseDir, file);
}

/** JWK members that hold private or secret key material (RFC 7518 6.2.2, 6.3.2, 6.4.1). */
export const PRIVATE_JWK_MEMBERS = new Set(["d", "p", "q", "dp", "dq", "qi", "oth", "k"]);

/** A public key from PEM (public key or certificate) or JWK text, or what is wrong with it. */
export function parsePublicKey(text: string): KeyObject | string {
  const t = text.trim();
  if (t.startsWith("{")) {
    let jwk: unknown;
    try {
      jwk = JSON.parse(t);
    } catch (err) {
      return `looks like a JWK but is not valid JSON (${(err as Error).message})`;
    }
    return parseJwk(jwk);
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(t)) {
    return "is a PRIVATE key; give the public key (a private key never belongs in a config)";
  }
  if (!/-----BEGIN (PUBLIC KEY|CERTIFICATE)-----/.test(t)) {
    return "must be a PEM public key (BEGIN PUBLIC KEY), a PEM certificate or a JWK";
  }
  try {
    return createPublicKey(t);
  } catch (err) {
    return `cannot be read as a PEM public key or certificate (${(err as Error).message})`;
  }
}

/** A public JWK as a key, or what is wrong with it. */
export function parseJwk(jwk: unknown): KeyObject | string {
  const key = asObject(jwk);
  if (!key) return "must be a JWK (a JSON object)";
  const secret = Object.keys(key).filter((m) => PRIVATE_JWK_MEMBERS.has(m));
  if (key.kty === "oct") return "is a symmetric (oct) key; shared-secret keys are never accepted";
  if (secret.length)
    return `holds private key material (${secret.join(", ")}); a config holds only public keys`;
  try {
    return createPublicKey({ key: key as JsonWebKey, format: "jwk" });
  } catch (err) {
    return `is not a usable public JWK (${(err as Error).message})`;
  }
}

const CURVES: Record<string, string> = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };
const CURVE_NAMES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

/** Why `key` cannot verify `alg` signatures, or undefined when it can. */
export function keyAlgorithmMismatch(key: KeyObject, alg: string): string | undefined {
  const type = key.asymmetricKeyType ?? "unknown";
  const details = key.asymmetricKeyDetails ?? {};
  const curve = details.namedCurve ? ` ${CURVE_NAMES[details.namedCurve] ?? details.namedCurve}` : "";
  const what = `the key is ${type === "ec" ? `an EC${curve}` : `an ${type.toUpperCase()}`} key`;
  if (/^(RS|PS)/.test(alg)) {
    if (type !== "rsa" && !(alg.startsWith("PS") && type === "rsa-pss"))
      return `${what}; ${alg} needs an RSA key`;
    if ((details.modulusLength ?? 0) < 2048) {
      return `the RSA key has ${details.modulusLength ?? "?"} bits; ${alg} needs at least 2048`;
    }
    return undefined;
  }
  if (CURVES[alg]) {
    return type === "ec" && details.namedCurve === CURVES[alg]
      ? undefined
      : `${what}; ${alg} needs an EC ${CURVE_NAMES[CURVES[alg]!]} key`;
  }
  if (alg === "EdDSA")
    return type === "ed25519" || type === "ed448"
      ? undefined
      : `${what}; EdDSA needs an Ed25519 or Ed448 key`;
  return `unsupported algorithm ${JSON.stringify(alg)}`;
}

// --- helpers ---------------------------------------------------------------------------------

function readKeyFile(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\/\S+$/i.test(value)) return false;
  try {
    return Boolean(new URL(value).host);
  } catch {
    return false;
  }
}

function issuers(config: Raw): Raw[] {
  return asList(asObject(config.tokens)?.issuers).map((i) => asObject(i) ?? {});
}

function asObject(value: unknown): Raw | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Raw) : undefined;
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
