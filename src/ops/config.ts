/**
 * The sidecar's configuration: one YAML file, checked once at start against its JSON Schema
 * (schemas/config.schema.json, src/ops/config-schema.ts) and the checks a schema cannot express
 * (src/ops/config-checks.ts), with precise messages (`file:line:col: field: problem`); then
 * overridden by environment variables for what a deployment sets per environment (listen address,
 * bundle source, secrets). Inside the service the result is trusted: every field has its final
 * type, and every default comes from the schema.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { DEFAULT_CONFIG_YAML, DEMO_ISSUER, PACKAGE_ROOT } from "./default-config.js";
import { Issues, checkSchema, type ConfigIssue } from "./config-schema.js";
import { baseUrlProblem, checkSemantics, parseListen, parseSize, resolvePath } from "./config-checks.js";
import { SmartAuthzError } from "../core/errors.js";

export type { ConfigIssue } from "./config-schema.js";
export { parseListen } from "./config-checks.js";

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
  /**
   * Take a caller's `now` (the decision time) instead of the server clock. Off by default: a
   * forged `now` would move break-the-glass time boxes and backdate audit records.
   */
  trustForwardedNow: boolean;
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
  /** Open connections at most (Node's `server.maxConnections`); more are closed at once. */
  maxConnections: number;
  /** A request's headers must have arrived this long after its first byte, or it gets 408. */
  headersTimeoutMs: number;
  /** A whole request (headers and body) must have arrived this long after its first byte, or 408. */
  requestTimeoutMs: number;
  /** Serve the OPA-compatible Data API (`/v1/data/...`). */
  dataApi: boolean;
}

/**
 * Bounds on what a caller may ask the policy to evaluate, checked before evaluation, and the rate
 * limit on callers whose requests run into the evaluation deadline.
 */
export interface LimitsConfig {
  /** Longest FHIR request URL (relative to the base, query included), in bytes. */
  maxUrlBytes: number;
  /** Most search parameters in one request (URL and POST _search body together). */
  maxParameters: number;
  /** Most occurrences of one parameter name in one request. */
  maxParameterRepeats: number;
  /** Token bucket of evaluation timeouts per client; `burst` 0 turns the limit off. */
  policyTimeouts: { burst: number; refillMs: number };
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
  /** The level of the one line logged per HTTP request ("silent": none). */
  requests: LogLevel;
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
  limits: LimitsConfig;
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

/**
 * Who confines user/ scopes (`policy.user.access`, docs/user-access.md): the policy, from the
 * relationships document (the default), or the FHIR server itself (`server`, only when configured).
 */
export function userAccessMode(config: Pick<Config, "policy">): "relationships" | "server" {
  const user = config.policy.user;
  const access =
    typeof user === "object" && user !== null ? (user as { access?: unknown }).access : undefined;
  return access === "server" ? "server" : "relationships";
}

/** One line for the start-up banner and log: how user/ scopes are confined here. */
export function userAccessSummary(config: Pick<Config, "policy" | "data">): string {
  if (userAccessMode(config) === "server") {
    return "user/ scopes are NOT confined by this service (policy.user.access: server): the FHIR server must enforce each user's permissions";
  }
  return config.data.relationships
    ? "user/ scopes are confined to each user's own compartment and related patients (policy.user.access: relationships, data.relationships)"
    : "user/ scopes are confined to each user's own compartment (policy.user.access: relationships); no data.relationships is configured, so no user is related to any patient";
}

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
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || raw === undefined) {
    throw configError(origin, [
      {
        field: "(root)",
        message: "the config is empty; expected a mapping with at least `tokens` and `bundle`",
      },
    ]);
  }
  // The schema fills in defaults; the policy section goes to the policy exactly as written, so
  // that the bundle's own defaults apply to what the file leaves out.
  const validated = structuredClone(raw);
  const issues = new Issues(doc, lineCounter);
  checkSchema(validated, issues);
  checkSemantics(validated, issues, { baseDir, reservedEnv: RESERVED_ENV });
  if (issues.list.length > 0) throw configError(origin, issues.sorted());
  return buildConfig(
    validated as FileConfig,
    (raw as { policy?: Record<string, unknown> }).policy,
    origin,
    baseDir,
  );
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

// --- the typed config, from the validated file ------------------------------------------------

