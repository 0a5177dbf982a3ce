// `make bench`: the benchmark suite of issues 6 and 14. Runs, in order, each phase bounded in time:
//   1. ratios (child process): smart-authz against the floor policies, in-process, for the mix, the
//      scope-volume reads and the decoding of long multibyte URLs (scripts/bench/ratios.mjs);
//   2. in-process (child process): the WASM host per case of the mix, the pool vs inline, Bundle scaling;
//   3. HTTP: smart-authz (worker pool and inline) vs `opa run -s` (wasm bundle and Rego) on loopback;
//   4. memory (child process): RSS over 1,000,000 decisions.
// Writes build/bench/results.json and build/bench/results.md and prints the tables; nothing outside
// build/ (`make bench-docs` copies the tables into docs/benchmarks.md).
// BENCH_QUICK=1 (`make bench-quick`): phase 1 only, short, and with --check the regression gate
// against scripts/bench/baseline.json (check.mjs): exit 1 when a ratio to the floor regressed.
// Other knobs: BENCH_DURATION / BENCH_WARMUP (s per HTTP cell), BENCH_CONNECTIONS,
// BENCH_SKIP=ratios,inprocess,http,memory.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { DEFAULT_POOL_MODE } from "../../dist/src/policy/pool.js";
import { runHttp } from "./http.mjs";
import { BUNDLE, OPA, QUICK, ROOT, log, machine, nodeJson } from "./lib.mjs";
import { BASELINE, checkText, compare } from "./check.mjs";
import { checkTargets, render } from "./report.mjs";

const skip = new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean));
if (QUICK) for (const phase of ["inprocess", "http", "memory"]) skip.add(phase);
const gate = process.argv.includes("--check");
const duration = Number(process.env.BENCH_DURATION ?? (QUICK ? 1.5 : 6));
const warmup = Number(process.env.BENCH_WARMUP ?? (QUICK ? 0.5 : 2));
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

for (const [what, path] of [
  ["the policy bundle (make policy)", BUNDLE],
  ["the compiled host (make build)", resolve(ROOT, "dist", "src", "policy", "pool-worker.js")],
  ["OPA (make tools)", OPA],
]) {
  if (!existsSync(path)) {
    console.error(`bench: ${what} is missing: ${path}. Run \`make bench\` (it builds everything first).`);
    process.exit(2);
  }
}

const started = Date.now();
const results = {
  version: 1,
  date: new Date().toISOString(),
  quick: QUICK,
  machine: machine(),
  load: { before: loadavg() },
  config: { defaultMode: DEFAULT_POOL_MODE, duration, warmup, connections },
};
log(
  `machine: ${JSON.stringify(results.machine)}; load ${results.load.before.map((x) => x.toFixed(2)).join(" ")}`,
);

if (!skip.has("ratios")) {
  log("phase 1/4: ratios to the floor");
  results.ratios = await nodeJson(resolve(ROOT, "scripts/bench/ratios.mjs"));
  results.revision = results.ratios.revision;
}
if (!skip.has("inprocess")) {
  log("phase 2/4: in-process");
  results.inprocess = await nodeJson(resolve(ROOT, "scripts/bench/inprocess.mjs"));
  results.revision = results.inprocess.revision;
}
if (!skip.has("http")) {
  log(`phase 3/4: HTTP (${duration}s + ${warmup}s warm-up per cell, ${connections} connections)`);
  results.http = await runHttp({
    duration,
    warmup,
    connections,
    quick: QUICK,
    defaultTarget: DEFAULT_POOL_MODE === "inline" ? "ours-inline" : "ours-workers",
  });
}
if (!skip.has("memory")) {
  log("phase 4/4: memory");
  results.memory = await nodeJson(resolve(ROOT, "scripts/bench/memory.mjs"));
}
results.load.after = loadavg();
results.revision ??= "unknown";
results.seconds = Math.round((Date.now() - started) / 1000);
results.targets = checkTargets(results);

const dir = resolve(ROOT, "build", "bench");
mkdirSync(dir, { recursive: true });
const name = QUICK ? "quick" : "results";
writeFileSync(resolve(dir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
const markdown = render(results);
writeFileSync(resolve(dir, `${name}.md`), `${markdown}\n`);
process.stdout.write(`\n${markdown}\n`);
log(`done in ${results.seconds} s: build/bench/${name}.json, build/bench/${name}.md`);

if (gate) {
  // A ratio over its limit is measured once more, alone and with twice the rounds, before it
  // counts: one burst of load on a shared machine cannot fail the gate, a slower policy fails twice.
  const baseline = JSON.parse(readFileSync(BASELINE, "utf8"));
  let rows = compare(results.ratios, baseline);
  const suspects = rows.filter((r) => !r.ok).map((r) => r.name);
  if (suspects.length) {
    log(`over the limit: ${suspects.join(", ")}; measuring them again`);
    const again = await nodeJson(resolve(ROOT, "scripts/bench/ratios.mjs"), [], {
      BENCH_CASES: suspects.join(","),
      BENCH_ROUNDS: "26",
    });
    rows = rows.map((r) =>
      r.ok ? r : { ...compare(again, { ...baseline, ratios: { [r.name]: r.baseline } })[0], first: r.ratio },
    );
  }
  const failed = rows.filter((r) => !r.ok);
  process.stdout.write(
    `\nRegression gate (ratio to the floor, CPU time; limit = baseline + ${Math.round(baseline.tolerance * 100)} %):\n${checkText(rows)}\n`,
  );
  if (failed.length) {
    log(
      `FAILED: ${failed.map((r) => r.name).join(", ")} regressed against ${BASELINE.slice(ROOT.length + 1)}`,
    );
    process.exit(1);
  }
  log(`gate passed in ${Math.round((Date.now() - started) / 1000)} s`);
}
