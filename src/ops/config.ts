/**
 * The sidecar's configuration: one YAML file, validated once at start with precise messages
 * (`file:line:col: field: problem`), then overridden by environment variables for the things a
 * deployment sets per environment (listen address, bundle source, secrets). Inside the service
 * the result is trusted: every field has its final type and default.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document } from "yaml";
import { DEFAULT_CONFIG_YAML, DEMO_ISSUER, PACKAGE_ROOT } from "./default-config.js";
import { SmartAuthzError } from "../core/errors.js";

export type JwksSource =
  | { kind: "url"; url: string }
  | { kind: "file"; path: string }
  | { kind: "inline"; jwks: { keys: Record<string, unknown>[] } };

export interface IssuerConfig {
  issuer: string;
  audience: string[];
  algorithms: string[];
  jwks: JwksSource;
}

export interface TokensConfig {
  issuers: IssuerConfig[];
  clockToleranceSeconds: number;
  maxTokenBytes: number;
  cacheMaxEntries: number;
  jwksCooldownMs: number;
  jwksCacheMaxAgeMs: number;
  jwksTimeoutMs: number;
  trustForwardedClaims: boolean;
}

export interface BundleVerificationConfig {
  /** A PEM public key (SPKI) or a JWK, as text. */
  publicKey: string;
  algorithm: string;
  keyId: string | undefined;
  scope: string | undefined;
}

export interface BundleConfig {
  source: { kind: "file"; path: string } | { kind: "url"; url: string };
  pollIntervalMs: number;
  timeoutMs: number;
  /** Bearer token for the bundle server; from the environment only, never from the file. */
  bearerToken: string | undefined;
  verification: BundleVerificationConfig | undefined;
}

export interface ServerConfig {
  host: string;
  port: number;
  bodyLimitBytes: number;
  shutdownGraceMs: number;
  /** Path of the FHIR base on the gateway (e.g. "/fhir"), removed from URIs forwarded to /v1/gateway. */
  fhirBasePath: string;
  /**
   * How long an idle keep-alive connection stays open (Node's `server.keepAliveTimeout`). Must be
   * longer than the idle timeout of the gateway's upstream connection pool, or the gateway may send
   * a request on a connection the service is closing (ECONNRESET, then 502/503).
   */
  keepAliveTimeoutMs: number;
}

export interface AuditConfig {
  /** The JSON-lines audit file (absolute; relative paths in the file resolve against its folder). */
  path: string;
  /** fsync after every record ("always") or only after break-the-glass records ("btg"). */
  sync: "always" | "btg";
}

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface LoggingConfig {
  level: LogLevel;
  decisions: boolean;
  /** Log raw tokens, claims and FHIR content. For local debugging only; never in production. */
  unmask: boolean;
}

/**
 * A gateway that calls /v1/gateway (or `?mode=gateway`) and carries out what a status code cannot:
 * it adds `narrow` to the upstream request and sends every response through /v1/filter. It proves
 * who it is with a shared key in `X-Smart-Authz-Gateway-Key`, read from the environment.
 */
export interface EnforcingGateway {
  name: string;
  /** The environment variable that holds the key. */
  keyEnv: string;
  /** The key itself, resolved from `keyEnv` when the config is loaded. */
  key: string;
}

export interface GatewayConfig {
  /** Gateways declared to apply `filter` decisions; any other caller gets 403 for them. */
  enforcing: EnforcingGateway[];
}

/** How the proxy authenticates to the FHIR server. Secrets come from the environment only. */
export type UpstreamAuth =
  | { type: "none" }
  | { type: "bearer"; tokenEnv: string; token: string }
  | { type: "basic"; username: string; passwordEnv: string; password: string }
  /** Forwards the client's own access token (only when the FHIR server itself expects SMART tokens). */
  | { type: "forward-client-token" };

/**
 * How ORed `narrow` alternatives become one upstream search: `auto` asks the server's
 * CapabilityStatement (`_filter`, then compartment search), `filter` and `compartment` force one
 * form, `single` never combines alternatives. When none applies, `fallback` decides.
 */
export type NarrowingStrategy = "auto" | "filter" | "compartment" | "single";
export type NarrowingFallback = "primary" | "response-filter" | "refuse";

export interface ProxyConfig {
  host: string;
  port: number;
  /** Path of the FHIR base on the proxy, e.g. "/fhir" (no trailing slash; "" for the root). */
  basePath: string;
  /** The base URL clients use (links, Location, fullUrl); undefined: http://<listen><base_path>. */
  publicBaseUrl: string | undefined;
  bodyLimitBytes: number;
  upstream: {
    /** The FHIR server's base URL, without a trailing slash. */
    url: string;
    auth: UpstreamAuth;
    timeoutMs: number;
    maxResponseBytes: number;
    /** How often the CapabilityStatement is fetched again (0: only at start). */
    capabilityRefreshMs: number;
  };
  narrowing: { strategy: NarrowingStrategy; fallback: NarrowingFallback };
  cursor: {
    /** The environment variable holding the HMAC key for paging cursors. */
    keyEnv: string;
    /** The key; undefined when the variable is unset (a random key per process is used then). */
    key: string | undefined;
    ttlMs: number;
  };
}

/** The policy pool's settings; environment only (SMART_AUTHZ_POOL_*). Unset: the pool's defaults. */
export interface PoolSettings {
  mode?: "inline" | "workers";
  workers?: number;
  timeoutMs?: number;
  maxQueue?: number;
}

