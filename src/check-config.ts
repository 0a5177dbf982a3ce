/**
 * `smart-authz check-config FILE [--fetch]`: whether a config can serve, and exactly what was
 * checked. The config is validated (schema and checks, src/ops/config.ts); the bundle is read, its
 * signature verified when `bundle.verification` is configured, and its wasm instantiated with the
 * config's policy data and data documents, as `serve` would; data documents and JWKS files are read
 * and validated. What lives behind a URL is fetched only with --fetch, and the report says so.
 *
 * It lives beside cli.ts, not in src/ops/, because it uses the policy layer (imports run downward).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadConfig, type Config, type DataDocumentConfig } from "./ops/config.js";
import { parseJwk } from "./ops/config-checks.js";
import { readBundle, readBundleBytes, type PolicyBundle } from "./policy/bundle.js";
import { BundleVerifier, SIGNATURES_FILE } from "./policy/bundle-signature.js";
import { MAX_DOWNLOAD_BYTES } from "./policy/bundle-source.js";
import { DataDocumentSource, type DataDocumentName } from "./policy/data-document.js";
import { ENTRYPOINTS, PolicyEngine } from "./policy/engine.js";
import { fetchBytes, redactUrl } from "./policy/polled-fetch.js";
import { describeError } from "./core/errors.js";

export interface CheckConfigIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface CheckConfigOptions {
  /** Download what lives behind URLs (bundle, data documents, JWKS) and check it too. */
  fetch?: boolean;
}

/** What was checked (one line each), what failed, and how many URL sources were not fetched. */
interface Report {
  lines: string[];
  problems: string[];
  unfetched: number;
}

/**
 * Checks `file` and prints the report; resolves to the exit code: 0 when everything checked is
 * good, 1 when the bundle, a data document or a key file fails. An invalid config throws
 * CONFIG_INVALID (the CLI's exit 2), as `serve` would.
 */
export async function checkConfig(
  file: string,
  io: CheckConfigIO,
  options: CheckConfigOptions = {},
): Promise<number> {
  const config = loadConfig(file, { ...io.env, SMART_AUTHZ_CONFIG: undefined });
  const fetchUrls = options.fetch === true;
  const report: Report = {
    lines: [`listen: ${config.server.host}:${config.server.port}`],
    problems: [],
    unfetched: 0,
  };
  await checkIssuers(config, fetchUrls, report);
  const documents = await checkDataDocuments(config, fetchUrls, report);
  await checkBundle(config, documents, fetchUrls, report);
  describeAudit(config, report);
  for (const g of config.gateway.enforcing) {
    report.lines.push(`gateway: ${g.name} enforces filter decisions (key from $${g.keyEnv}, present)`);
  }
  if (config.demo) {
    report.lines.push("WARNING: the DEMO issuer is trusted; never use this config in production");
  }
  const ok = report.problems.length === 0;
  const n = report.problems.length;
  const verdict = !ok
    ? `FAILED (${count(n, "problem")})`
    : report.unfetched > 0
      ? `OK, except ${count(report.unfetched, "URL source")} not fetched (--fetch checks them too)`
      : "OK";
  io.stdout(`${file}: ${verdict}\n` + report.lines.map((l) => `  ${l}\n`).join(""));
  for (const p of report.problems) io.stderr(`smart-authz: ${p}\n`);
  return ok ? 0 : 1;
}

function fail(report: Report, line: string, problem: string): void {
  report.lines.push(`${line}: FAILED: ${problem}`);
  report.problems.push(`${line}: ${problem}`);
}

// --- token issuers ----------------------------------------------------------------------------

async function checkIssuers(config: Config, fetchUrls: boolean, report: Report): Promise<void> {
  for (const issuer of config.tokens.issuers) {
    const line = `issuer ${issuer.issuer}`;
    const algorithms = issuer.algorithms.join(", ");
    const { jwks } = issuer;
    if (jwks.kind === "inline") {
      report.lines.push(`${line} (${algorithms}): ${count(jwks.jwks.keys.length, "inline key")}`);
      continue;
    }
    const where = jwks.kind === "url" ? `jwks_uri ${redactUrl(jwks.url)}` : `jwks_file ${jwks.path}`;
    if (jwks.kind === "url" && !fetchUrls) {
      report.lines.push(`${line} (${algorithms}): ${where}: not fetched`);
      report.unfetched++;
      continue;
    }
    try {
      const text =
        jwks.kind === "file"
          ? readFileSync(jwks.path, "utf8")
          : new TextDecoder().decode((await fetchJwks(jwks.url, config.tokens.jwksTimeoutMs)).bytes);
      const keys = jwksKeys(text);
      report.lines.push(`${line} (${algorithms}): ${where}: ${count(keys, "valid public key")}`);
    } catch (err) {
      fail(report, `${line}: ${where}`, describeError(err));
    }
  }
}

async function fetchJwks(url: string, timeoutMs: number) {
  const downloaded = await fetchBytes(url, {
    what: "JWKS",
    accept: "application/jwk-set+json, application/json",
    timeoutMs,
    maxBytes: 1024 * 1024,
    invalidCode: "CONFIG_INVALID",
    unavailableCode: "CONFIG_INVALID",
  });
  if (!downloaded) throw new Error("the server answered 304 to a request without If-None-Match");
  return downloaded;
}

