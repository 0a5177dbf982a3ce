/** Robustness properties at fuzz scale: never throws, unparseable is denied, deep and huge JSON. */
import { describe } from "vitest";
import { fuzzRuns } from "./support/budget.js";
import { deepAndHuge, neverThrows, unparseableDenied } from "./support/properties.js";
import { runProperties } from "./support/run.js";

describe("robustness (real policy)", () => {
  runProperties("robustness", [neverThrows, unparseableDenied, deepAndHuge], fuzzRuns(100_000));
});
