#!/usr/bin/env node
/**
 * The `smart-authz` command.
 *
 *   serve [--config f]            run the sidecar (embedded DEMO config when no config is given)
 *   check-config <f>              validate a config file and exit
 *   token [--scope s] [--patient id] [--fhir-user ref] [--ttl s] [--sub s] [--client-id s]
 *                                 mint a DEMO token signed with the published demo key
 *   eval [file|-] [--config f] [--bundle p]    print the decision for a contract input (with claims)
 *   scopes "<scope string>" [--config f] [--bundle p]   print the parsed scopes
 *
 * Exit codes: 0 ok (eval prints allow and deny alike), 1 runtime failure, 2 usage or input error.
 */
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SignJWT, importJWK } from "jose";
import { BundleSource } from "./policy/bundle-source.js";
import { BundleVerifier } from "./policy/bundle-signature.js";
import { loadConfig, type Config } from "./ops/config.js";
import type { DecisionInput } from "./core/contract.js";
import { DEMO_AUDIENCE, DEMO_ISSUER } from "./ops/default-config.js";
import { DEMO_PRIVATE_JWK } from "./auth/demo-keys.js";
import type { PolicyEngine } from "./policy/engine.js";
import { SmartAuthzError, describeError } from "./core/errors.js";
import { VERSION, startService } from "./server.js";
import { PROXY_USAGE, proxyOptions } from "./proxy/options.js";
import { withProxy } from "./ops/config.js";

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => string;
  env: NodeJS.ProcessEnv;
}

const USAGE = `usage: smart-authz <command> [options]

commands:
  serve [--config FILE]                 run the decision service (default: embedded DEMO config)
  ${PROXY_USAGE}
  check-config FILE                     validate a config file
  token [--scope S] [--patient ID] [--fhir-user REF] [--ttl SECONDS] [--sub S] [--client-id S]
                                        mint a DEMO access token (demo key; never for production)
  eval [FILE|-] [--config FILE] [--bundle PATH]
                                        print the decision for a contract input JSON (with claims)
  scopes "SCOPE STRING" [--config FILE] [--bundle PATH]
                                        print the scopes as the policy parses them

environment: SMART_AUTHZ_CONFIG, SMART_AUTHZ_LISTEN, SMART_AUTHZ_BUNDLE, SMART_AUTHZ_BUNDLE_TOKEN, SMART_AUTHZ_LOG_LEVEL
exit codes: 0 ok, 1 runtime failure, 2 usage or input error`;

class UsageError extends Error {}

