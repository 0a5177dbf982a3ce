/**
 * `make fuzz`: the property suites with FUZZ_RUNS generated inputs in total (default 100000),
 * plus the HTTP-layer fuzz. Separate from the normal `vitest run`, which runs a small sample
 * (test/properties.test.ts).
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/fuzz/**/*.fuzz.ts"],
    globalSetup: ["test/fuzz/support/global-setup.ts"],
    testTimeout: 60 * 60 * 1000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["verbose"],
  },
});