/** The number of usable public keys in JWKS text; throws what is wrong with it. */
function jwksKeys(text: string): number {
  let set: unknown;
  try {
    set = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON (${describeError(err)})`);
  }
  const keys = (set as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('not a JWKS: expected {"keys": [...]}');
  keys.forEach((jwk, i) => {
    const key = parseJwk(jwk);
    if (typeof key === "string") throw new Error(`keys[${i}] ${key}`);
  });
  return keys.length;
}

// --- data documents ---------------------------------------------------------------------------

async function checkDataDocuments(
  config: Config,
  fetchUrls: boolean,
  report: Report,
): Promise<Record<string, unknown>> {
  const loaded: Record<string, unknown> = {};
  for (const [name, doc] of Object.entries(config.data) as [DataDocumentName, DataDocumentConfig][]) {
    const where = doc.source.kind === "url" ? redactUrl(doc.source.url) : doc.source.path;
    const line = `data.${name}: ${where}`;
    if (doc.source.kind === "url" && !fetchUrls) {
      report.lines.push(`${line}: not fetched`);
      report.unfetched++;
      continue;
    }
    const source = new DataDocumentSource(name, doc, { changed: (_, value) => (loaded[name] = value) });
    await source.reload(true);
    const error = source.status.lastError;
    if (error) fail(report, line, error);
    else report.lines.push(`${line}: valid (schemas/data/${name}.schema.json)`);
  }
  return loaded;
}

// --- the bundle -------------------------------------------------------------------------------

async function checkBundle(
  config: Config,
  documents: Record<string, unknown>,
  fetchUrls: boolean,
  report: Report,
): Promise<void> {
  const { source, verification } = config.bundle;
  const where = source.kind === "url" ? redactUrl(source.url) : source.path;
  const signature = verification
    ? `${verification.algorithm}${verification.keyId ? `, key id ${verification.keyId}` : ""}`
    : undefined;
  if (source.kind === "url" && !fetchUrls) {
    report.lines.push(
      `bundle: ${where}: not fetched, signature: ` +
        (signature ? `configured (${signature}), not checked` : "not configured"),
    );
    report.unfetched++;
    return;
  }
  let bundle: PolicyBundle;
  try {
    bundle = source.kind === "file" ? readBundle(source.path) : await downloadBundle(config, source.url);
  } catch (err) {
    return fail(report, `bundle: ${where}`, describeError(err));
  }
  let signed = "not configured";
  if (verification) {
    try {
      const verifier = await BundleVerifier.create(verification);
      const signer = await verifier.verifiedSigner(bundle.files, where);
      signed = `verified (${verification.algorithm}, key id ${signer.keyId ?? "(none named)"}${signer.scope ? `, scope ${signer.scope}` : ""})`;
    } catch (err) {
      return fail(report, `bundle: ${where}, signature`, describeError(err));
    }
  } else if (bundle.files.has(SIGNATURES_FILE)) {
    signed = `not configured (the bundle carries ${SIGNATURES_FILE}; nothing checks it)`;
  }
  let engine: PolicyEngine;
  try {
    engine = await PolicyEngine.load(bundle, { data: { ...documents, config: config.policy } });
  } catch (err) {
    return fail(report, `bundle: ${where}`, describeError(err));
  }
  if (!engine.entrypoints.includes(ENTRYPOINTS.decision)) {
    return fail(
      report,
      `bundle: ${where}`,
      `the policy has no ${ENTRYPOINTS.decision} entrypoint (it has ${engine.entrypoints.join(", ") || "none"})`,
    );
  }
  report.lines.push(`bundle: ${where} (revision ${engine.revision}), signature: ${signed}`);
}

async function downloadBundle(config: Config, url: string): Promise<PolicyBundle> {
  const downloaded = await fetchBytes(url, {
    what: "bundle",
    accept: "application/gzip, application/octet-stream",
    timeoutMs: config.bundle.timeoutMs,
    maxBytes: MAX_DOWNLOAD_BYTES,
    bearerToken: config.bundle.bearerToken,
    invalidCode: "BUNDLE_INVALID",
    unavailableCode: "BUNDLE_UNAVAILABLE",
  });
  if (!downloaded) throw new Error("the bundle server answered 304 to a request without If-None-Match");
  return readBundleBytes(downloaded.bytes, redactUrl(url));
}

// --- audit ------------------------------------------------------------------------------------

function describeAudit(config: Config, report: Report): void {
  const { audit } = config;
  if (!audit) {
    report.lines.push(
      "audit: not configured; WARNING: every decision that must be audited (break-the-glass, label denials) will be refused",
    );
    return;
  }
  const folder = dirname(audit.path);
  report.lines.push(
    `audit: ${audit.path} (sync ${audit.sync})` +
      (existsSync(folder)
        ? ""
        : `; WARNING: ${folder} does not exist here: decisions that must be audited will be refused until it does`),
  );
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}
