// `make bench`: the benchmark suite of issue 6. Runs, in order, each phase bounded in time:
//   1. in-process (child process): the WASM host per case of the mix, the pool vs inline, Bundle scaling;
//   2. HTTP: smart-authz (worker pool and inline) vs `opa run -s` (wasm bundle and Rego) on loopback;
//   3. memory (child process): RSS over 1,000,000 decisions.
// Writes build/bench/results.json, prints the markdown tables, and writes them into docs/benchmarks.md
// (and README.md, if it carries the bench markers). BENCH_QUICK=1: a ~1-minute smoke run.
// Other knobs: BENCH_DURATION / BENCH_WARMUP (s per HTTP cell), BENCH_CONNECTIONS, BENCH_SKIP=http,memory,inprocess.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { DEFAULT_POOL_MODE } from "../../dist/src/policy/pool.js";
import { runHttp } from "./http.mjs";
import { BUNDLE, OPA, QUICK, ROOT, log, machine, nodeJson } from "./lib.mjs";
import { checkTargets, render, writeInto } from "./report.mjs";

const skip = new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean));
const duration = Number(process.env.BENCH_DURATION ?? (QUICK ? 1.5 : 6));
const warmup = Number(process.env.BENCH_WARMUP ?? (QUICK ? 0.5 : 2));
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

for (const [what, path] of [
  ["the policy bundle (make policy)", BUNDLE],
  ["the compiled host (make build)", resolve(ROOT, "dist", "src", "pool-worker.js")],
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

if (!skip.has("inprocess")) {
  log("phase 1/3: in-process");
  results.inprocess = await nodeJson(resolve(ROOT, "scripts/bench/inprocess.mjs"));
  results.revision = results.inprocess.revision;
}
if (!skip.has("http")) {
  log(`phase 2/3: HTTP (${duration}s + ${warmup}s warm-up per cell, ${connections} connections)`);
  results.http = await runHttp({
    duration,
    warmup,
    connections,
    quick: QUICK,
    defaultTarget: DEFAULT_POOL_MODE === "inline" ? "ours-inline" : "ours-workers",
  });
}
if (!skip.has("memory")) {
  log("phase 3/3: memory");
  results.memory = await nodeJson(resolve(ROOT, "scripts/bench/memory.mjs"));
}
results.load.after = loadavg();
results.revision ??= "unknown";
results.seconds = Math.round((Date.now() - started) / 1000);
results.targets = checkTargets(results);

const dir = resolve(ROOT, "build", "bench");
mkdirSync(dir, { recursive: true });
writeFileSync(resolve(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
const markdown = render(results);
writeFileSync(resolve(dir, "results.md"), `${markdown}\n`);
const written = [resolve(ROOT, "docs", "benchmarks.md"), resolve(ROOT, "README.md")].filter((p) =>
  writeInto(p, markdown),
);
process.stdout.write(`\n${markdown}\n`);
log(
  `done in ${results.seconds} s: build/bench/results.json, build/bench/results.md${written.length ? `, ${written.map((p) => p.slice(ROOT.length + 1)).join(", ")}` : ""}`,
);
