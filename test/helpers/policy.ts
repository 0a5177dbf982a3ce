/** Loads the real compiled policy (build/bundle.tar.gz) once per test file, and OPA's own answers. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { readBundle } from "../../src/policy/bundle.js";
import { PolicyEngine } from "../../src/policy/engine.js";

export const root = resolve(import.meta.dirname, "..", "..");
export const bundlePath = resolve(root, "build", "bundle.tar.gz");
export const opaPath = resolve(root, ".tools", "bin", "opa");

export async function loadRealEngine(data: Record<string, unknown> = {}): Promise<PolicyEngine> {
  if (!existsSync(bundlePath)) throw new Error(`${bundlePath} is missing: run \`make policy\` first`);
  return PolicyEngine.load(readBundle(bundlePath), { data });
}

/** OPA (topdown, on the Rego sources) decides every wrapped vector; keyed by vector id. */
export function opaOutcomes(): Record<string, unknown> {
  const out = execFileSync(
    opaPath,
    [
      "eval",
      "-d",
      "policies",
      "-d",
      "build/vectors",
      "--format",
      "json",
      "data.smart.conformance_test.all_outcomes",
    ],
    { cwd: root, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" },
  );
  const parsed = JSON.parse(out) as { result?: { expressions: { value: Record<string, unknown> }[] }[] };
  const value = parsed.result?.[0]?.expressions[0]?.value;
  if (!value) throw new Error("opa eval returned no outcomes");
  return value;
}
