// What the policy could gain: applies scripts/bench/policy-speedups.diff (or the diff given as
// argument) to a temporary copy of policies/, builds it with OPA like `make policy`, checks that
// every conformance vector gets the same decision as build/bundle.tar.gz, and times the benchmark
// mix on both. Nothing in the repository is changed.  node scripts/bench/policy-variant.mjs [diff]
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readBundle } from "../../dist/src/bundle.js";
import { PolicyEngine } from "../../dist/src/engine.js";
import { loadVectors, vectorToInput } from "../lib/vectors.mjs";
import { mix } from "./inputs.mjs";
import { BUNDLE, OPA, ROOT, median, round } from "./lib.mjs";

const diff = resolve(process.argv[2] ?? join(ROOT, "scripts", "bench", "policy-speedups.diff"));
const dir = mkdtempSync(join(tmpdir(), "smart-authz-variant-"));
try {
  cpSync(join(ROOT, "policies"), join(dir, "policies"), { recursive: true });
  try {
    execFileSync("patch", ["-p1", "--forward", "--quiet"], {
      cwd: join(dir, "policies"),
      input: readFileSync(diff),
      stdio: ["pipe", "inherit", "inherit"],
    });
  } catch {
    console.error(`${diff} does not apply to the current policies/ any more`);
    process.exit(1);
  }
  const out = join(dir, "variant.tar.gz");
  execFileSync(
    OPA,
    [
      "build",
      "-t",
      "wasm",
      "-e",
      "smart/api/decision",
      "-e",
      "smart/api/scopes",
      "--ignore",
      "*_test.rego",
      "-o",
      out,
      join(dir, "policies"),
    ],
    { stdio: "inherit" },
  );
  const data = { data: { config: {} } };
  const current = await PolicyEngine.load(readBundle(BUNDLE), data);
  const variant = await PolicyEngine.load(readBundle(out), data);

  let n = 0;
  const differ = [];
  for (const v of loadVectors()) {
    const input = vectorToInput(v);
    if (!input) continue;
    n++;
    if (JSON.stringify(current.decide(input)) !== JSON.stringify(variant.decide(input))) differ.push(v.id);
  }
  console.log(
    `vectors: ${n}, decisions that differ: ${differ.length}${differ.length ? ` (${differ.slice(0, 10).join(", ")})` : ""}`,
  );

  const time = (engine, input, reps) => {
    for (let i = 0; i < 3; i++) engine.decide(input);
    const t = [];
    for (let i = 0; i < reps; i++) {
      const s = performance.now();
      engine.decide(input);
      t.push((performance.now() - s) * 1000);
    }
    return median(t);
  };
  console.log("| case | current p50 µs | variant p50 µs | speed-up |\n| --- | ---: | ---: | ---: |");
  for (const [name, input] of Object.entries(mix())) {
    const same = JSON.stringify(current.decide(input)) === JSON.stringify(variant.decide(input));
    const reps = name === "bundle" ? 30 : name === "batch" ? 300 : 2000;
    const a = Math.min(time(current, input, reps), time(current, input, reps));
    const b = Math.min(time(variant, input, reps), time(variant, input, reps));
    console.log(
      `| ${name}${same ? "" : " (decision differs!)"} | ${round(a)} | ${round(b)} | ${round(a / b, 2)}× |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
