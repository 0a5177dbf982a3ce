/**
 * DEMO access tokens for the end-to-end suites, minted by the built CLI (`smart-authz token`, the
 * published demo key) exactly as a user of the examples would.
 */
import { execFileSync } from "node:child_process";

export interface TokenOptions {
  scope: string;
  patient?: string;
  fhirUser?: string;
  ttlSeconds?: number;
}

export function demoToken(o: TokenOptions): string {
  const args = ["dist/src/cli.js", "token", "--scope", o.scope];
  if (o.patient) args.push("--patient", o.patient);
  if (o.fhirUser) args.push("--fhir-user", o.fhirUser);
  if (o.ttlSeconds) args.push("--ttl", String(o.ttlSeconds));
  return execFileSync(process.execPath, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  }).trim();
}
