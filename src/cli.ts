#!/usr/bin/env node
/**
 * The `smart-authz` command line: one table of commands (COMMANDS), each with its options, help
 * text, examples and exit codes, parsed with node:util `parseArgs`. `smart-authz help <command>`
 * and `<command> --help` print a command's help. Adding a command is one entry in the table.
 *
 * Settings that a deployment sets every day have flags; a flag wins over the environment variable
 * (SMART_AUTHZ_*), which wins over the config file (see `serviceConfig`).
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 `eval --fail-on-deny`
 * decided deny.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { DestinationStream } from "pino";
import { SignJWT, importJWK, type JWTPayload } from "jose";
import { checkConfig as checkConfigFile } from "./check-config.js";
import { BundleSource } from "./policy/bundle-source.js";
import { DataDocumentSource, type DataDocumentName } from "./policy/data-document.js";
import { readBundle } from "./policy/bundle.js";
import {
  ENV,
  loadConfig,
  parseListen,
  userAccessSummary,
  withProxy,
  type Config,
  type LogLevel,
} from "./ops/config.js";
import { PROXY_OPTIONS, proxyFlags } from "./proxy/options.js";
import { CONTRACT_VERSION, type DecisionInput } from "./core/contract.js";
import { DEMO_AUDIENCE, DEMO_ISSUER } from "./ops/default-config.js";
import { DEMO_PRIVATE_JWK } from "./auth/demo-keys.js";
import type { PolicyEngine } from "./policy/engine.js";
import { SmartAuthzError, describeError } from "./core/errors.js";
import { VERSION, startService } from "./server.js";

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => string;
  env: NodeJS.ProcessEnv;
  /** How the user runs this program, for help and hints: `smart-authz`, or `node dist/src/cli.js` in a clone. */
  prog?: string;
  /** Where `serve` writes its JSON log lines (default stdout). */
  logDestination?: DestinationStream;
}

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2, denied: 3 } as const;

const EXIT_CODES_HELP = "exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error";

/** An option of a command: what parseArgs needs, plus its help. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Placeholder in the help, e.g. FILE. */
  arg?: string;
  help: string;
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  io: CliIO;
  prog: string;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The synopsis after the program name, e.g. `serve [options]`. */
  synopsis: string;
  /** Paragraphs shown under the synopsis. */
  description: string;
  options: Record<string, OptionSpec>;
  /** At most this many positional arguments. */
  maxPositionals: number;
  /** Example command lines without the program name; `#` starts a comment. */
  examples: string[];
  /** Exit codes particular to this command (the common ones are always listed). */
  exitCodes?: string;
  run(ctx: CommandContext): Promise<number>;
}

export class UsageError extends Error {}

// --- Options shared by the commands that run the policy -------------------------------------

const LOG_LEVELS = {
  fatal: 1,
  error: 1,
  warn: 1,
  info: 1,
  debug: 1,
  trace: 1,
  silent: 1,
} satisfies Record<LogLevel, 1>;

const CONFIG_OPTION: OptionSpec = {
  type: "string",
  short: "c",
  arg: "FILE",
  help: `the YAML config file [env ${ENV.config}; default: the embedded DEMO config]`,
};

const BUNDLE_OPTION: OptionSpec = {
  type: "string",
  short: "b",
  arg: "PATH|URL",
  help: `the policy bundle: a .tar.gz, an extracted directory or an http(s) bundle server [env ${ENV.bundle}; config bundle.source]`,
};

/** The flags of every command that runs the service; a `proxy` command can reuse them. */
export const SERVICE_OPTIONS: Record<string, OptionSpec> = {
  addr: {
    type: "string",
    short: "a",
    arg: "ADDR",
    help: `listen address, HOST:PORT or PORT (PORT alone or :PORT binds 127.0.0.1) [env ${ENV.listen}; config server.listen; default 127.0.0.1:8282]`,
  },
  config: CONFIG_OPTION,
  bundle: BUNDLE_OPTION,
  "log-level": {
    type: "string",
    short: "l",
    arg: "LEVEL",
    help: `${Object.keys(LOG_LEVELS).join(", ")} [env ${ENV.logLevel}; config logging.level; default info]`,
  },
  "fhir-base-path": {
    type: "string",
    arg: "PATH",
    help: "path of the FHIR base on the gateway, removed from forwarded URIs, e.g. /fhir [config server.fhir_base_path; default /]",
  },
};