/** A data document the policy decides with (relationships, client registrations), polled like the bundle. */
export interface DataDocumentConfig {
  source: { kind: "file"; path: string } | { kind: "url"; url: string };
  pollIntervalMs: number;
  timeoutMs: number;
  maxBytes: number;
  /** Bearer token for the document server; from the environment only (SMART_AUTHZ_DATA_<NAME>_TOKEN). */
  bearerToken: string | undefined;
}

export interface Config {
  /** Where the config came from: a file path or "(embedded default)". */
  origin: string;
  server: ServerConfig;
  tokens: TokensConfig;
  bundle: BundleConfig;
  logging: LoggingConfig;
  gateway: GatewayConfig;
  pool: PoolSettings;
  /** `data:`: documents loaded beside the bundle, by name (`relationships`, `clients`). */
  data: Record<string, DataDocumentConfig>;
  /**
   * Where the policy's audit obligations are written. Undefined: no audit log, so every decision
   * that carries an audit obligation is refused (500, `audit-unavailable`).
   */
  audit: AuditConfig | undefined;
  /** The `policy:` section, owned by the policy author, passed to the policy as `data.config`. */
  policy: Record<string, unknown>;
  /** The enforcing reverse proxy (`smart-authz proxy`); undefined when the file has no `proxy:` section. */
  proxy: ProxyConfig | undefined;
  /** True when the demo issuer with the published demo key is trusted. */
  demo: boolean;
}

export const EMBEDDED_ORIGIN = "(embedded default)";

/** The data documents a config may name (kept in step with src/policy/data-document.ts by a test). */
export const DATA_DOCUMENT_NAMES = ["relationships", "clients"] as const;

/** Environment variables the service reads. Secrets come only from here. */
export const ENV = {
  config: "SMART_AUTHZ_CONFIG",
  listen: "SMART_AUTHZ_LISTEN",
  bundle: "SMART_AUTHZ_BUNDLE",
  bundleToken: "SMART_AUTHZ_BUNDLE_TOKEN",
  logLevel: "SMART_AUTHZ_LOG_LEVEL",
  poolMode: "SMART_AUTHZ_POOL_MODE",
  poolWorkers: "SMART_AUTHZ_POOL_WORKERS",
  poolTimeoutMs: "SMART_AUTHZ_POOL_TIMEOUT_MS",
  poolQueue: "SMART_AUTHZ_POOL_QUEUE",
  proxyListen: "SMART_AUTHZ_PROXY_LISTEN",
  proxyUpstream: "SMART_AUTHZ_PROXY_UPSTREAM",
} as const;

/** The default environment variable for the proxy's paging-cursor key. */
export const DEFAULT_CURSOR_KEY_ENV = "SMART_AUTHZ_PROXY_CURSOR_KEY";

export interface ConfigIssue {
  /** Dotted path of the field, e.g. `tokens.issuers[0].audience`. */
  field: string;
  message: string;
  line?: number;
  col?: number;
}

const ALLOWED_TOKEN_ALGS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];
const LOG_LEVELS: LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Loads the config: `path` when given, else $SMART_AUTHZ_CONFIG, else the embedded default; then env overrides. */
export function loadConfig(path?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const file = path ?? env[ENV.config];
  if (file === undefined || file === "") {
    return applyEnv(parseConfig(DEFAULT_CONFIG_YAML, EMBEDDED_ORIGIN, PACKAGE_ROOT), env);
  }
  if (!existsSync(file)) throw new SmartAuthzError("CONFIG_INVALID", `config file not found: ${file}`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new SmartAuthzError("CONFIG_INVALID", `cannot read config file ${file}: ${(err as Error).message}`);
  }
  return applyEnv(parseConfig(text, file, dirname(resolve(file))), env);
}

/** Parses and validates YAML text; relative paths inside resolve against `baseDir`. Throws CONFIG_INVALID with every issue. */
export function parseConfig(text: string, origin: string, baseDir: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return { field: "(syntax)", message: e.message.split("\n")[0] ?? e.message, line, col };
    });
    throw configError(origin, issues);
  }
  const v = new Validator(doc, lineCounter, baseDir);
  const config = v.config(origin);
  if (v.issues.length > 0 || !config) throw configError(origin, v.issues);
  return config;
}

export function formatIssue(origin: string, issue: ConfigIssue): string {
  const where = issue.line !== undefined ? `${origin}:${issue.line}:${issue.col ?? 1}` : origin;
  return `${where}: ${issue.field}: ${issue.message}`;
}

function configError(origin: string, issues: ConfigIssue[]): SmartAuthzError {
  const lines = issues.map((i) => formatIssue(origin, i));
  return new SmartAuthzError(
    "CONFIG_INVALID",
    `invalid config (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n  ${lines.join("\n  ")}`,
    { issues },
  );
}

