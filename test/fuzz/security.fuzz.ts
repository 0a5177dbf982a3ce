/** The security review's classes of holes as properties at fuzz scale (P11–P13). */
import { describe } from "vitest";
import { fuzzRuns } from "./support/budget.js";
import { SECURITY_PROPERTIES } from "./support/security-properties.js";
import { runProperties } from "./support/run.js";

describe("security properties (real policy)", () => {
  runProperties("security", SECURITY_PROPERTIES, fuzzRuns(100_000));
});
