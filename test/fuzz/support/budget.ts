/**
 * How many inputs each property gets, and the tally of what was actually generated. `make fuzz`
 * sets FUZZ_RUNS (default 100000) as the TOTAL number of generated inputs across the suite; each
 * property takes its weight's share. FUZZ_SEED replays a run. No known bug is tolerated: every
 * counterexample fails its property.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type fc from "fast-check";
import { ROOT } from "./fhir-data.js";

export function fuzzRuns(fallback: number): number {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`FUZZ_RUNS must be a positive integer, got ${raw}`);
  return n;
}

export function assertParameters(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED;
  return {
    numRuns,
    ...(seed ? { seed: Number(seed) } : {}),
    endOnFailure: false,
    verbose: 1,
  };
}

export interface Tally {
  property: string;
  runs: number;
  decisions: number;
  ms: number;
}

export class Stats {
  readonly tallies: Tally[] = [];
  current: Tally | undefined;

  begin(property: string): Tally {
    this.current = { property, runs: 0, decisions: 0, ms: 0 };
    this.tallies.push(this.current);
    return this.current;
  }

  run(): void {
    if (this.current) this.current.runs++;
  }

  decision(n = 1): void {
    if (this.current) this.current.decisions += n;
  }

  /** Writes build/fuzz/<file>.json for the summary printed at the end of `make fuzz`. */
  write(file: string): void {
    const dir = resolve(ROOT, "build", "fuzz");
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, `${file}.json`), JSON.stringify({ file, tallies: this.tallies }, null, 2));
  }
}