function applyEnv(config: Config, env: NodeJS.ProcessEnv): Config {
  const out: Config = {
    ...config,
    server: { ...config.server },
    bundle: { ...config.bundle },
    logging: { ...config.logging },
    gateway: { enforcing: config.gateway.enforcing.map((g) => ({ ...g, key: gatewayKey(g, env) })) },
    pool: poolSettingsFromEnv(env),
    data: Object.fromEntries(
      Object.entries(config.data).map(([name, d]) => [
        name,
        { ...d, bearerToken: env[`SMART_AUTHZ_DATA_${name.toUpperCase()}_TOKEN`] || undefined },
      ]),
    ),
    proxy: config.proxy ? proxyFromEnv(config.proxy, env) : undefined,
  };
  const listen = env[ENV.listen];
  if (listen) {
    const parsed = parseListen(listen);
    if (typeof parsed === "string") throw new SmartAuthzError("CONFIG_INVALID", `${ENV.listen}: ${parsed}`);
    out.server.host = parsed.host;
    out.server.port = parsed.port;
  }
  const bundle = env[ENV.bundle];
  if (bundle) out.bundle.source = bundleSource(bundle, process.cwd());
  const token = env[ENV.bundleToken];
  if (token) out.bundle.bearerToken = token;
  const level = env[ENV.logLevel];
  if (level) {
    if (!LOG_LEVELS.includes(level as LogLevel)) {
      throw new SmartAuthzError("CONFIG_INVALID", `${ENV.logLevel}: must be one of ${LOG_LEVELS.join(", ")}`);
    }
    out.logging.level = level as LogLevel;
  }
  return out;
}

/**
 * A config with a `proxy:` section: the file's own, or (when it has none) the defaults in front of
 * `upstreamUrl` (`smart-authz proxy --upstream URL` on the embedded demo config). Environment
 * overrides apply either way.
 */
export function withProxy(config: Config, upstreamUrl: string | undefined, env: NodeJS.ProcessEnv): Config {
  if (config.proxy || upstreamUrl === undefined) return config;
  const lineCounter = new LineCounter();
  const doc = parseDocument(JSON.stringify({ upstream: { url: upstreamUrl } }), { lineCounter });
  const v = new Validator(doc, lineCounter, process.cwd());
  const proxy = v.proxySection(doc.toJS(), ["proxy"]);
  if (!proxy || v.issues.length > 0) throw configError("--upstream", v.issues);
  return { ...config, proxy: proxyFromEnv(proxy, env) };
}

/** The proxy's secrets (upstream credentials, cursor key) and per-deployment overrides. */
function proxyFromEnv(proxy: ProxyConfig, env: NodeJS.ProcessEnv): ProxyConfig {
  const fail = (m: string): never => {
    throw new SmartAuthzError("CONFIG_INVALID", m);
  };
  const out: ProxyConfig = {
    ...proxy,
    upstream: { ...proxy.upstream },
    cursor: { ...proxy.cursor },
    narrowing: { ...proxy.narrowing },
  };
  const listen = env[ENV.proxyListen];
  if (listen) {
    const parsed = parseListen(listen);
    if (typeof parsed === "string") fail(`${ENV.proxyListen}: ${parsed}`);
    else {
      out.host = parsed.host;
      out.port = parsed.port;
    }
  }
  const upstream = env[ENV.proxyUpstream];
  if (upstream) {
    const problem = httpUrlProblem(upstream);
    if (problem) fail(`${ENV.proxyUpstream}: ${problem}`);
    out.upstream.url = upstream.replace(/\/+$/, "");
  }
  const auth = proxy.upstream.auth;
  if (auth.type === "bearer") {
    const token = env[auth.tokenEnv];
    if (!token) fail(`proxy.upstream.auth: ${auth.tokenEnv} must hold the upstream bearer token`);
    out.upstream.auth = { ...auth, token: token! };
  } else if (auth.type === "basic") {
    const password = env[auth.passwordEnv];
    if (!password) fail(`proxy.upstream.auth: ${auth.passwordEnv} must hold the upstream password`);
    out.upstream.auth = { ...auth, password: password! };
  }
  const key = env[proxy.cursor.keyEnv];
  if (key !== undefined && key !== "") {
    if (key.length < MIN_GATEWAY_KEY_LENGTH) {
      fail(
        `proxy.cursor: ${proxy.cursor.keyEnv} must hold a key of at least ${MIN_GATEWAY_KEY_LENGTH} characters`,
      );
    }
    out.cursor.key = key;
  } else out.cursor.key = undefined;
  return out;
}

/** Why `value` is not an absolute http(s) URL usable as a base (no query, no fragment), or undefined. */
function httpUrlProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return `must be an absolute http:// or https:// URL, got ${JSON.stringify(value)}`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return "must be an http:// or https:// URL";
  if (u.search !== "" || u.hash !== "" || value.includes("?") || value.includes("#"))
    return "must not have a query or fragment";
  if (u.username !== "" || u.password !== "")
    return "must not carry credentials; use proxy.upstream.auth with the environment";
  return undefined;
}

/** The policy pool is tuned per deployment through the environment. */
function poolSettingsFromEnv(env: NodeJS.ProcessEnv): PoolSettings {
  const options: PoolSettings = {};
  const mode = env[ENV.poolMode];
  if (mode !== undefined && mode !== "") {
    if (mode !== "inline" && mode !== "workers") {
      throw new SmartAuthzError(
        "CONFIG_INVALID",
        `SMART_AUTHZ_POOL_MODE must be "inline" or "workers", not ${JSON.stringify(mode)}`,
      );
    }
    options.mode = mode;
  }
  const int = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      throw new SmartAuthzError(
        "CONFIG_INVALID",
        `${name} must be an integer >= ${min}, not ${JSON.stringify(raw)}`,
      );
    }
    return n;
  };
  const workers = int(ENV.poolWorkers, 1);
  if (workers !== undefined) options.workers = workers;
  const timeoutMs = int(ENV.poolTimeoutMs, 1);
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  const maxQueue = int(ENV.poolQueue, 0);
  if (maxQueue !== undefined) options.maxQueue = maxQueue;
  return options;
}

