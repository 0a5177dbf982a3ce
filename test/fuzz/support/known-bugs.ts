/**
 * Policy bugs the property suites found and that are not fixed yet. Each has a precise signature;
 * a property that meets one counts it (reported in the run summary) instead of failing, unless
 * FUZZ_STRICT=1. (KB-1, a conflict error on patient/ searches of Patient, fixed in f9e1d82, and
 * KB-2, an object-insert conflict on repeated constraint parameters, fixed in 0b565c4, are
 * regression tests now.) The minimal counterexample of each is pinned as an `it.fails` test in
 * test/properties.test.ts, which starts failing as soon as the policy is fixed: then delete the
 * entry here and turn the `it.fails` into `it`.
 */
import type { Decision } from "../../../src/contract.js";

export interface KnownBug {
  id: string;
  title: string;
}

export const KNOWN_BUGS: Record<string, KnownBug> = {
  "KB-3": {
    id: "KB-3",
    title:
      'the patch guard ignores JSON Patch operations on the document root (path ""), which RFC 6902 defines as ' +
      "replacing the whole resource: a patient/ app can move its resource to another patient, a constrained app " +
      "can rewrite the constrained element",
  },
  "KB-6": {
    id: "KB-6",
    title:
      "a patient/ search Patient?link=Patient/<patient> is allowed as is, though Patient.link is not followed " +
      "(documented default): it returns OTHER patients that link to the patient in context",
  },
};

/**
 * The known bug a decision shows, if any. No open bug has a decision signature at the moment (KB-3
 * is recognised from its input, in P10); the hook stays for the next one.
 */
export function knownBugOf(_d: Decision): string | undefined {
  return undefined;
}