/**
 * The service config: the file (--config, else $SMART_AUTHZ_CONFIG, else the embedded default),
 * then the environment, then the flags. Flags are validated here so that a bad value is reported
 * under the flag's name.
 */
export function serviceConfig(values: CommandContext["values"], env: NodeJS.ProcessEnv): Config {
  const flagEnv: NodeJS.ProcessEnv = { ...env };
  const addr = stringValue(values.addr);
  if (addr !== undefined) {
    const parsed = parseListen(addr);
    if (typeof parsed === "string") throw new UsageError(`--addr: ${parsed}`);
    flagEnv[ENV.listen] = addr;
  }
  const bundle = stringValue(values.bundle);
  if (bundle !== undefined) {
    if (bundle === "") throw new UsageError("--bundle: expected a path or an http(s) URL");
    flagEnv[ENV.bundle] = bundle;
  }
  const level = stringValue(values["log-level"]);
  if (level !== undefined) {
    if (!(level in LOG_LEVELS))
      throw new UsageError(`--log-level: must be one of ${Object.keys(LOG_LEVELS).join(", ")}`);
    flagEnv[ENV.logLevel] = level;
  }
  const config = loadConfig(stringValue(values.config), flagEnv);
  const basePath = stringValue(values["fhir-base-path"]);
  if (basePath !== undefined) {
    if (!basePath.startsWith("/")) throw new UsageError('--fhir-base-path: must start with "/", e.g. /fhir');
    config.server.fhirBasePath = basePath;
  }
  return config;
}

function stringValue(v: CommandContext["values"][string]): string | undefined {
  return typeof v === "string" ? v : undefined;
}

// --- The commands ----------------------------------------------------------------------------

const serve: Command = {
  name: "serve",
  summary: "run the decision service",
  synopsis: "serve [options]",
  description:
    "Runs the sidecar decision service: POST /v1/decision, /v1/filter, /v1/gateway/..., the\n" +
    "OPA-compatible /v1/data/..., /health, /ready, /status, /metrics.\n" +
    "Without a config it uses the embedded DEMO config, which trusts a token issuer whose private\n" +
    "key is published in the repository: for trying it out, never for production.\n" +
    "SIGHUP reloads the bundle and reopens the audit log; SIGTERM and SIGINT drain and stop.",
  options: SERVICE_OPTIONS,
  maxPositionals: 0,
  examples: [
    "serve                                    # embedded DEMO config on 127.0.0.1:8282",
    "serve --addr 127.0.0.1:8190 --log-level warn",
    "serve --config /etc/smart-authz/sidecar.yaml --bundle https://bundles.example.org/smart.tar.gz",
    "serve --fhir-base-path /fhir             # behind a gateway that serves FHIR under /fhir",
  ],
  exitCodes: "0 stopped cleanly, 1 cannot start (bundle, port in use), 2 bad flag or invalid config",
  async run({ values, io, prog }) {
    const config = serviceConfig(values, io.env);
    const service = await startService(config, {
      signals: true,
      ...(io.logDestination ? { logDestination: io.logDestination } : {}),
    });
    io.stderr(banner(prog, service.url, config, service.bundles));
    await new Promise<void>((r) => service.server.once("close", () => r()));
    return EXIT.ok;
  },
};

