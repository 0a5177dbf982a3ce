/** Runs a list of properties against the real compiled policy, tallying what was generated. */
import { performance } from "node:perf_hooks";
import fc from "fast-check";
import { afterAll, beforeAll, it } from "vitest";
import type { PolicyEngine } from "../../../src/policy/engine.js";
import { loadRealEngine } from "../../helpers/policy.js";
import { Stats, assertParameters } from "./budget.js";
import { runsFor, type PropertyDef } from "./properties.js";
import { RELATIONSHIPS } from "./user-access.js";

/** `file` names the tally written to build/fuzz/ (null: no tally, as in the normal test run). */
export function runProperties(
  file: string | null,
  properties: PropertyDef[],
  total: number,
  timeoutMs?: number,
): void {
  const stats = new Stats();
  let engine: PolicyEngine;
  beforeAll(async () => {
    engine = await loadRealEngine({ relationships: RELATIONSHIPS });
  });
  afterAll(() => {
    if (file) stats.write(file);
  });
  for (const p of properties) {
    const numRuns = runsFor(p, total);
    it(
      `${p.id} ${p.title} (${numRuns} inputs)`,
      () => {
        const tally = stats.begin(p.id);
        const started = performance.now();
        try {
          fc.assert(p.build({ engine, stats }), assertParameters(numRuns));
        } finally {
          tally.ms = Math.round(performance.now() - started);
        }
      },
      timeoutMs,
    );
  }
}