/** Keys shorter than this are refused: a gateway key must not be guessable. */
export const MIN_GATEWAY_KEY_LENGTH = 32;

function gatewayKey(gateway: EnforcingGateway, env: NodeJS.ProcessEnv): string {
  const key = env[gateway.keyEnv];
  if (key === undefined || key.length < MIN_GATEWAY_KEY_LENGTH) {
    throw new SmartAuthzError(
      "CONFIG_INVALID",
      `gateway.enforcing ${JSON.stringify(gateway.name)}: ${gateway.keyEnv} must hold a key of at least ${MIN_GATEWAY_KEY_LENGTH} characters`,
    );
  }
  return key;
}

export function parseListen(value: string): { host: string; port: number } | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  if (!m) return `expected "host:port" or a port number, got ${JSON.stringify(value)}`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  return { host: m[1] || m[2] || "127.0.0.1", port };
}

function bundleSource(value: string, baseDir: string): BundleConfig["source"] {
  if (/^https?:\/\//i.test(value)) return { kind: "url", url: value };
  return { kind: "file", path: isAbsolute(value) ? value : resolve(baseDir, value) };
}

type Path = (string | number)[];

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, kib: 1024, mb: 1024 * 1024, mib: 1024 * 1024 };

/** Walks the plain JS value of the document, reporting issues at the YAML node they concern. */
class Validator {
  readonly issues: ConfigIssue[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly baseDir: string,
  ) {}

  config(origin: string): Config | undefined {
    const root: unknown = this.doc.toJS({ maxAliasCount: 100 });
    if (root === null || root === undefined) {
      this.issue([], "the config is empty; expected a mapping with at least `tokens` and `bundle`");
      return undefined;
    }
    const top = this.object(
      root,
      [],
      ["server", "tokens", "bundle", "data", "logging", "gateway", "audit", "policy", "proxy"],
    );
    if (!top) return undefined;
    const server = this.server(top.server, ["server"]);
    const tokens = this.tokens(top.tokens, ["tokens"]);
    const bundle = this.bundle(top.bundle, ["bundle"]);
    const logging = this.logging(top.logging, ["logging"]);
    const gateway = this.gateway(top.gateway, ["gateway"]);
    const data = this.dataDocuments(top.data, ["data"]);
    const audit =
      top.audit === undefined || top.audit === null ? undefined : this.audit(top.audit, ["audit"]);
    let policy: Record<string, unknown> = {};
    if (top.policy !== undefined && top.policy !== null) {
      const p = this.object(top.policy, ["policy"], null);
      if (p) policy = p;
    }
    const proxy =
      top.proxy === undefined || top.proxy === null ? undefined : this.proxySection(top.proxy, ["proxy"]);
    if (!server || !tokens || !bundle || !logging || !gateway || !data) return undefined;
    if (top.audit !== undefined && top.audit !== null && !audit) return undefined;
    if (top.proxy !== undefined && top.proxy !== null && !proxy) return undefined;
    const demo = tokens.issuers.some((i) => i.issuer === DEMO_ISSUER);
    return { origin, server, tokens, bundle, logging, gateway, pool: {}, data, audit, policy, proxy, demo };
  }

  private server(value: unknown, path: Path): ServerConfig | undefined {
    const o =
      value === undefined
        ? {}
        : this.object(value, path, [
            "listen",
            "body_limit",
            "shutdown_grace_seconds",
            "fhir_base_path",
            "keep_alive_timeout_seconds",
          ]);
    if (!o) return undefined;
    let host = "127.0.0.1";
    let port = 8181;
    if (o.listen !== undefined) {
      const raw = typeof o.listen === "number" ? String(o.listen) : o.listen;
      if (typeof raw !== "string") {
        this.issue([...path, "listen"], 'must be "host:port" or a port number');
      } else {
        const parsed = parseListen(raw);
        if (typeof parsed === "string") this.issue([...path, "listen"], parsed);
        else ({ host, port } = parsed);
      }
    }
    const bodyLimitBytes = this.size(o.body_limit, [...path, "body_limit"], 1024 * 1024);
    const grace = this.number(o.shutdown_grace_seconds, [...path, "shutdown_grace_seconds"], 10, 0, 600);
    let fhirBasePath = "/";
    if (o.fhir_base_path !== undefined) {
      const p = this.string(o.fhir_base_path, [...path, "fhir_base_path"]);
      if (p !== undefined && !p.startsWith("/"))
        this.issue([...path, "fhir_base_path"], 'must start with "/", e.g. "/fhir"');
      else if (p !== undefined) fhirBasePath = p;
    }
    const keepAlive = this.number(
      o.keep_alive_timeout_seconds,
      [...path, "keep_alive_timeout_seconds"],
      65,
      1,
      3600,
    );
    return {
      host,
      port,
      bodyLimitBytes,
      shutdownGraceMs: grace * 1000,
      fhirBasePath,
      keepAliveTimeoutMs: keepAlive * 1000,
    };
  }