const proxy: Command = {
  name: "proxy",
  summary: "run the enforcing FHIR proxy in front of a FHIR server (and the decision service)",
  synopsis: "proxy [options]",
  description:
    "Runs the decision service and, on its own port, a reverse proxy for the FHIR REST API that\n" +
    "verifies the token, decides, and carries out every decision against the FHIR server: narrowed\n" +
    "searches, stored-resource checks, filtered answers, signed paging links (docs/proxy.md).\n" +
    "Needs a `proxy:` section in the config, or --upstream.",
  options: { ...SERVICE_OPTIONS, ...PROXY_OPTIONS },
  maxPositionals: 0,
  examples: [
    "proxy --upstream http://127.0.0.1:8090/fhir        # embedded DEMO config, FHIR on 127.0.0.1:8080/fhir",
    "proxy --config /etc/smart-authz/proxy.yaml --proxy-addr 0.0.0.0:8443",
  ],
  exitCodes:
    "0 stopped cleanly, 1 cannot start, 2 bad flag, invalid config or no proxy: section / --upstream",
  async run({ values, io }) {
    const flags = proxyFlags(values, io.env);
    const config = withProxy(serviceConfig(values, flags.env), flags.upstream, flags.env);
    const service = await startService(config, {
      signals: true,
      proxy: true,
      ...(io.logDestination ? { logDestination: io.logDestination } : {}),
    });
    io.stderr(
      `smart-authz ${VERSION} proxy on ${service.proxy?.publicBase} -> ${config.proxy?.upstream.url}; decision API on ${service.url}\n`,
    );
    await new Promise<void>((r) => service.server.once("close", () => r()));
    return EXIT.ok;
  },
};

/** The human start-up banner on stderr; its "try" lines run as printed. */
export function banner(
  prog: string,
  url: string,
  config: Config,
  bundles: { current?: { revision: string } | undefined; status: { source: string } },
): string {
  const lines = [
    `smart-authz ${VERSION} listening on ${url}`,
    `  policy revision ${bundles.current?.revision ?? "(none yet)"} from ${bundles.status.source}`,
    `  config ${config.origin}`,
    `  ${userAccessSummary(config)}`,
  ];
  if (config.demo) {
    lines.push(
      `  WARNING: the DEMO issuer ${DEMO_ISSUER} is trusted; its private key is public. Never use this in production.`,
      `  try:`,
      `    TOKEN=$(${prog} token --scope "patient/Observation.rs" --patient 123)`,
      `    curl -s ${url}/v1/decision -H 'content-type: application/json' \\`,
      `      -d "{\\"token\\":\\"$TOKEN\\",\\"request\\":{\\"method\\":\\"GET\\",\\"url\\":\\"Observation?patient=123\\"}}"`,
    );
  }
  return `${lines.join("\n")}\n`;
}

const checkConfig: Command = {
  name: "check-config",
  summary: "validate a config file and what it names: bundle, signature, data documents, keys",
  synopsis: "check-config [options] FILE",
  description:
    "Validates a config file against schemas/config.schema.json and reports every problem at once\n" +
    "with file:line:col. Then checks what the config names, as `serve` would at start: loads the\n" +
    "policy bundle (a file or directory), verifies its signature when bundle.verification is set,\n" +
    "validates the data documents and JWKS files, and prints exactly what it checked. What lives\n" +
    "behind a URL is not fetched unless --fetch is given, and the report says so.\n" +
    "The environment variables that `serve` reads (SMART_AUTHZ_LISTEN, ..._BUNDLE, ..._LOG_LEVEL)\n" +
    "apply here too, so check the config with the environment it will run with.",
  options: {
    fetch: {
      type: "boolean",
      help: "also download what lives behind URLs (bundle server, data documents, JWKS) and check it",
    },
    "config-only": {
      type: "boolean",
      help: "check the config file only, not what it names (e.g. in CI, before the bundle is built)",
    },
  },
  maxPositionals: 1,
  examples: [
    "check-config /etc/smart-authz/sidecar.yaml",
    "check-config --fetch /etc/smart-authz/sidecar.yaml   # also download URL sources",
    "check-config --config-only deploy/sidecar.yaml      # in CI, before the bundle is built",
  ],
  exitCodes: "0 good, 1 the bundle (or its signature), a data document or a key file fails, 2 invalid config",
  async run({ values, positionals, io }) {
    const file = positionals[0];
    if (!file) throw new UsageError("check-config needs a config file");
    if (values["config-only"] === true) {
      const config = loadConfig(file, { ...io.env, [ENV.config]: undefined });
      io.stdout(
        `${file}: OK (the config file only: --config-only)\n` +
          `  listen: ${config.server.host}:${config.server.port}\n` +
          (config.demo ? "  WARNING: the DEMO issuer is trusted; never use this config in production\n" : ""),
      );
      return EXIT.ok;
    }
    return checkConfigFile(file, io, { fetch: values.fetch === true });
  },
};