/** The file as the schema describes it, after validation filled in the defaults. */
interface FileConfig {
  server: {
    listen: string | number;
    body_limit: string | number;
    shutdown_grace_seconds: number;
    fhir_base_path: string;
    keep_alive_timeout_seconds: number;
    max_connections: number;
    headers_timeout_seconds: number;
    request_timeout_seconds: number;
    data_api: boolean;
  };
  tokens: {
    issuers: {
      issuer: string;
      audience: string | string[];
      algorithms: string[];
      jwks_uri?: string;
      jwks_file?: string;
      jwks?: { keys: Record<string, unknown>[] };
    }[];
    clock_tolerance_seconds: number;
    max_token_bytes: number;
    cache_max_entries: number;
    jwks_cooldown_seconds: number;
    jwks_cache_max_age_seconds: number;
    jwks_timeout_ms: number;
    trust_forwarded_claims: boolean;
    trust_forwarded_now: boolean;
  };
  bundle: {
    source: string;
    poll_interval_seconds: number;
    timeout_ms: number;
    verification: {
      public_key?: string;
      public_key_file?: string;
      algorithm: string;
      key_id?: string;
      scope: string;
    } | null;
  };
  data: Record<
    string,
    { source: string; poll_interval_seconds: number; timeout_ms: number; max_size: string | number }
  > | null;
  logging: LoggingConfig;
  gateway: { enforcing: { name: string; key_env: string }[] | null } | null;
  limits: {
    max_url_bytes: string | number;
    max_parameters: number;
    max_parameter_repeats: number;
    policy_timeouts: { burst: number; refill_seconds: number };
  };
  audit: { path: string; sync: AuditConfig["sync"] } | null;
  proxy: {
    listen: string | number;
    base_path: string;
    public_base_url?: string;
    body_limit: string | number;
    upstream: {
      url: string;
      auth: { type: UpstreamAuth["type"]; token_env?: string; username?: string; password_env?: string };
      timeout_ms: number;
      max_response_size: string | number;
      capability_refresh_seconds: number;
    };
    narrowing: { strategy: NarrowingStrategy; fallback: NarrowingFallback };
    cursor: { key_env: string; ttl_seconds: number };
  } | null;
}

function buildConfig(
  file: FileConfig,
  policy: Record<string, unknown> | null | undefined,
  origin: string,
  baseDir: string,
): Config {
  const { server: s, tokens: t, bundle: b } = file;
  const listen = parseListen(String(s.listen)) as { host: string; port: number };
  const v = b.verification;
  const tokens: TokensConfig = {
    issuers: t.issuers.map((i) => ({
      issuer: i.issuer,
      audience: typeof i.audience === "string" ? [i.audience] : i.audience,
      algorithms: i.algorithms,
      jwks: jwksSource(i, baseDir),
    })),
    clockToleranceSeconds: t.clock_tolerance_seconds,
    maxTokenBytes: t.max_token_bytes,
    cacheMaxEntries: t.cache_max_entries,
    jwksCooldownMs: t.jwks_cooldown_seconds * 1000,
    jwksCacheMaxAgeMs: t.jwks_cache_max_age_seconds * 1000,
    jwksTimeoutMs: t.jwks_timeout_ms,
    trustForwardedClaims: t.trust_forwarded_claims,
    trustForwardedNow: t.trust_forwarded_now,
  };
  return {
    origin,
    server: {
      ...listen,
      bodyLimitBytes: parseSize(s.body_limit) as number,
      shutdownGraceMs: s.shutdown_grace_seconds * 1000,
      fhirBasePath: s.fhir_base_path,
      keepAliveTimeoutMs: s.keep_alive_timeout_seconds * 1000,
      maxConnections: s.max_connections,
      headersTimeoutMs: s.headers_timeout_seconds * 1000,
      requestTimeoutMs: s.request_timeout_seconds * 1000,
      dataApi: s.data_api,
    },
    tokens,
    bundle: {
      source: bundleSource(b.source, baseDir),
      pollIntervalMs: b.poll_interval_seconds * 1000,
      timeoutMs: b.timeout_ms,
      bearerToken: undefined,
      verification: v
        ? {
            publicKey: v.public_key ?? readFileSync(resolvePath(v.public_key_file!, baseDir), "utf8"),
            algorithm: v.algorithm,
            keyId: v.key_id,
            scope: v.scope || undefined,
          }
        : undefined,
    },
    logging: { ...file.logging },
    gateway: {
      enforcing: (file.gateway?.enforcing ?? []).map((g) => ({ name: g.name, keyEnv: g.key_env, key: "" })),
    },
    limits: {
      maxUrlBytes: parseSize(file.limits.max_url_bytes) as number,
      maxParameters: file.limits.max_parameters,
      maxParameterRepeats: file.limits.max_parameter_repeats,
      policyTimeouts: {
        burst: file.limits.policy_timeouts.burst,
        refillMs: file.limits.policy_timeouts.refill_seconds * 1000,
      },
    },
    pool: {},
    data: Object.fromEntries(
      Object.entries(file.data ?? {}).map(([name, d]) => [
        name,
        {
          source: bundleSource(d.source, baseDir),
          pollIntervalMs: d.poll_interval_seconds * 1000,
          timeoutMs: d.timeout_ms,
          maxBytes: parseSize(d.max_size) as number,
          bearerToken: undefined,
        },
      ]),
    ),
    audit: file.audit ? { path: resolvePath(file.audit.path, baseDir), sync: file.audit.sync } : undefined,
    policy: policy ?? {},
    proxy: file.proxy ? proxyConfig(file.proxy) : undefined,
    demo: tokens.issuers.some((i) => i.issuer === DEMO_ISSUER),
  };
}

