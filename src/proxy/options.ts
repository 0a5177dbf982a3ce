/**
 * The `smart-authz proxy` command's options: `--config FILE`, `--upstream URL` (the FHIR server;
 * overrides `proxy.upstream.url`, or runs the proxy with defaults on a config without a `proxy:`
 * section), `--listen HOST:PORT` (overrides `proxy.listen`). They are applied as the environment
 * overrides SMART_AUTHZ_PROXY_UPSTREAM and SMART_AUTHZ_PROXY_LISTEN, so the config loader does the
 * validating.
 */
import { parseArgs } from "node:util";
import { SmartAuthzError } from "../core/errors.js";
import { ENV } from "../ops/config.js";

export const PROXY_USAGE = `proxy [--config FILE] [--upstream URL] [--listen HOST:PORT]
                                        run the enforcing FHIR proxy in front of the FHIR server at URL
                                        (config section \`proxy:\`; see docs/proxy.md)`;

export interface ProxyOptions {
  configPath: string | undefined;
  upstream: string | undefined;
  /** The environment with the option overrides applied. */
  env: NodeJS.ProcessEnv;
}

export function proxyOptions(argv: string[], env: NodeJS.ProcessEnv): ProxyOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args: argv,
      options: { config: { type: "string" }, upstream: { type: "string" }, listen: { type: "string" } },
      allowPositionals: false,
      strict: true,
    });
    values = parsed.values;
  } catch (err) {
    throw new SmartAuthzError(
      "INPUT_INVALID",
      `proxy: ${(err as Error).message}\nusage: smart-authz ${PROXY_USAGE}`,
    );
  }
  const out: NodeJS.ProcessEnv = { ...env };
  const upstream = typeof values.upstream === "string" ? values.upstream : undefined;
  if (upstream !== undefined) out[ENV.proxyUpstream] = upstream;
  if (typeof values.listen === "string") out[ENV.proxyListen] = values.listen;
  return {
    configPath: typeof values.config === "string" ? values.config : undefined,
    upstream: upstream ?? (env[ENV.proxyUpstream] || undefined),
    env: out,
  };
}