const REGISTERED_CLAIMS: Record<string, string> = {
  iss: "the demo key signs only for the demo issuer",
  aud: "use --audience",
  exp: "use --ttl",
  iat: "use --iat",
};

const token: Command = {
  name: "token",
  summary: "mint a DEMO access token (published demo key; never in production)",
  synopsis: "token [options]",
  description:
    `Prints a signed ES256 access token from the DEMO issuer ${DEMO_ISSUER}, whose\n` +
    "private key is published in this repository. Only configs that trust the demo issuer (the\n" +
    "embedded DEMO config does) accept it. The token carries the claims below; --claims adds any\n" +
    "others, and a named option wins over the same claim in --claims.",
  options: {
    scope: {
      type: "string",
      short: "s",
      arg: "SCOPES",
      help: 'the granted scopes, space-separated [default "patient/*.rs launch/patient openid fhirUser"]',
    },
    patient: { type: "string", short: "p", arg: "ID", help: "the launch context patient (claim `patient`)" },
    "fhir-user": {
      type: "string",
      arg: "REF",
      help: "the user's FHIR resource, e.g. Practitioner/9 (claim `fhirUser`)",
    },
    sub: { type: "string", arg: "ID", help: "the subject [default demo-user]" },
    "client-id": { type: "string", arg: "ID", help: "the app (claim `client_id`) [default demo-app]" },
    roles: {
      type: "string",
      arg: "LIST",
      help: "the user's roles, comma-separated (claim `roles`, an array), e.g. er-physician",
    },
    "purpose-of-use": {
      type: "string",
      arg: "LIST",
      help: "purposes of use, comma-separated (claim `purpose_of_use`, an array), e.g. BTG",
    },
    "btg-reason": {
      type: "string",
      arg: "TEXT",
      help: "the break-the-glass reason (claim `btg_reason`)",
    },
    audience: { type: "string", arg: "AUD", help: `the audience (claim \`aud\`) [default ${DEMO_AUDIENCE}]` },
    iat: {
      type: "string",
      arg: "TIME",
      help: "issued-at: Unix seconds, an RFC 3339 time, or now-<N>s|m|h (e.g. now-2h) [default now]",
    },
    ttl: {
      type: "string",
      arg: "SECONDS",
      help: "lifetime from now, 1 to 86400 (claim `exp` = now + SECONDS) [default 3600]",
    },
    claims: {
      type: "string",
      arg: "JSON",
      help: 'extra claims as a JSON object, e.g. \'{"jti":"t1","extensions":{...}}\'',
    },
  },
  maxPositionals: 0,
  examples: [
    'token --scope "patient/Observation.rs" --patient 123',
    'token --scope "user/Observation.rs" --fhir-user Practitioner/9 --roles er-physician \\\n' +
      '      --purpose-of-use BTG --btg-reason "unconscious patient"',
    'token --scope "system/*.rs" --client-id backend --iat now-2h --ttl 600',
    'token --claims \'{"jti":"t-1","tenant":"a"}\'',
  ],
  async run({ values, io }) {
    const str = (k: string) => stringValue(values[k]);
    const list = (k: string) =>
      str(k)
        ?.split(",")
        .map((x) => x.trim())
        .filter((x) => x !== "");
    const nowSeconds = Math.floor(Date.now() / 1000);
    const ttlText = str("ttl");
    const ttl = ttlText === undefined ? 3600 : Number(ttlText);
    if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 86_400)
      throw new UsageError("--ttl must be a whole number of seconds from 1 to 86400");
    const iatText = str("iat");
    const iat = iatText === undefined ? nowSeconds : parseTime(iatText, nowSeconds);
    if (iat === undefined)
      throw new UsageError("--iat must be Unix seconds, an RFC 3339 time or now-<N>s|m|h, e.g. now-2h");

    let extra: Record<string, unknown> = {};
    const claimsText = str("claims");
    if (claimsText !== undefined) {
      try {
        extra = JSON.parse(claimsText) as Record<string, unknown>;
      } catch (err) {
        throw new UsageError(`--claims: not valid JSON (${(err as Error).message})`);
      }
      if (typeof extra !== "object" || extra === null || Array.isArray(extra))
        throw new UsageError("--claims: must be a JSON object of claims");
      for (const [claim, why] of Object.entries(REGISTERED_CLAIMS)) {
        if (claim in extra) throw new UsageError(`--claims: ${claim} cannot be set there; ${why}`);
      }
    }
    const claims: JWTPayload & Record<string, unknown> = {
      scope: "patient/*.rs launch/patient openid fhirUser",
      client_id: "demo-app",
      sub: "demo-user",
      ...extra,
    };
    const named: [string, string, unknown][] = [
      ["scope", "scope", str("scope")],
      ["patient", "patient", str("patient")],
      ["fhir-user", "fhirUser", str("fhir-user")],
      ["sub", "sub", str("sub")],
      ["client-id", "client_id", str("client-id")],
      ["roles", "roles", list("roles")],
      ["purpose-of-use", "purpose_of_use", list("purpose-of-use")],
      ["btg-reason", "btg_reason", str("btg-reason")],
    ];
    for (const [, claim, value] of named) if (value !== undefined) claims[claim] = value;

    const key = await importJWK(DEMO_PRIVATE_JWK, "ES256");
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: DEMO_PRIVATE_JWK.kid, typ: "at+jwt" })
      .setIssuer(DEMO_ISSUER)
      .setAudience(str("audience") ?? DEMO_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(nowSeconds + ttl)
      .sign(key);
    io.stdout(`${jwt}\n`);
    io.stderr(
      "DEMO token signed with the published demo key: accepted only by configs that trust the demo issuer.\n",
    );
    return EXIT.ok;
  },
};

