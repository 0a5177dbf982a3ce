/** Clears the previous tallies before `make fuzz` and prints the total number of generated inputs after. */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Tally } from "./budget.js";
import { ROOT } from "./fhir-data.js";

const DIR = resolve(ROOT, "build", "fuzz");

export function setup(): () => void {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const started = Date.now();
  return () => {
    if (!existsSync(DIR)) return;
    const tallies: (Tally & { file: string })[] = [];
    for (const f of readdirSync(DIR)
      .filter((n) => n.endsWith(".json") && n !== "summary.json")
      .sort()) {
      const { file, tallies: ts } = JSON.parse(readFileSync(resolve(DIR, f), "utf8")) as {
        file: string;
        tallies: Tally[];
      };
      for (const t of ts) tallies.push({ ...t, file });
    }
    const runs = tallies.reduce((n, t) => n + t.runs, 0);
    const decisions = tallies.reduce((n, t) => n + t.decisions, 0);
    const lines = tallies.map((t) => {
      return `  ${t.property.padEnd(8)} ${String(t.runs).padStart(8)} inputs ${String(t.decisions).padStart(9)} evaluations ${(t.ms / 1000).toFixed(1).padStart(7)} s  ${t.file}`;
    });
    const wall = (Date.now() - started) / 1000;
    const seed = process.env.FUZZ_SEED || null;
    const summary = {
      runs,
      decisions,
      wallSeconds: wall,
      fuzzRuns: process.env.FUZZ_RUNS ?? null,
      fuzzSeed: seed,
      tallies,
    };
    writeFileSync(resolve(DIR, "summary.json"), JSON.stringify(summary, null, 2));
    console.log(
      `\nfuzz summary (FUZZ_RUNS=${process.env.FUZZ_RUNS ?? "unset"}, ${seed ? `FUZZ_SEED=${seed}: replayed` : "a random seed per property; a failure prints it"}):\n${lines.join("\n")}\n  total    ${String(runs).padStart(8)} inputs ${String(decisions).padStart(9)} evaluations in ${wall.toFixed(0)} s wall\n`,
    );
  };
}
