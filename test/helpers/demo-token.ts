/**
 * Tokens of the demo issuer with any claims (roles, purpose_of_use, an old `iat`), signed with the
 * published demo key: what the security review's `mint.mjs` did, for tests against a service that
 * trusts the demo issuer (service-config's default issuer).
 */
import { SignJWT, importJWK } from "jose";
import { DEMO_PRIVATE_JWK } from "../../src/auth/demo-keys.js";
import { main } from "../../src/cli.js";
import { DEMO_AUDIENCE, DEMO_ISSUER } from "../../src/ops/default-config.js";

/** `claims` over iss/aud/iat/exp defaults; a claim given as `null` is left out. */
export async function demoToken(claims: Record<string, unknown> = {}): Promise<string> {
  const key = await importJWK(DEMO_PRIVATE_JWK, "ES256");
  const now = Math.floor(Date.now() / 1000);
  const all: Record<string, unknown> = {
    iss: DEMO_ISSUER,
    aud: DEMO_AUDIENCE,
    iat: now,
    exp: now + 3600,
    ...claims,
  };
  for (const k of Object.keys(all)) if (all[k] === null) delete all[k];
  return new SignJWT(all)
    .setProtectedHeader({ alg: "ES256", kid: DEMO_PRIVATE_JWK.kid!, typ: "JWT" })
    .sign(key);
}

/** A token minted by the CLI's own `token` command (`args` are its flags), as the docs do it. */
export async function cliToken(...args: string[]): Promise<string> {
  let out = "";
  let err = "";
  const code = await main(["token", ...args], {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    stdin: () => "",
    env: {},
  });
  if (code !== 0) throw new Error(`smart-authz token ${args.join(" ")}: exit ${code}: ${err}`);
  return out.trim();
}