function proxyConfig(p: NonNullable<FileConfig["proxy"]>): ProxyConfig {
  const listen = parseListen(String(p.listen)) as { host: string; port: number };
  const a = p.upstream.auth;
  const auth: UpstreamAuth =
    a.type === "bearer"
      ? { type: "bearer", tokenEnv: a.token_env!, token: "" }
      : a.type === "basic"
        ? { type: "basic", username: a.username!, passwordEnv: a.password_env!, password: "" }
        : { type: a.type };
  return {
    ...listen,
    basePath: p.base_path.replace(/\/+$/, ""),
    publicBaseUrl: p.public_base_url?.replace(/\/+$/, ""),
    bodyLimitBytes: parseSize(p.body_limit) as number,
    upstream: {
      url: p.upstream.url.replace(/\/+$/, ""),
      auth,
      timeoutMs: p.upstream.timeout_ms,
      maxResponseBytes: parseSize(p.upstream.max_response_size) as number,
      capabilityRefreshMs: p.upstream.capability_refresh_seconds * 1000,
    },
    narrowing: { ...p.narrowing },
    cursor: { keyEnv: p.cursor.key_env, key: undefined, ttlMs: p.cursor.ttl_seconds * 1000 },
  };
}

function jwksSource(issuer: FileConfig["tokens"]["issuers"][number], baseDir: string): JwksSource {
  if (issuer.jwks_uri !== undefined) return { kind: "url", url: issuer.jwks_uri };
  if (issuer.jwks_file !== undefined) return { kind: "file", path: resolvePath(issuer.jwks_file, baseDir) };
  return { kind: "inline", jwks: { keys: issuer.jwks!.keys } };
}

function bundleSource(value: string, baseDir: string): BundleConfig["source"] {
  if (/^https?:\/\//i.test(value)) return { kind: "url", url: value };
  return { kind: "file", path: resolvePath(value, baseDir) };
}

// --- the environment ---------------------------------------------------------------------------

/** Variables the service reads for its own settings: never a gateway's key. */
const RESERVED_ENV: readonly string[] = Object.values(ENV);

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
  };
  out.proxy = config.proxy ? proxyFromEnv(config.proxy, env) : undefined;
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
  const text = JSON.stringify({
    tokens: { issuers: [] },
    bundle: { source: "-" },
    proxy: { upstream: { url: upstreamUrl } },
  });
  const doc = parseDocument(text, { lineCounter });
  const validated = structuredClone(doc.toJS()) as Record<string, unknown>;
  const issues = new Issues(doc, lineCounter);
  checkSchema(validated, issues);
  checkSemantics(validated, issues, { baseDir: process.cwd(), reservedEnv: RESERVED_ENV });
  const problems = issues.sorted().filter((i) => i.field.startsWith("proxy"));
  if (problems.length > 0) throw configError("--upstream", problems);
  const proxy = proxyConfig((validated as unknown as FileConfig).proxy!);
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
    const problem = baseUrlProblem(upstream);
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
