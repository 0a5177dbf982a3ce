/**
 * End-to-end suites against a real FHIR server (`*.e2e.ts` under test/e2e/). Not part of the fast
 * `vitest run` (its config only includes `test/**\/*.test.ts`): they need a running HAPI, which the
 * Makefile targets start and stop (`make e2e` runs every suite; test/e2e/README.md). A new suite is
 * picked up by being a `*.e2e.ts` file. Processes a suite starts are registered with
 * support/processes.ts; the global teardown stops any it left running.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    globalSetup: ["test/e2e/global-teardown.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // One server: run files one after another, tests within a file in order.
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