/** Unix seconds, an RFC 3339 time, or now-<N>s|m|h; undefined when it is none of them. */
export function parseTime(text: string, nowSeconds: number): number | undefined {
  if (/^\d{1,12}$/.test(text)) return Number(text);
  const rel = /^now(?:-(\d{1,9})([smh]))?$/.exec(text);
  if (rel) {
    if (rel[1] === undefined) return nowSeconds;
    return nowSeconds - Number(rel[1]) * { s: 1, m: 60, h: 3600 }[rel[2] as "s" | "m" | "h"];
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000);
  }
  return undefined;
}

const evalCommand: Command = {
  name: "eval",
  summary: "print the decision for a contract input (no service needed)",
  synopsis: "eval [options] [FILE|-]",
  description:
    "Evaluates the policy bundle on a contract input (docs/contract.md) and prints the decision\n" +
    "document. The input carries verified `claims` (no token is checked here), the `request`,\n" +
    "and optionally `resource`, `response` and `now` (default: the current time, as /v1/decision).\n" +
    "FILE - or no FILE reads standard input. The config's `policy:` section is applied.",
  options: {
    config: CONFIG_OPTION,
    bundle: BUNDLE_OPTION,
    "fail-on-deny": { type: "boolean", help: "exit 3 when the decision is deny (for scripts and CI)" },
  },
  maxPositionals: 1,
  examples: [
    "eval examples/input.json",
    "eval --config sidecar.yaml - < input.json",
    "eval --fail-on-deny examples/input.json && echo allowed",
  ],
  exitCodes:
    "0 a decision was printed (allow, filter or deny), 1 the bundle cannot be loaded, 2 bad input, 3 deny with --fail-on-deny",
  async run({ values, positionals, io }) {
    const source = positionals[0] ?? "-";
    let text: string;
    try {
      text = source === "-" ? io.stdin() : readFileSync(source, "utf8");
    } catch (err) {
      throw new SmartAuthzError("INPUT_INVALID", `cannot read ${source}: ${(err as Error).message}`);
    }
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch (err) {
      throw new SmartAuthzError(
        "INPUT_INVALID",
        `${source === "-" ? "stdin" : source}: not valid JSON (${(err as Error).message})`,
      );
    }
    validateEvalInput(input);
    const engine = await loadEngine(values, io);
    const decision = engine.decide({ ...input, now: input.now ?? new Date().toISOString() });
    io.stdout(`${JSON.stringify(decision, null, 2)}\n`);
    return values["fail-on-deny"] === true && decision.decision === "deny" ? EXIT.denied : EXIT.ok;
  },
};