  private tokens(value: unknown, path: Path): TokensConfig | undefined {
    const o = this.object(value, path, [
      "issuers",
      "clock_tolerance_seconds",
      "max_token_bytes",
      "cache_max_entries",
      "jwks_cooldown_seconds",
      "jwks_cache_max_age_seconds",
      "jwks_timeout_ms",
      "trust_forwarded_claims",
    ]);
    if (!o) return undefined;
    const issuers: IssuerConfig[] = [];
    if (!Array.isArray(o.issuers) || o.issuers.length === 0) {
      this.issue([...path, "issuers"], "must be a non-empty list of trusted token issuers");
    } else {
      o.issuers.forEach((item, i) => {
        const issuer = this.issuer(item, [...path, "issuers", i]);
        if (issuer) {
          if (issuers.some((x) => x.issuer === issuer.issuer)) {
            this.issue(
              [...path, "issuers", i, "issuer"],
              `duplicate issuer ${JSON.stringify(issuer.issuer)}`,
            );
          }
          issuers.push(issuer);
        }
      });
    }
    return {
      issuers,
      clockToleranceSeconds: this.number(
        o.clock_tolerance_seconds,
        [...path, "clock_tolerance_seconds"],
        30,
        0,
        300,
      ),
      maxTokenBytes: this.number(
        o.max_token_bytes,
        [...path, "max_token_bytes"],
        16 * 1024,
        256,
        1024 * 1024,
      ),
      cacheMaxEntries: this.number(
        o.cache_max_entries,
        [...path, "cache_max_entries"],
        10_000,
        0,
        10_000_000,
      ),
      jwksCooldownMs:
        this.number(o.jwks_cooldown_seconds, [...path, "jwks_cooldown_seconds"], 30, 0, 3600) * 1000,
      jwksCacheMaxAgeMs:
        this.number(o.jwks_cache_max_age_seconds, [...path, "jwks_cache_max_age_seconds"], 600, 1, 86_400) *
        1000,
      jwksTimeoutMs: this.number(o.jwks_timeout_ms, [...path, "jwks_timeout_ms"], 5000, 100, 60_000),
      trustForwardedClaims: this.boolean(
        o.trust_forwarded_claims,
        [...path, "trust_forwarded_claims"],
        false,
      ),
    };
  }

  private issuer(value: unknown, path: Path): IssuerConfig | undefined {
    const o = this.object(value, path, ["issuer", "audience", "algorithms", "jwks_uri", "jwks_file", "jwks"]);
    if (!o) return undefined;
    const issuer = this.string(o.issuer, [...path, "issuer"]);
    let audience: string[] = [];
    if (typeof o.audience === "string" && o.audience !== "") audience = [o.audience];
    else if (
      Array.isArray(o.audience) &&
      o.audience.length > 0 &&
      o.audience.every((a) => typeof a === "string" && a)
    )
      audience = o.audience as string[];
    else
      this.issue(
        [...path, "audience"],
        "required: the audience (a string or a list of strings) your tokens carry in `aud`",
      );
    let algorithms = ["RS256", "ES256"];
    if (o.algorithms !== undefined) {
      if (!Array.isArray(o.algorithms) || o.algorithms.length === 0) {
        this.issue([...path, "algorithms"], "must be a non-empty list of JWS algorithms");
      } else {
        o.algorithms.forEach((alg, i) => {
          if (typeof alg !== "string" || !ALLOWED_TOKEN_ALGS.includes(alg)) {
            const why =
              alg === "none" || (typeof alg === "string" && /^HS/.test(alg))
                ? `${alg} is never accepted (unsigned or shared-secret tokens)`
                : `unsupported algorithm ${JSON.stringify(alg)}`;
            this.issue([...path, "algorithms", i], `${why}; allowed: ${ALLOWED_TOKEN_ALGS.join(", ")}`);
          }
        });
        algorithms = o.algorithms.filter((a): a is string => typeof a === "string");
      }
    }
    const sources = ["jwks_uri", "jwks_file", "jwks"].filter((k) => o[k] !== undefined);
    let jwks: JwksSource | undefined;
    if (sources.length !== 1) {
      this.issue(
        path,
        `exactly one of jwks_uri, jwks_file or jwks is required${sources.length ? ` (got ${sources.join(", ")})` : ""}`,
      );
    } else if (o.jwks_uri !== undefined) {
      const url = this.string(o.jwks_uri, [...path, "jwks_uri"]);
      if (url !== undefined) {
        if (!/^https?:\/\/[^\s]+$/i.test(url))
          this.issue([...path, "jwks_uri"], "must be an http:// or https:// URL");
        else jwks = { kind: "url", url };
      }
    } else if (o.jwks_file !== undefined) {
      const file = this.string(o.jwks_file, [...path, "jwks_file"]);
      if (file !== undefined)
        jwks = { kind: "file", path: isAbsolute(file) ? file : resolve(this.baseDir, file) };
    } else {
      const set = this.object(o.jwks, [...path, "jwks"], ["keys"]);
      if (set) {
        if (
          !Array.isArray(set.keys) ||
          !set.keys.every((k) => typeof k === "object" && k !== null && !Array.isArray(k))
        ) {
          this.issue([...path, "jwks", "keys"], "must be a list of JWK objects");
        } else {
          jwks = { kind: "inline", jwks: { keys: set.keys as Record<string, unknown>[] } };
        }
      }
    }
    if (issuer === undefined || audience.length === 0 || !jwks) return undefined;
    return { issuer, audience, algorithms, jwks };
  }

