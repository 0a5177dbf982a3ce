/**
 * Invariants that would have caught the security review's findings, each stated for a whole class
 * of inputs rather than for its reproduction:
 *   P11 (H1)  no write is allowed whose body (or stored resource) names another patient in any
 *             patient-linking element;
 *   P12 (H3)  every decision that releases data the policy has not seen carries `filter-response`
 *             (or is a filter without narrowing);
 *   P13 (H2)  every batch entry at every depth is decided, a nested batch or transaction is never
 *             allowed, and a batch with a refused entry is never a plain allow.
 * The oracles use the generator's own knowledge (FHIR rules for references), never the policy.
 */
import fc from "fast-check";
import type { Decision, DecisionInput } from "../../../src/core/contract.js";
import {
  PATIENTS,
  anyRequestCaseArb,
  decoyRefArb,
  namingRefArb,
  patientArb,
  referenceArb,
  resourceArb,
} from "./arbitraries.js";
import { MEMBER_TYPES, linkPaths } from "./fhir-data.js";
import { namesPatient } from "./json-patch.js";
import type { Ctx, PropertyDef } from "./properties.js";

function decide(ctx: Ctx, input: unknown): Decision {
  ctx.stats.decision();
  return ctx.engine.decide(input as DecisionInput);
}

function fail(message: string, detail: Record<string, unknown>): never {
  throw new Error(`${message}\n${JSON.stringify(detail, null, 1).slice(0, 6000)}`);
}

/** The reference strings found in a resource's patient-linking elements (any nesting, any arity). */
export function linkReferences(resource: Record<string, unknown>): unknown[] {
  const t = resource.resourceType;
  if (typeof t !== "string") return [];
  const refs: unknown[] = [];
  for (const path of linkPaths(t)) {
    let nodes: unknown[] = [resource];
    for (const key of path) {
      nodes = nodes.flatMap((n) => {
        if (typeof n !== "object" || n === null || Array.isArray(n)) return [];
        const v = (n as Record<string, unknown>)[key];
        return v === undefined ? [] : Array.isArray(v) ? v : [v];
      });
    }
    for (const n of nodes)
      if (typeof n === "object" && n !== null) refs.push((n as { reference?: unknown }).reference);
  }
  return refs;
}

const writableTypes = MEMBER_TYPES.filter((t) => linkPaths(t).length > 0);

const writeCaseArb = fc
  .record({
    t: fc.constantFrom(...writableTypes),
    P: patientArb,
    method: fc.constantFrom("POST", "PUT"),
    scopeKind: fc.constantFrom("type", "wildcard", "v1"),
  })
  .chain((c) => {
    const others = PATIENTS.filter((p) => p !== c.P);
    // Links naming the patient in context, another patient, or decoys that name nobody.
    const linkRef = referenceArb(
      fc.oneof(
        namingRefArb(c.P),
        fc.constantFrom(...others).chain(namingRefArb),
        fc.constantFrom(...others).chain(decoyRefArb),
      ),
    );
    return fc.record({
      c: fc.constant(c),
      body: resourceArb(c.t, { linkRef, id: fc.constant("1") }),
      stored: resourceArb(c.t, { linkRef: referenceArb(namingRefArb(c.P)), id: fc.constant("1") }),
    });
  });

export const writesStayWithThePatient: PropertyDef = {
  id: "P11",
  title:
    "writes never cross patients: a create/update naming another patient in any linking element is denied",
  weight: 0.04,
  build: (ctx) =>
    fc.property(writeCaseArb, ({ c, body, stored }) => {
      ctx.stats.run();
      const namesOther = linkReferences(body).some((ref) =>
        PATIENTS.some((p) => p !== c.P && namesPatient(ref, p)),
      );
      if (!namesOther) return;
      const scope =
        c.scopeKind === "type"
          ? `patient/${c.t}.cruds`
          : c.scopeKind === "wildcard"
            ? "patient/*.cruds"
            : `patient/${c.t}.write patient/${c.t}.read`;
      const input =
        c.method === "POST"
          ? { claims: { scope, patient: c.P }, request: { method: "POST", url: c.t, body } }
          : {
              claims: { scope, patient: c.P },
              request: { method: "PUT", url: `${c.t}/1`, body },
              resource: stored,
            };
      const d = decide(ctx, input);
      if (d.decision !== "deny")
        fail(`a ${c.method} whose body names another patient was ${d.decision}ed`, { input, d });
    }),
};

const TERMINOLOGY_OPERATIONS = [
  "$expand",
  "$lookup",
  "$validate-code",
  "$translate",
  "$subsumes",
  "$closure",
];