/** Runs one command; resolves to the exit code. `serve` resolves only when the service stops. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(rest, io);
      case "proxy":
        return await proxy(rest, io);
      case "check-config":
        return await checkConfig(rest, io);
      case "token":
        return await token(rest, io);
      case "eval":
        return await evalCommand(rest, io);
      case "scopes":
        return await scopes(rest, io);
      case "--version":
      case "version":
        io.stdout(`smart-authz ${VERSION}\n`);
        return 0;
      case "help":
      case "--help":
      case "-h":
        io.stdout(`${USAGE}\n`);
        return 0;
      case undefined:
        throw new UsageError("no command given");
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`smart-authz: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof SmartAuthzError && (err.code === "CONFIG_INVALID" || err.code === "INPUT_INVALID")) {
      io.stderr(`smart-authz: ${err.message}\n`);
      return 2;
    }
    io.stderr(`smart-authz: ${describeError(err)}\n`);
    return 1;
  }
}

function args(
  argv: string[],
  options: Record<string, { type: "string" | "boolean" }>,
  maxPositionals: number,
) {
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    if (parsed.positionals.length > maxPositionals) {
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}`);
    }
    return parsed;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

async function serve(argv: string[], io: CliIO): Promise<number> {
  const { values } = args(argv, { config: { type: "string" } }, 0);
  const config = loadConfig(values.config as string | undefined, io.env);
  const service = await startService(config, { signals: true });
  io.stderr(
    `smart-authz ${VERSION} listening on ${service.url}\n` +
      `  policy revision ${service.bundles.current?.revision ?? "(none yet)"} from ${service.bundles.status.source}\n` +
      `  config ${config.origin}\n` +
      (config.demo
        ? `  WARNING: the DEMO issuer ${DEMO_ISSUER} is trusted; its private key is public. Never use this in production.\n` +
          `  try:  TOKEN=$(smart-authz token --scope "patient/Observation.rs" --patient 123)\n`
        : ""),
  );
  await new Promise<void>((resolve) => service.server.once("close", () => resolve()));
  return 0;
}

async function proxy(argv: string[], io: CliIO): Promise<number> {
  const options = proxyOptions(argv, io.env);
  const config = withProxy(loadConfig(options.configPath, options.env), options.upstream, options.env);
  const service = await startService(config, { signals: true, proxy: true });
  io.stderr(
    `smart-authz ${VERSION} proxy on ${service.proxy?.publicBase} -> ${config.proxy?.upstream.url}; decision API on ${service.url}\n`,
  );
  await new Promise<void>((resolve) => service.server.once("close", () => resolve()));
  return 0;
}

async function checkConfig(argv: string[], io: CliIO): Promise<number> {
  const { positionals } = args(argv, {}, 1);
  const file = positionals[0];
  if (!file) throw new UsageError("check-config needs a config file");
  const config = loadConfig(file, { ...io.env, SMART_AUTHZ_CONFIG: undefined });
  if (config.bundle.verification) await BundleVerifier.create(config.bundle.verification);
  const source = config.bundle.source.kind === "url" ? config.bundle.source.url : config.bundle.source.path;
  io.stdout(
    `${file}: OK\n` +
      `  listen ${config.server.host}:${config.server.port}\n` +
      `  issuers ${config.tokens.issuers.map((i) => i.issuer).join(", ")}\n` +
      `  bundle ${source}${config.bundle.verification ? ` (signature verified, ${config.bundle.verification.algorithm})` : ""}\n` +
      (config.demo ? "  WARNING: the DEMO issuer is trusted; never use this config in production\n" : ""),
  );
  return 0;
}

async function token(argv: string[], io: CliIO): Promise<number> {
  const { values } = args(
    argv,
    {
      scope: { type: "string" },
      patient: { type: "string" },
      "fhir-user": { type: "string" },
      ttl: { type: "string" },
      sub: { type: "string" },
      "client-id": { type: "string" },
      audience: { type: "string" },
    },
    0,
  );
  const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 86_400)
    throw new UsageError("--ttl must be a whole number of seconds from 1 to 86400");
  const claims: Record<string, unknown> = {
    scope: (values.scope as string | undefined) ?? "patient/*.rs launch/patient openid fhirUser",
    client_id: (values["client-id"] as string | undefined) ?? "demo-app",
  };
  if (values.patient !== undefined) claims.patient = values.patient;
  if (values["fhir-user"] !== undefined) claims.fhirUser = values["fhir-user"];
  const key = await importJWK(DEMO_PRIVATE_JWK, "ES256");
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: DEMO_PRIVATE_JWK.kid, typ: "at+jwt" })
    .setIssuer(DEMO_ISSUER)
    .setAudience((values.audience as string | undefined) ?? DEMO_AUDIENCE)
    .setSubject((values.sub as string | undefined) ?? "demo-user")
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(key);
  io.stdout(`${jwt}\n`);
  io.stderr(
    "DEMO token signed with the published demo key: accepted only by configs that trust the demo issuer.\n",
  );
  return 0;
}

async function evalCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = args(argv, { config: { type: "string" }, bundle: { type: "string" } }, 1);
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
  const engine = await loadEngine(
    values.config as string | undefined,
    values.bundle as string | undefined,
    io.env,
  );
  const decision = engine.decide(input);
  io.stdout(`${JSON.stringify(decision, null, 2)}\n`);
  return 0;
}

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
}

async function scopes(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = args(argv, { config: { type: "string" }, bundle: { type: "string" } }, 1);
  const scope = positionals[0];
  if (scope === undefined)
    throw new UsageError('scopes needs a scope string, e.g. smart-authz scopes "patient/*.rs"');
  const engine = await loadEngine(
    values.config as string | undefined,
    values.bundle as string | undefined,
    io.env,
  );
  io.stdout(`${JSON.stringify(engine.parseScopes(scope) ?? null, null, 2)}\n`);
  return 0;
}

async function loadEngine(
  configPath: string | undefined,
  bundlePath: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<PolicyEngine> {
  const config: Config = loadConfig(
    configPath,
    bundlePath ? { ...env, SMART_AUTHZ_BUNDLE: bundlePath } : env,
  );
  const source = new BundleSource({ ...config.bundle, pollIntervalMs: 0 }, config.policy);
  await source.start();
  if (!source.current)
    throw new SmartAuthzError(
      "BUNDLE_INVALID",
      source.status.lastError ?? "the policy bundle could not be loaded",
    );
  return source.current;
}

function processIO(): CliIO {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    stdin: () => readFileSync(0, "utf8"),
    env: process.env,
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
      process.exitCode = 1;
    },
  );
}
