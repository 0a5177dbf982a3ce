/** Access properties at fuzz scale: monotonicity, patient isolation, v2 constraint enforcement, the patch guard. */
import { describe } from "vitest";
import { fuzzRuns } from "./support/budget.js";
import { constraintEnforcement, monotonicity, patchGuard, patientIsolation } from "./support/properties.js";
import { runProperties } from "./support/run.js";

describe("access properties (real policy)", () => {
  runProperties(
    "access",
    [monotonicity, patientIsolation, constraintEnforcement, patchGuard],
    fuzzRuns(100_000),
  );
});
