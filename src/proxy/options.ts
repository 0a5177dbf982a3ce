/**
 * The `smart-authz proxy` command's own flags, beside the service flags every running command
 * takes (--config, --addr, --bundle, --log-level): `--upstream URL` (the FHIR server; overrides
 * `proxy.upstream.url`, or runs the proxy with defaults on a config without a `proxy:` section) and
 * `--proxy-addr HOST:PORT` (overrides `proxy.listen`). They become the environment overrides
 * SMART_AUTHZ_PROXY_UPSTREAM and SMART_AUTHZ_PROXY_LISTEN, so the config loader does the
 * validating, and a flag wins over the variable, which wins over the file.
 */
import { SmartAuthzError } from "../core/errors.js";
import { ENV, parseListen } from "../ops/config.js";

/** Option specs in the CLI's table format (src/cli.ts `OptionSpec`). */
export const PROXY_OPTIONS = {
  upstream: {
    type: "string",
    short: "u",
    arg: "URL",
    help: `the FHIR server's base URL [env ${ENV.proxyUpstream}; config proxy.upstream.url]`,
  },
  "proxy-addr": {
    type: "string",
    arg: "ADDR",
    help: `the proxy's listen address, HOST:PORT or PORT [env ${ENV.proxyListen}; config proxy.listen; default 127.0.0.1:8080]`,
  },
} as const;

export interface ProxyFlags {
  /** The FHIR server's URL when given by flag or environment (for a config without `proxy:`). */
  upstream: string | undefined;
  /** The environment with the flag overrides applied. */
  env: NodeJS.ProcessEnv;
}

/** Applies `--upstream` and `--proxy-addr`; a bad value is an INPUT_INVALID error naming the flag. */
export function proxyFlags(values: Record<string, unknown>, env: NodeJS.ProcessEnv): ProxyFlags {
  const out: NodeJS.ProcessEnv = { ...env };
  const upstream = typeof values.upstream === "string" ? values.upstream : undefined;
  if (upstream !== undefined) {
    if (upstream === "")
      throw new SmartAuthzError("INPUT_INVALID", "--upstream: expected the FHIR server's base URL");
    out[ENV.proxyUpstream] = upstream;
  }
  const addr = typeof values["proxy-addr"] === "string" ? values["proxy-addr"] : undefined;
  if (addr !== undefined) {
    const parsed = parseListen(addr);
    if (typeof parsed === "string") throw new SmartAuthzError("INPUT_INVALID", `--proxy-addr: ${parsed}`);
    out[ENV.proxyListen] = addr;
  }
  return { upstream: upstream ?? (env[ENV.proxyUpstream] || undefined), env: out };
}