  private bundle(value: unknown, path: Path): BundleConfig | undefined {
    const o = this.object(value, path, ["source", "poll_interval_seconds", "timeout_ms", "verification"]);
    if (!o) return undefined;
    const src = this.string(o.source, [...path, "source"]);
    let verification: BundleVerificationConfig | undefined;
    if (o.verification !== undefined && o.verification !== null) {
      verification = this.verification(o.verification, [...path, "verification"]);
    }
    const pollIntervalMs =
      this.number(o.poll_interval_seconds, [...path, "poll_interval_seconds"], 30, 0, 86_400) * 1000;
    const timeoutMs = this.number(o.timeout_ms, [...path, "timeout_ms"], 10_000, 100, 300_000);
    if (src === undefined) return undefined;
    return {
      source: bundleSource(src, this.baseDir),
      pollIntervalMs,
      timeoutMs,
      bearerToken: undefined,
      verification,
    };
  }

  private dataDocuments(value: unknown, path: Path): Record<string, DataDocumentConfig> | undefined {
    if (value === undefined || value === null) return {};
    const o = this.object(value, path, [...DATA_DOCUMENT_NAMES]);
    if (!o) return undefined;
    const out: Record<string, DataDocumentConfig> = {};
    for (const [name, item] of Object.entries(o)) {
      const at = [...path, name];
      const d = this.object(item, at, ["source", "poll_interval_seconds", "timeout_ms", "max_size"]);
      if (!d) continue;
      const src = this.string(d.source, [...at, "source"]);
      const pollIntervalMs =
        this.number(d.poll_interval_seconds, [...at, "poll_interval_seconds"], 30, 0, 86_400) * 1000;
      const timeoutMs = this.number(d.timeout_ms, [...at, "timeout_ms"], 10_000, 100, 300_000);
      const maxBytes = this.size(d.max_size, [...at, "max_size"], 16 * 1024 * 1024);
      if (src !== undefined) {
        out[name] = {
          source: bundleSource(src, this.baseDir),
          pollIntervalMs,
          timeoutMs,
          maxBytes,
          bearerToken: undefined,
        };
      }
    }
    return out;
  }

  private verification(value: unknown, path: Path): BundleVerificationConfig | undefined {
    const o = this.object(value, path, ["public_key", "public_key_file", "algorithm", "key_id", "scope"]);
    if (!o) return undefined;
    let publicKey: string | undefined;
    if ((o.public_key === undefined) === (o.public_key_file === undefined)) {
      this.issue(path, "exactly one of public_key (PEM or JWK text) or public_key_file is required");
    } else if (o.public_key !== undefined) {
      publicKey = this.string(o.public_key, [...path, "public_key"]);
    } else {
      const file = this.string(o.public_key_file, [...path, "public_key_file"]);
      if (file !== undefined) {
        const full = isAbsolute(file) ? file : resolve(this.baseDir, file);
        if (!existsSync(full)) this.issue([...path, "public_key_file"], `file not found: ${full}`);
        else publicKey = readFileSync(full, "utf8");
      }
    }
    const algorithm = this.string(o.algorithm, [...path, "algorithm"]);
    if (algorithm !== undefined && !ALLOWED_TOKEN_ALGS.includes(algorithm)) {
      this.issue(
        [...path, "algorithm"],
        `unsupported algorithm ${JSON.stringify(algorithm)}; allowed: ${ALLOWED_TOKEN_ALGS.join(", ")}`,
      );
      return undefined;
    }
    const keyId = o.key_id === undefined ? undefined : this.string(o.key_id, [...path, "key_id"]);
    const scope = o.scope === undefined ? undefined : this.string(o.scope, [...path, "scope"]);
    if (publicKey === undefined || algorithm === undefined) return undefined;
    return { publicKey, algorithm, keyId, scope };
  }

  private audit(value: unknown, path: Path): AuditConfig | undefined {
    const o = this.object(value, path, ["path", "sync"]);
    if (!o) return undefined;
    const file = this.string(o.path, [...path, "path"]);
    let sync: AuditConfig["sync"] = "always";
    if (o.sync !== undefined && o.sync !== null) {
      if (o.sync === "always" || o.sync === "btg") sync = o.sync;
      else {
        this.issue([...path, "sync"], `must be "always" or "btg", got ${describe(o.sync)}`);
        return undefined;
      }
    }
    if (file === undefined) return undefined;
    return { path: isAbsolute(file) ? file : resolve(this.baseDir, file), sync };
  }

  private gateway(value: unknown, path: Path): GatewayConfig | undefined {
    const o = value === undefined || value === null ? {} : this.object(value, path, ["enforcing"]);
    if (!o) return undefined;
    const enforcing: EnforcingGateway[] = [];
    if (o.enforcing !== undefined && o.enforcing !== null) {
      if (!Array.isArray(o.enforcing)) {
        this.issue([...path, "enforcing"], "must be a list of gateways ({name, key_env})");
        return undefined;
      }
      o.enforcing.forEach((item, i) => {
        const at = [...path, "enforcing", i];
        const g = this.object(item, at, ["name", "key_env"]);
        if (!g) return;
        const name = this.string(g.name, [...at, "name"]);
        const keyEnv = this.string(g.key_env, [...at, "key_env"]);
        if (keyEnv !== undefined && !/^[A-Z_][A-Z0-9_]*$/.test(keyEnv))
          this.issue([...at, "key_env"], "must name an environment variable (A-Z, 0-9, _)");
        else if (name !== undefined && keyEnv !== undefined) {
          if (enforcing.some((e) => e.name === name))
            this.issue([...at, "name"], `duplicate gateway ${JSON.stringify(name)}`);
          enforcing.push({ name, keyEnv, key: "" });
        }
      });
    }
    return { enforcing };
  }