function validateEvalInput(input: unknown): asserts input is DecisionInput {
  const fail = (m: string): never => {
    throw new SmartAuthzError("INPUT_INVALID", `input: ${m}`);
  };
  if (typeof input !== "object" || input === null || Array.isArray(input))
    fail("must be a JSON object (the contract input)");
  const o = input as Record<string, unknown>;
  if (typeof o.claims !== "object" || o.claims === null || Array.isArray(o.claims))
    fail('"claims" must be an object (verified token claims)');
  const r = o.request as Record<string, unknown> | undefined;
  if (typeof r !== "object" || r === null || Array.isArray(r))
    fail('"request" must be an object with "method" and "url"');
  if (typeof r!.method !== "string") fail('"request.method" must be a string');
  if (typeof r!.url !== "string") fail('"request.url" must be a string');
  if (o.now !== undefined && typeof o.now !== "string") fail('"now" must be an RFC 3339 time string');
}

const scopes: Command = {
  name: "scopes",
  summary: "print how the policy parses a scope string",
  synopsis: 'scopes [options] "SCOPE STRING"',
  description:
    "Parses a space-separated scope string with the policy's own parser (the smart/api/scopes\n" +
    "entry point) and prints every token with its meaning or its error. `valid` is false when any\n" +
    "token is malformed; the exit code is 0 either way.",
  options: { config: CONFIG_OPTION, bundle: BUNDLE_OPTION },
  maxPositionals: 1,
  examples: [
    'scopes "patient/Observation.rs launch/patient openid fhirUser"',
    'scopes "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"',
    'scopes "patient/Observation.sr"                # invalid: letters out of order',
  ],
  async run({ values, positionals, io, prog }) {
    const scope = positionals[0];
    if (scope === undefined)
      throw new UsageError(`scopes needs a scope string, e.g. ${prog} scopes "patient/*.rs"`);
    const engine = await loadEngine(values, io);
    io.stdout(`${JSON.stringify(engine.parseScopes(scope) ?? null, null, 2)}\n`);
    return EXIT.ok;
  },
};

const version: Command = {
  name: "version",
  summary: "print the versions of smart-authz, its contract, its policy bundle and OPA",
  synopsis: "version [options]",
  description:
    "Prints the smart-authz version (first line, alone: `smart-authz X.Y.Z`), the decision\n" +
    "contract's version, Node.js, and the policy bundle the service would load with these\n" +
    "options: its revision and, for a bundle built by `make build`, the OPA version that built it.",
  options: { config: CONFIG_OPTION, bundle: BUNDLE_OPTION },
  maxPositionals: 0,
  examples: ["version", "version --bundle /etc/smart-authz/bundle.tar.gz"],
  async run({ values, io }) {
    const lines = [
      `smart-authz ${VERSION}`,
      `  decision contract ${CONTRACT_VERSION} (docs/contract.md)`,
      `  node ${process.version}`,
    ];
    const config = serviceConfig({ config: values.config, bundle: values.bundle }, io.env);
    const source = config.bundle.source;
    if (source.kind === "url") {
      lines.push(`  policy bundle ${source.url} (a bundle server: fetched by serve)`);
    } else if (!existsSync(source.path)) {
      lines.push(`  policy bundle ${source.path}: not built (run \`make build\`)`);
    } else {
      try {
        const revision = readBundle(source.path).manifest.revision;
        lines.push(`  policy bundle ${source.path}: revision ${revision || '""'}`);
        const info = buildInfo(source.path);
        lines.push(
          info !== undefined && info.revision === revision && info.opa_version
            ? `  built with OPA ${info.opa_version}`
            : "  built with OPA: unknown (no build-info.json for this revision beside the bundle)",
        );
      } catch (err) {
        lines.push(`  policy bundle ${source.path}: unreadable (${describeError(err)})`);
      }
    }
    io.stdout(`${lines.join("\n")}\n`);
    return EXIT.ok;
  },
};

