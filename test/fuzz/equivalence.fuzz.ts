/** Grammar and equivalence properties at fuzz scale: scope parsing, v1 ≡ v2, scope union and order. */
import { describe } from "vitest";
import { fuzzRuns } from "./support/budget.js";
import { scopeGrammar, splitEquivalence, v1v2Equivalence } from "./support/properties.js";
import { runProperties } from "./support/run.js";

describe("scope grammar and equivalences (real policy)", () => {
  runProperties("equivalence", [scopeGrammar, v1v2Equivalence, splitEquivalence], fuzzRuns(100_000));
});