/** Requests that read FHIR data (not the two public discovery documents). */
function readsData(method: string, url: string): boolean {
  if (method !== "GET" && method !== "HEAD" && !(method === "POST" && /(^|\/)_search(\?|$)/.test(url)))
    return false;
  const path = url.split("?")[0] ?? "";
  if (path === "metadata" || path === ".well-known/smart-configuration") return false;
  // Terminology operations answer computed results (an expansion, a lookup), not stored resources.
  return !TERMINOLOGY_OPERATIONS.some((op) => path.endsWith(`/${op}`) || path === op);
}

export const unseenDataIsFiltered: PropertyDef = {
  id: "P12",
  title:
    "labels cannot be skipped: a decision releasing data the policy has not seen carries filter-response (or is an unnarrowed filter)",
  weight: 0.04,
  build: (ctx) =>
    fc.property(
      fc.tuple(anyRequestCaseArb, fc.constantFrom("patient", "user", "system"), patientArb),
      ([rc, context, P]) => {
        ctx.stats.run();
        // Only what the policy has not seen: no stored resource, no response.
        const input = {
          claims: { scope: `${context}/*.cruds`, patient: P, fhirUser: "Practitioner/9", sub: "u1" },
          request: rc.request,
        };
        if (!readsData(rc.request.method, rc.request.url)) return;
        const d = decide(ctx, input);
        if (d.decision === "deny") return;
        const obliged = (d.obligations ?? []).some((o) => o.type === "filter-response");
        const unnarrowed = d.decision === "filter" && (d.narrow ?? []).length === 0;
        if (!obliged && !unnarrowed)
          fail(`a ${d.decision} releases unseen data with no filter-response`, { input, d });
      },
    ),
};

const entryUrlArb = fc.constantFrom(
  "",
  "/",
  "?",
  "?_format=json",
  "%3F",
  "Observation",
  "Patient/123",
  "Observation/1",
);

/** A batch or transaction whose entries may themselves carry batches or transactions, to depth 3. */
const nestedBundleArb: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{
  bundle: Record<string, unknown>;
  entry: Record<string, unknown>;
}>((tie) => ({
  bundle: fc.record({
    resourceType: fc.constant("Bundle"),
    type: fc.constantFrom("batch", "transaction"),
    entry: fc.array(tie("entry"), { minLength: 1, maxLength: 3 }),
  }),
  entry: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({
      request: fc.record({
        method: fc.constantFrom("GET", "DELETE"),
        url: fc.constantFrom("Observation?patient=123", "Patient/999", "Observation/1"),
      }),
    }),
    fc.record({
      request: fc.record({ method: fc.constantFrom("POST", "PUT"), url: entryUrlArb }),
      resource: tie("bundle"),
    }),
  ),
})).bundle;

function carriesBundle(entry: unknown): boolean {
  const r = (entry as { resource?: { resourceType?: unknown; type?: unknown } }).resource;
  return r?.resourceType === "Bundle" && (r.type === "batch" || r.type === "transaction");
}

export const everyBatchEntryDecided: PropertyDef = {
  id: "P13",
  title:
    "batches: every entry at every depth is decided, nested batches are refused, a refused entry never leaves the batch a plain allow",
  weight: 0.03,
  build: (ctx) =>
    fc.property(nestedBundleArb, (bundle) => {
      ctx.stats.run();
      const input = {
        claims: { scope: "patient/*.cruds", patient: "123" },
        request: { method: "POST", url: "", body: bundle },
      };
      const d = decide(ctx, input);
      const entries = bundle.entry as unknown[];
      if (d.decision === "deny" && !d.entries) return; // refused as a whole before any entry
      if (!Array.isArray(d.entries) || d.entries.length !== entries.length) {
        fail("not every entry of the batch was decided", { input, d });
      }
      entries.forEach((e, i) => {
        if (carriesBundle(e) && d.entries![i]!.decision !== "deny") {
          fail(`entry ${i} carries a nested batch and was ${d.entries![i]!.decision}ed`, { input, d });
        }
      });
      const refused = d.entries!.some((e) => e.decision === "deny");
      if (refused && d.decision === "allow")
        fail("a batch with a refused entry is a plain allow", { input, d });
      if (refused && bundle.type === "transaction" && d.decision !== "deny") {
        fail("a transaction with a refused entry is not denied", { input, d });
      }
    }),
};

export const SECURITY_PROPERTIES: PropertyDef[] = [
  writesStayWithThePatient,
  unseenDataIsFiltered,
  everyBatchEntryDecided,
];