/** What `make build` records beside the bundle: the OPA version and the revision it built. */
function buildInfo(bundlePath: string): { opa_version?: string; revision?: string } | undefined {
  const file = join(dirname(bundlePath), "build-info.json");
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { opa_version?: string; revision?: string };
  } catch {
    return undefined;
  }
}

const help: Command = {
  name: "help",
  summary: "print the help of a command",
  synopsis: "help [COMMAND]",
  description: "Prints the list of commands, or the options, examples and exit codes of one command.",
  options: {},
  maxPositionals: 1,
  examples: ["help", "help token"],
  async run({ positionals, io, prog }) {
    const name = positionals[0];
    if (name === undefined) {
      io.stdout(globalUsage(prog));
      return EXIT.ok;
    }
    io.stdout(commandHelp(findCommand(name, prog), prog));
    return EXIT.ok;
  },
};

/** Every command, in the order the help lists them. Add a command by adding an entry. */
export const COMMANDS: Command[] = [serve, proxy, checkConfig, token, evalCommand, scopes, version, help];

// --- Running and help ------------------------------------------------------------------------

function findCommand(name: string, prog: string): Command {
  const command = COMMANDS.find((c) => c.name === name);
  if (command) return command;
  const near = closest(
    name,
    COMMANDS.map((c) => c.name),
  );
  throw new UsageError(
    `unknown command ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ""}; run '${prog} help' for the list`,
  );
}

export function globalUsage(prog: string): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
  return (
    `usage: ${prog} <command> [options]\n\n` +
    `Policy-as-code authorization for SMART-on-FHIR: the decision service and its tools.\n\n` +
    `commands:\n` +
    COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}\n`).join("") +
    `\nRun '${prog} help <command>' or '${prog} <command> --help' for its options and examples.\n` +
    `Settings: a flag wins over its environment variable (SMART_AUTHZ_*), which wins over the config file.\n` +
    `${EXIT_CODES_HELP}, 3 eval --fail-on-deny decided deny\n`
  );
}

export function commandHelp(command: Command, prog: string): string {
  const helpOption: OptionSpec = { type: "boolean", short: "h", help: "print this help" };
  const rows = Object.entries({ ...command.options, help: helpOption }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.arg ? ` ${o.arg}` : ""}`;
    return [flag, o.help] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return (
    `usage: ${prog} ${command.synopsis}\n\n` +
    `${command.description}\n\n` +
    `options:\n` +
    rows.map(([f, h]) => `  ${f.padEnd(width)}${h}\n`).join("") +
    `\nexamples:\n` +
    command.examples.map((e) => `  ${prog} ${e}\n`).join("") +
    `\n${command.exitCodes ? `exit codes: ${command.exitCodes}` : EXIT_CODES_HELP}\n`
  );
}

