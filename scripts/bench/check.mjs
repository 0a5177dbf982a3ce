// The regression gate of `make bench-quick` (issue 14): every in-process ratio to the floor (CPU time
// of the fastest slices, scripts/bench/ratios.mjs) must stay within TOLERANCE of
// scripts/bench/baseline.json. Ratios, not absolute times, so a slower or busier machine does not fail
// it; a policy that got slower does.
//   node scripts/bench/check.mjs [results.json]      check (exit 1 on a regression)
//   node scripts/bench/check.mjs --update r1.json r2.json r3.json   write the baseline: per case, the
//                                                   median of the runs given
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, round } from "./lib.mjs";

export const BASELINE = resolve(ROOT, "scripts", "bench", "baseline.json");
export const TOLERANCE = 0.25;

/** [{name, ratio, baseline, limit, ok}] for every case of the baseline; missing cases fail. */
export function compare(ratios, baseline) {
  return Object.entries(baseline.ratios).map(([name, base]) => {
    const ratio = ratios.cases?.[name]?.ratio?.cpu;
    const limit = round(base * (1 + baseline.tolerance), 2);
    return { name, ratio, baseline: base, limit, ok: typeof ratio === "number" && ratio <= limit };
  });
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
}

export function checkText(rows) {
  const lines = rows.map(
    (r) =>
      `  ${r.ok ? "ok  " : "FAIL"} ${r.name.padEnd(11)} ${String(r.ratio ?? "missing").padStart(7)}x the floor (baseline ${r.baseline}x, limit ${r.limit}x)${r.first ? `; first measurement ${r.first}x, measured again` : ""}`,
  );
  return lines.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  if (args[0] === "--update") {
    const runs = args.slice(1).map((f) => JSON.parse(readFileSync(f, "utf8")));
    if (runs.length === 0) throw new Error("--update needs the results of at least one quick run");
    const names = Object.keys(runs[0].ratios.cases);
    const baseline = {
      about:
        "Ratios of smart-authz's in-process decision time to the floor policy's (CPU time of the fastest slices, scripts/bench/ratios.mjs) that `make bench-quick` must stay within `tolerance` of. Written by `make bench-baseline` (per case the median of three quick runs); update it deliberately, with the reason in the commit message.",
      tolerance: TOLERANCE,
      measured: {
        date: runs[0].date,
        machine: runs[0].machine,
        runs: runs.length,
        load: runs.map((r) => r.load),
      },
      ratios: Object.fromEntries(
        names.map((n) => [n, Math.max(...runs.map((r) => r.ratios.cases[n].ratio.cpu))]),
      ),
    };
    writeFileSync(BASELINE, `${JSON.stringify(baseline, null, 2)}\n`);
    console.log(`wrote ${BASELINE}`);
  } else {
    const results = JSON.parse(
      readFileSync(args[0] ?? resolve(ROOT, "build", "bench", "results.json"), "utf8"),
    );
    const rows = compare(results.ratios, JSON.parse(readFileSync(BASELINE, "utf8")));
    console.log(checkText(rows));
    if (rows.some((r) => !r.ok)) process.exit(1);
  }
}