  proxySection(value: unknown, path: Path): ProxyConfig | undefined {
    const o = this.object(value, path, [
      "listen",
      "base_path",
      "public_base_url",
      "body_limit",
      "upstream",
      "narrowing",
      "cursor",
    ]);
    if (!o) return undefined;
    const before = this.issues.length;
    let host = "127.0.0.1";
    let port = 8080;
    if (o.listen !== undefined) {
      const raw = typeof o.listen === "number" ? String(o.listen) : o.listen;
      const parsed = typeof raw === "string" ? parseListen(raw) : 'must be "host:port" or a port number';
      if (typeof parsed === "string") this.issue([...path, "listen"], parsed);
      else ({ host, port } = parsed);
    }
    let basePath = "/fhir";
    if (o.base_path !== undefined) {
      const p = this.string(o.base_path, [...path, "base_path"]);
      if (p !== undefined) {
        if (!/^\/([A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*)?\/?$/.test(p) || /(^|\/)\.\.?(\/|$)/.test(p))
          this.issue([...path, "base_path"], 'must be a plain path starting with "/", e.g. "/fhir" or "/"');
        else basePath = p.replace(/\/+$/, "");
      }
    }
    let publicBaseUrl: string | undefined;
    if (o.public_base_url !== undefined && o.public_base_url !== null) {
      const u = this.string(o.public_base_url, [...path, "public_base_url"]);
      const problem = u === undefined ? undefined : httpUrlProblem(u);
      if (problem) this.issue([...path, "public_base_url"], problem);
      else if (u !== undefined) publicBaseUrl = u.replace(/\/+$/, "");
    }
    const bodyLimitBytes = this.size(o.body_limit, [...path, "body_limit"], 4 * 1024 * 1024);

    const up = this.object(
      o.upstream,
      [...path, "upstream"],
      ["url", "auth", "timeout_ms", "max_response_size", "capability_refresh_seconds"],
    );
    let url = "";
    let auth: UpstreamAuth = { type: "none" };
    let timeoutMs = 30_000;
    let maxResponseBytes = 16 * 1024 * 1024;
    let capabilityRefreshMs = 300_000;
    if (up) {
      const raw = this.string(up.url, [...path, "upstream", "url"]);
      const problem = raw === undefined ? undefined : httpUrlProblem(raw);
      if (problem) this.issue([...path, "upstream", "url"], problem);
      else if (raw !== undefined) url = raw.replace(/\/+$/, "");
      if (up.auth !== undefined && up.auth !== null) {
        const a = this.upstreamAuth(up.auth, [...path, "upstream", "auth"]);
        if (a) auth = a;
      }
      timeoutMs = this.number(up.timeout_ms, [...path, "upstream", "timeout_ms"], 30_000, 100, 600_000);
      maxResponseBytes = this.size(
        up.max_response_size,
        [...path, "upstream", "max_response_size"],
        16 * 1024 * 1024,
      );
      capabilityRefreshMs =
        this.number(
          up.capability_refresh_seconds,
          [...path, "upstream", "capability_refresh_seconds"],
          300,
          0,
          86_400,
        ) * 1000;
    }

    const n =
      o.narrowing === undefined || o.narrowing === null
        ? {}
        : this.object(o.narrowing, [...path, "narrowing"], ["strategy", "fallback"]);
    let strategy: NarrowingStrategy = "auto";
    let fallback: NarrowingFallback = "primary";
    if (n) {
      strategy = this.oneOf(
        n.strategy,
        [...path, "narrowing", "strategy"],
        ["auto", "filter", "compartment", "single"],
        "auto",
      );
      fallback = this.oneOf(
        n.fallback,
        [...path, "narrowing", "fallback"],
        ["primary", "response-filter", "refuse"],
        "primary",
      );
    }

    const c =
      o.cursor === undefined || o.cursor === null
        ? {}
        : this.object(o.cursor, [...path, "cursor"], ["key_env", "ttl_seconds"]);
    let keyEnv = DEFAULT_CURSOR_KEY_ENV;
    let ttlMs = 900_000;
    if (c) {
      if (c.key_env !== undefined) {
        const k = this.string(c.key_env, [...path, "cursor", "key_env"]);
        if (k !== undefined && !/^[A-Z_][A-Z0-9_]*$/.test(k))
          this.issue([...path, "cursor", "key_env"], "must name an environment variable (A-Z, 0-9, _)");
        else if (k !== undefined) keyEnv = k;
      }
      ttlMs = this.number(c.ttl_seconds, [...path, "cursor", "ttl_seconds"], 900, 10, 86_400) * 1000;
    }
    if (!up || this.issues.length > before) return undefined;
    return {
      host,
      port,
      basePath,
      publicBaseUrl,
      bodyLimitBytes,
      upstream: { url, auth, timeoutMs, maxResponseBytes, capabilityRefreshMs },
      narrowing: { strategy, fallback },
      cursor: { keyEnv, key: undefined, ttlMs },
    };
  }

  private upstreamAuth(value: unknown, path: Path): UpstreamAuth | undefined {
    const o = this.object(value, path, ["type", "token_env", "username", "password_env"]);
    if (!o) return undefined;
    const type = this.oneOf(
      o.type,
      [...path, "type"],
      ["none", "bearer", "basic", "forward-client-token"],
      undefined,
    );
    const envName = (key: string): string | undefined => {
      const v = this.string(o[key], [...path, key]);
      if (v !== undefined && !/^[A-Z_][A-Z0-9_]*$/.test(v)) {
        this.issue([...path, key], "must name an environment variable (A-Z, 0-9, _)");
        return undefined;
      }
      return v;
    };
    const extra = (allowed: string[]) => {
      for (const k of ["token_env", "username", "password_env"]) {
        if (o[k] !== undefined && !allowed.includes(k))
          this.issue([...path, k], `not used with type ${JSON.stringify(type)}`, true);
      }
    };
    switch (type) {
      case "none":
      case "forward-client-token":
        extra([]);
        return { type };
      case "bearer": {
        extra(["token_env"]);
        const tokenEnv = envName("token_env");
        return tokenEnv === undefined ? undefined : { type, tokenEnv, token: "" };
      }
      case "basic": {
        extra(["username", "password_env"]);
        const username = this.string(o.username, [...path, "username"]);
        if (username !== undefined && username.includes(":"))
          this.issue([...path, "username"], 'must not contain ":"');
        const passwordEnv = envName("password_env");
        return username === undefined || passwordEnv === undefined || username.includes(":")
          ? undefined
          : { type, username, passwordEnv, password: "" };
      }
      default:
        return undefined;
    }
  }

  private oneOf<T extends string, F extends T | undefined>(
    value: unknown,
    path: Path,
    allowed: readonly T[],
    fallback: F,
  ): T | F {
    if (value === undefined || value === null) {
      if (fallback === undefined) this.issue(path, `required: one of ${allowed.join(", ")}`);
      return fallback;
    }
    if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
    this.issue(path, `must be one of ${allowed.join(", ")}, got ${describe(value)}`);
    return fallback;
  }

  private logging(value: unknown, path: Path): LoggingConfig | undefined {
    const o = value === undefined ? {} : this.object(value, path, ["level", "decisions", "unmask"]);
    if (!o) return undefined;
    let level: LogLevel = "info";
    if (o.level !== undefined) {
      if (typeof o.level === "string" && LOG_LEVELS.includes(o.level as LogLevel))
        level = o.level as LogLevel;
      else this.issue([...path, "level"], `must be one of ${LOG_LEVELS.join(", ")}`);
    }
    return {
      level,
      decisions: this.boolean(o.decisions, [...path, "decisions"], true),
      unmask: this.boolean(o.unmask, [...path, "unmask"], false),
    };
  }

  // --- primitives ---------------------------------------------------------------------------

  private object(value: unknown, path: Path, allowed: string[] | null): Record<string, unknown> | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.issue(path, `must be a mapping, got ${describe(value)}`);
      return undefined;
    }
    const o = value as Record<string, unknown>;
    if (allowed) {
      for (const key of Object.keys(o)) {
        if (!allowed.includes(key))
          this.issue([...path, key], `unknown field; expected one of ${allowed.join(", ")}`, true);
      }
    }
    return o;
  }

  private string(value: unknown, path: Path): string | undefined {
    if (value === undefined || value === null) {
      this.issue(path, "required");
      return undefined;
    }
    if (typeof value !== "string" || value === "") {
      this.issue(path, `must be a non-empty string, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  private number(value: unknown, path: Path, fallback: number, min: number, max: number): number {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      this.issue(path, `must be a number from ${min} to ${max}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  private boolean(value: unknown, path: Path, fallback: boolean): boolean {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") {
      this.issue(path, `must be true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  private size(value: unknown, path: Path, fallback: number): number {
    if (value === undefined || value === null) return fallback;
    if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
    const m = typeof value === "string" ? /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(value) : null;
    const unit = m ? SIZE_UNITS[(m[2] || "b").toLowerCase()] : undefined;
    if (!m || unit === undefined || Number(m[1]) <= 0) {
      this.issue(path, `must be a size such as 1048576, "512kb" or "1mb", got ${describe(value)}`);
      return fallback;
    }
    return Number(m[1]) * unit;
  }

  private issue(path: Path, message: string, atKey = false): void {
    const pos = this.position(path, atKey);
    this.issues.push({ field: formatPath(path), message, ...pos });
  }

  /** Line and column of the node at `path` (or of its key), else of the nearest ancestor that exists. */
  private position(path: Path, atKey: boolean): { line?: number; col?: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      let offset: number | undefined;
      if (atKey && n === path.length && n > 0) {
        const parent = sub.length > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find(
            (p) => isPair(p) && isScalar(p.key) && p.key.value === sub[sub.length - 1],
          );
          const key = pair?.key;
          if (isScalar(key) && key.range) offset = key.range[0];
        }
      } else {
        const node = sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true);
        const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
        if (range) offset = range[0];
      }
      if (offset !== undefined) {
        const { line, col } = this.lines.linePos(offset);
        return { line, col };
      }
    }
    return {};
  }
}

function formatPath(path: Path): string {
  if (path.length === 0) return "(root)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${typeof value} ${String(value)}`;
}