function parse(
  command: Command,
  argv: string[],
  prog: string,
): { values: CommandContext["values"]; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(command.options)) {
    options[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${command.name}: ${parseErrorMessage(err as Error & { code?: string }, command)}`);
  }
  if (parsed.values.help !== true && parsed.positionals.length > command.maxPositionals) {
    throw new UsageError(
      `${command.name}: unexpected argument ${JSON.stringify(parsed.positionals[command.maxPositionals])}; run '${prog} ${command.name} --help'`,
    );
  }
  return { values: parsed.values as CommandContext["values"], positionals: parsed.positionals };
}

/** Names other tools use for an option, pointed to ours in the "did you mean" hint. */
const OPTION_ALIASES: Record<string, string> = {
  listen: "addr",
  port: "addr",
  address: "addr",
  level: "log-level",
  scopes: "scope",
  aud: "audience",
  exp: "ttl",
  claim: "claims",
};

/** parseArgs' messages are written for programmers; say the same thing for users. */
function parseErrorMessage(err: Error & { code?: string }, command: Command): string {
  const names = Object.keys(command.options);
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const option = /'([^']+)'/.exec(err.message)?.[1] ?? "";
    const word = option.replace(/^-+/, "").split("=")[0]!;
    const alias = OPTION_ALIASES[word];
    const near = alias !== undefined && names.includes(alias) ? alias : closest(word, names);
    return `unknown option ${option}${near ? ` (did you mean --${near}?)` : ""}`;
  }
  if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const option = /--[\w-]+/.exec(err.message)?.[0] ?? /'(-[^' ,]+)/.exec(err.message)?.[1] ?? "";
    if (/argument missing/.test(err.message)) return `option ${option} needs a value`;
    if (/ambiguous/.test(err.message))
      return `the value of ${option} starts with "-": write it as ${option}=VALUE`;
    return `option ${option} does not take a value`;
  }
  if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") return "unexpected argument";
  return err.message;
}

/** The candidate within edit distance 2, if exactly one is closest. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length]!;
}

/** Runs one command line; resolves to the exit code. `serve` resolves only when the service stops. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const prog = io.prog ?? "smart-authz";
  const [first, ...rest] = argv;
  try {
    if (first === undefined) throw new UsageError("no command given");
    if (first === "--help" || first === "-h") {
      io.stdout(globalUsage(prog));
      return EXIT.ok;
    }
    if (first === "--version") {
      io.stdout(`smart-authz ${VERSION}\n`);
      return EXIT.ok;
    }
    const command = findCommand(first, prog);
    const { values, positionals } = parse(command, rest, prog);
    if (values.help === true) {
      io.stdout(commandHelp(command, prog));
      return EXIT.ok;
    }
    return await command.run({ values, positionals, io, prog });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`smart-authz: ${err.message}\n` + (first === undefined ? `\n${globalUsage(prog)}` : ""));
      return EXIT.usage;
    }
    if (err instanceof SmartAuthzError && (err.code === "CONFIG_INVALID" || err.code === "INPUT_INVALID")) {
      io.stderr(`smart-authz: ${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr(`smart-authz: ${describeError(err)}\n`);
    return EXIT.failure;
  }
}

/** Loads the policy engine that eval and scopes use: --bundle, else the config's bundle. */
async function loadEngine(values: CommandContext["values"], io: CliIO): Promise<PolicyEngine> {
  const config = serviceConfig({ config: values.config, bundle: values.bundle }, io.env);
  return loadBundle(config, io);
}

/**
 * The bundle once, with the config's `policy:` section and its data documents, as `serve` would
 * load them at start. A data document that cannot be loaded is left out, as `serve` does, with a
 * warning on stderr.
 */
async function loadBundle(config: Config, io: CliIO): Promise<PolicyEngine> {
  const source = new BundleSource({ ...config.bundle, pollIntervalMs: 0 }, config.policy);
  for (const [name, doc] of Object.entries(config.data)) {
    const documents = new DataDocumentSource(
      name as DataDocumentName,
      { ...doc, pollIntervalMs: 0 },
      {
        changed: (n, value) => void source.setDocument(n, value),
        failed: (n, error) =>
          io.stderr(
            `warning: data document ${n} could not be loaded, deciding without it: ${error.message}\n`,
          ),
      },
    );
    await documents.start();
    documents.stop();
  }
  await source.start();
  if (!source.current)
    throw new SmartAuthzError(
      "BUNDLE_INVALID",
      source.status.lastError ?? "the policy bundle could not be loaded",
    );
  return source.current;
}

/**
 * How the user started this program: `smart-authz` when run through the installed command (npm's
 * bin link), otherwise `node <path to cli.js>` relative to the working directory, so that the
 * hints the program prints can be pasted as they are.
 */
export function invocation(script: string | undefined = process.argv[1], cwd = process.cwd()): string {
  if (!script) return "smart-authz";
  if (basename(script) === "smart-authz") return "smart-authz";
  const full = resolve(cwd, script);
  const rel = relative(cwd, full);
  const shown = rel === "" || rel.startsWith("..") || isAbsolute(rel) ? full : rel;
  return `node ${/^[\w./@+-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, "'\\''")}'`}`;
}

function processIO(): CliIO {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    stdin: () => readFileSync(0, "utf8"),
    env: process.env,
    prog: invocation(),
  };
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`smart-authz: ${describeError(err)}\n`);
      process.exitCode = EXIT.failure;
    },
  );
}
