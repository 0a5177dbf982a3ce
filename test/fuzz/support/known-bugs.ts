/**
 * Policy bugs the property suites found and that are not fixed yet. Each has a precise signature;
 * a property that meets one counts it (reported in the run summary) instead of failing, unless
 * FUZZ_STRICT=1. (KB-1, a conflict error on patient/ searches of Patient, was fixed in f9e1d82 and
 * is a regression test now.) The minimal counterexample of each is pinned as an `it.fails` test in
 * test/properties.test.ts, which starts failing as soon as the policy is fixed: then delete the
 * entry here and turn the `it.fails` into `it`.
 */
import type { Decision } from "../../../src/contract.js";

export interface KnownBug {
  id: string;
  title: string;
}

export const KNOWN_BUGS: Record<string, KnownBug> = {
  "KB-2": {
    id: "KB-2",
    title:
      "a v2 scope that repeats a parameter (user/Observation.rs?category=a&category=b, an AND in FHIR) makes " +
      "constraint.narrowing build an object with one key twice (constraint.rego:66: object insert conflict): " +
      "deny 500 for every search and every read without the stored resource",
  },
  "KB-3": {
    id: "KB-3",
    title:
      'the patch guard ignores JSON Patch operations on the document root (path ""), which RFC 6902 defines as ' +
      "replacing the whole resource: a patient/ app can move its resource to another patient, a constrained app " +
      "can rewrite the constrained element",
  },
};

/** KB-2's signature: the policy errors with an object insert conflict in constraint.rego. */
export function isRepeatedParamConflict(d: Decision): boolean {
  return (
    d.decision === "deny" &&
    d.status === 500 &&
    (d.reasons ?? []).some(
      (r) => r.code === "policy-error" && /constraint\.rego:\d+:\d+: object insert conflict/.test(r.message),
    )
  );
}

/** The known bug a decision shows, if any. */
export function knownBugOf(d: Decision): string | undefined {
  if (isRepeatedParamConflict(d)) return "KB-2";
  if (Array.isArray(d.entries)) {
    for (const e of d.entries) {
      const k = knownBugOf(e);
      if (k) return k;
    }
  }
  return undefined;
}
