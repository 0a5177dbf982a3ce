/**
 * The properties the compiled policy must have, written once and run twice: a small sample in the
 * normal `vitest run` (test/properties.test.ts) and FUZZ_RUNS inputs in `make fuzz`
 * (test/fuzz/*.fuzz.ts). Every property runs against the REAL policy (build/bundle.tar.gz).
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import type { Decision, DecisionInput } from "../../../src/core/contract.js";
import type { PolicyEngine } from "../../../src/policy/engine.js";
import {
  COND_CATEGORY,
  OBS_CATEGORY,
  PATIENTS,
  V1_TO_V2,
  anyRequestCaseArb,
  anyScopeArb,
  constraintQueryArb,
  couldBeResourceScope,
  decoyRefArb,
  deepJson,
  garbageStringArb,
  idArb,
  malformedScopeArb,
  memberTypeArb,
  namingRefArb,
  otherScopeArb,
  patientArb,
  referenceArb,
  requestCaseArb,
  resourceArb,
  resourceScopeSpecArb,
  scopeText,
  scopesForArb,
  searchQueryArb,
  targetedScopeArb,
  targetedSpecArb,
  typeArb,
  v1PermArb,
  v2LettersArb,
  type RequestCase,
  type ScopeSpec,
} from "./arbitraries.js";
import type { Stats } from "./budget.js";
import { userMaySearch, userReaches } from "./user-access.js";
import { RESOURCE_TYPES, confiningParams, linkParams, linkPaths, patientOnlyParam } from "./fhir-data.js";
import { applyJsonPatch, inCompartment, namesPatient, type PatchOp } from "./json-patch.js";
import {
  accessLoss,
  constraintPaths,
  contractViolation,
  orValues,
  parseConstraintQuery,
  resourceSatisfies,
} from "./oracle.js";

export interface Ctx {
  engine: PolicyEngine;
  stats: Stats;
}

export interface PropertyDef {
  id: string;
  /** The behaviour, as the test name. */
  title: string;
  /** Share of the run budget (weights over all properties sum to 1). */
  weight: number;
  /** Upper bound on runs for expensive properties (huge inputs). */
  maxRuns?: number;
  build(ctx: Ctx): fc.IRawProperty<unknown[]>;
}

// --- Helpers -------------------------------------------------------------------------------------

function decide(ctx: Ctx, input: unknown): Decision {
  ctx.stats.decision();
  return ctx.engine.decide(input as DecisionInput);
}

function fail(message: string, detail: Record<string, unknown>): never {
  throw new Error(`${message}\n${JSON.stringify(detail, null, 1).slice(0, 6000)}`);
}

const compact = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function inputOf(claims: Record<string, unknown>, rc: RequestCase): DecisionInput {
  return compact({
    claims,
    request: rc.request,
    resource: rc.resource,
    response: rc.response,
  }) as DecisionInput;
}

const fhirUserArb = fc.option(
  fc.constantFrom(
    "Practitioner/9",
    "Patient/123",
    "https://ehr.example.org/fhir/Patient/456",
    "RelatedPerson/r1",
  ),
  { nil: undefined },
);

const shuffledArb = <T>(items: T[]): fc.Arbitrary<T[]> =>
  fc.array(fc.nat(), { minLength: items.length, maxLength: items.length }).map((keys) =>
    items
      .map((x, i) => [keys[i]!, i, x] as const)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .map((e) => e[2]),
  );

/** Reasons that echo scope strings (scope-invalid) compared as a set; everything else exactly. */
function normalizeScopeEcho(d: Decision): unknown {
  const walk = (x: Decision): Record<string, unknown> => {
    const reasons = x.reasons ?? [];
    const echo = [
      ...new Set(reasons.filter((r) => r.code === "scope-invalid").map((r) => JSON.stringify(r))),
    ].sort();
    return {
      ...x,
      reasons: [...reasons.filter((r) => r.code !== "scope-invalid"), ...echo],
      ...(x.entries ? { entries: x.entries.map(walk) } : {}),
    };
  };
  return walk(d);
}

/** A resource is released by a decision: not denied, and (for a response) kept. */
function released(d: Decision, ref: string): boolean {
  if (d.decision === "deny") return false;
  return (d.keep ?? []).includes(ref);
}

const refOf = (r: Record<string, unknown>) => `${String(r.resourceType)}/${String(r.id)}`;

/** A searchset of these resources with unique ids (Patient ids kept: they decide membership). */
function bundleOf(resources: Record<string, unknown>[]): Record<string, unknown> {
  return {
    resourceType: "Bundle",
    type: "searchset",
    total: resources.length,
    entry: resources.map((r, i) => ({
      resource: r.resourceType === "Patient" ? r : { ...r, id: `e${i}` },
      search: { mode: "match" },
    })),
  };
}

const CANARY: DecisionInput = {
  claims: { scope: "patient/Observation.rs", patient: "123" },
  request: { method: "GET", url: "Observation/1" },
  resource: { resourceType: "Observation", id: "1", subject: { reference: "Patient/123" } },
};

/** The host is still usable: a known request gets its known answer. */
function checkCanary(ctx: Ctx, after: unknown): void {
  const d = decide(ctx, CANARY);
  if (d.decision !== "allow") fail("the engine is not usable after the previous input", { after, canary: d });
}

// --- P1: robustness ------------------------------------------------------------------------------

const claimsArb = fc
  .record({
    scope: fc.array(anyScopeArb, { maxLength: 5 }).map((a) => a.join(" ")),
    patient: fc.option(patientArb, { nil: undefined }),
    fhirUser: fhirUserArb,
  })
  .map(compact);

const anyJson = fc.anything({
  maxDepth: 4,
  withNullPrototype: true,
  withBoxedValues: true,
  withSparseArray: true,
  withMap: true,
  withSet: true,
  withDate: true,
  withTypedArray: true,
  withBigInt: true,
});

const mutatedInputArb: fc.Arbitrary<unknown> = fc
  .tuple(
    claimsArb,
    anyRequestCaseArb,
    fc.constantFrom("method", "url", "headers", "body", "claims", "resource", "response", "scope", "patient"),
    anyJson,
    garbageStringArb,
  )
  .map(([claims, rc, slot, junk, text]) => {
    const input = inputOf(claims, rc) as unknown as Record<string, Record<string, unknown>>;
    const req = { ...input.request! };
    switch (slot) {
      case "method":
        req.method = typeof junk === "string" ? junk : text;
        break;
      case "url":
        req.url = text;
        break;
      case "headers":
        req.headers = junk;
        break;
      case "body":
        req.body = junk;
        break;
      case "claims":
        return { ...input, request: req, claims: junk };
      case "scope":
        return {
          ...input,
          request: req,
          claims: { ...input.claims, scope: typeof junk === "string" ? text : junk },
        };
      case "patient":
        return { ...input, request: req, claims: { ...input.claims, patient: junk } };
      default:
        return { ...input, request: req, [slot]: junk };
    }
    return { ...input, request: req };
  });

export const neverThrows: PropertyDef = {
  id: "P1",
  title:
    "any input, well-formed or not: decide() returns a contract decision, never throws, and is deterministic",
  weight: 0.12,
  build: (ctx) =>
    fc.property(
      fc.oneof(
        {
          weight: 4,
          arbitrary: fc.tuple(claimsArb, anyRequestCaseArb).map(([c, rc]) => inputOf(c, rc) as unknown),
        },
        { weight: 4, arbitrary: mutatedInputArb },
        { weight: 1, arbitrary: anyJson },
      ),
      (input) => {
        ctx.stats.run();
        const d = decide(ctx, input);
        const violation = contractViolation(d);
        if (violation) fail(`not a contract decision: ${violation}`, { input, d });
        const again = decide(ctx, input);
        if (!isDeepStrictEqual(d, again))
          fail("the same input gave two different decisions", { input, d, again });
      },
    ),
};

// --- P2: the scope grammar ------------------------------------------------------------------------

interface ParsedScope {
  kind: string;
  scope: string;
  context?: string;
  type?: string;
  permissions?: string[];
  syntax?: string;
  constraints?: { param: string; values: string[] }[];
}

export const scopeGrammar: PropertyDef = {
  id: "P2",
  title:
    "scope grammar: every grammar-built scope parses to its meaning; nothing outside the grammar parses as a resource scope",
  weight: 0.08,
  build: (ctx) =>
    fc.property(
      fc.array(resourceScopeSpecArb, { maxLength: 3 }),
      fc.array(fc.oneof(malformedScopeArb, garbageStringArb, otherScopeArb), { maxLength: 3 }),
      fc.boolean(),
      (specs, junk, asArray) => {
        ctx.stats.run();
        const tokens = [
          ...specs.map(scopeText),
          ...junk.flatMap((j) => j.split(" ")).filter((t) => t !== ""),
        ];
        let parsed: { scopes: ParsedScope[] };
        try {
          ctx.stats.decision();
          parsed = ctx.engine.parseScopes((asArray ? tokens : tokens.join(" ")) as never) as {
            scopes: ParsedScope[];
          };
        } catch (err) {
          // The parse entrypoint may refuse input the WASM JSON reader cannot take (lone surrogates);
          // that is a SmartAuthzError, never anything else.
          if (
            (err as { name?: string }).name === "SmartAuthzError" &&
            tokens.some((t) => /[\ud800-\udfff]/.test(t))
          )
            return;
          throw err;
        }
        if (parsed.scopes.length !== tokens.length) fail("one parse per token expected", { tokens, parsed });
        specs.forEach((s, i) => {
          const p = parsed.scopes[i]!;
          const letters = s.perm in V1_TO_V2 ? V1_TO_V2[s.perm]! : s.perm;
          const want = parseConstraintQuery(s.query ?? "") ?? [];
          const ok =
            p.kind === "resource" &&
            p.context === s.context &&
            p.type === s.type &&
            p.syntax === (s.perm in V1_TO_V2 ? "v1" : "v2") &&
            isDeepStrictEqual(p.permissions, [...letters]) &&
            isDeepStrictEqual(p.constraints, s.query === undefined ? [] : want);
          if (!ok)
            fail("a grammar-built scope was not parsed to its meaning", {
              scope: scopeText(s),
              parsed: p,
              want,
            });
        });
        parsed.scopes.slice(specs.length).forEach((p) => {
          if (p.kind === "resource" && !couldBeResourceScope(p.scope)) {
            fail("a token outside the SMART grammar was accepted as a resource scope", { parsed: p });
          }
        });
      },
    ),
};

// --- P3: monotonicity -----------------------------------------------------------------------------

export const monotonicity: PropertyDef = {
  id: "P3",
  title: "monotonicity: adding scopes (valid or malformed) never removes access",
  weight: 0.2,
  build: (ctx) =>
    fc.property(
      anyRequestCaseArb.chain((rc) =>
        fc.tuple(
          fc.constant(rc),
          scopesForArb(rc.type),
          fc.array(fc.oneof(anyScopeArb, targetedScopeArb(rc.type)), { minLength: 1, maxLength: 3 }),
        ),
      ),
      fc.option(patientArb, { nil: undefined }),
      fhirUserArb,
      ([rc, base, extra], patient, fhirUser) => {
        ctx.stats.run();
        const claims = compact({ patient, fhirUser });
        const d1 = decide(ctx, inputOf({ ...claims, scope: base.join(" ") }, rc));
        if (d1.decision === "deny") return;
        const d2 = decide(ctx, inputOf({ ...claims, scope: [...base, ...extra].join(" ") }, rc));
        const loss = accessLoss(d1, d2);
        if (loss) fail(`adding scopes removed access: ${loss}`, { base, extra, claims, rc, d1, d2 });
      },
    ),
};

// --- P4, P5: equivalences ---------------------------------------------------------------------------

const noiseArb = fc.array(fc.oneof(otherScopeArb, malformedScopeArb), { maxLength: 2 });

export const v1v2Equivalence: PropertyDef = {
  id: "P4",
  title: "v1 ≡ v2: .read ≡ .rs, .write ≡ .cud, .* ≡ .cruds give identical decision documents",
  weight: 0.12,
  build: (ctx) =>
    fc.property(
      anyRequestCaseArb.chain((rc) =>
        fc.tuple(
          fc.constant(rc),
          fc.array(
            fc.record({
              context: fc.constantFrom("patient", "user", "system"),
              type: fc.oneof(
                { weight: 1, arbitrary: fc.constant("*") },
                { weight: 2, arbitrary: typeArb },
                { weight: 3, arbitrary: fc.constant(rc.type) },
              ),
              perm: v1PermArb,
            }),
            { minLength: 1, maxLength: 4 },
          ),
        ),
      ),
      noiseArb,
      fc.option(patientArb, { nil: undefined }),
      fhirUserArb,
      ([rc, specs], noise, patient, fhirUser) => {
        ctx.stats.run();
        const claims = compact({ patient, fhirUser });
        const v1 = [...specs.map((s) => scopeText(s)), ...noise];
        const v2 = [...specs.map((s) => scopeText({ ...s, perm: V1_TO_V2[s.perm]! })), ...noise];
        const d1 = decide(ctx, inputOf({ ...claims, scope: v1.join(" ") }, rc));
        const d2 = decide(ctx, inputOf({ ...claims, scope: v2.join(" ") }, rc));
        if (!isDeepStrictEqual(d1, d2))
          fail("v1 and the equivalent v2 scopes decide differently", { v1, v2, rc, d1, d2 });
      },
    ),
};

export const splitEquivalence: PropertyDef = {
  id: "P5",
  title: "scope union: X.rs ≡ X.r X.s (same constraints), in any order, with duplicates",
  weight: 0.1,
  build: (ctx) =>
    fc.property(
      anyRequestCaseArb.chain((rc) =>
        fc.tuple(
          fc.constant(rc),
          fc.array(fc.oneof(resourceScopeSpecArb, targetedSpecArb(rc.type)), { minLength: 1, maxLength: 3 }),
        ),
      ),
      noiseArb,
      fc.option(patientArb, { nil: undefined }),
      fc.nat(),
      ([rc, specs], noise, patient, dupSeed) => {
        ctx.stats.run();
        const v2 = specs.map((s) => ({ ...s, perm: V1_TO_V2[s.perm] ?? s.perm }));
        const whole = [...v2.map(scopeText), ...noise];
        const split = v2.flatMap((s) => [...s.perm].map((l) => scopeText({ ...s, perm: l })));
        const parts = [...split, ...noise];
        parts.push(parts[dupSeed % parts.length]!);
        const shuffled = fc.sample(shuffledArb(parts), { numRuns: 1, seed: dupSeed })[0]!;
        const claims = compact({ patient });
        const d1 = decide(ctx, inputOf({ ...claims, scope: whole.join(" ") }, rc));
        const d2 = decide(ctx, inputOf({ ...claims, scope: shuffled.join(" ") }, rc));
        if (!isDeepStrictEqual(normalizeScopeEcho(d1), normalizeScopeEcho(d2))) {
          fail("splitting, reordering or repeating scopes changed the decision", {
            whole,
            shuffled,
            rc,
            d1,
            d2,
          });
        }
      },
    ),
};

// --- P6: patient isolation ------------------------------------------------------------------------

const otherIdArb = (p: string) =>
  fc.oneof(
    fc.constantFrom(...PATIENTS.filter((x) => x !== p)),
    fc.stringMatching(/^[A-Za-z0-9\-.]{1,16}$/).filter((x) => x !== p),
  );

/** Only patient/ resource scopes (plus launch/identity scopes and junk that cannot be a resource scope). */
function patientTokenArb(t: string): fc.Arbitrary<{ scopes: string[]; unconstrainedRead: boolean }> {
  const granting = fc
    .record({
      type: fc.constantFrom(t, "*"),
      perm: fc.oneof(
        fc.constantFrom("read", "*"),
        v2LettersArb.filter((l) => /[rs]/.test(l)),
      ),
      constrained: fc.nat(3),
    })
    .chain((g) =>
      g.constrained === 0 && !(g.perm in V1_TO_V2)
        ? constraintQueryArb(g.type).map(
            (query) => ({ context: "patient", type: g.type, perm: g.perm, query }) as ScopeSpec,
          )
        : fc.constant({ context: "patient", type: g.type, perm: g.perm } as ScopeSpec),
    );
  const others = fc.array(
    resourceScopeSpecArb.map((s) => ({ ...s, context: "patient" })),
    { maxLength: 2 },
  );
  const extras = fc.array(
    fc.oneof(
      otherScopeArb,
      malformedScopeArb.filter((s) => !couldBeResourceScope(s) || s.startsWith("patient/")),
    ),
    { maxLength: 2 },
  );
  return fc.tuple(fc.array(granting, { minLength: 1, maxLength: 2 }), others, extras).map(([g, o, e]) => {
    const specs = [...g, ...o];
    const unconstrainedRead = specs.some(
      (s) =>
        (s.type === t || s.type === "*") && s.query === undefined && /[rs]/.test(V1_TO_V2[s.perm] ?? s.perm),
    );
    return { scopes: [...specs.map(scopeText), ...e], unconstrainedRead };
  });
}

const ISOLATION_VARIANTS = [
  "read",
  "head",
  "vread",
  "history",
  "read-response",
  "update",
  "update-move",
  "delete",
  "patch",
  "create",
  "search-bundle",
  "search-names-other",
  "search-unfiltered",
  "compartment-other",
] as const;

interface IsolationCase {
  P: string;
  Q: string;
  T: string;
  token: { scopes: string[]; unconstrainedRead: boolean };
  other: Record<string, unknown>;
  mine: Record<string, unknown>[];
  others: Record<string, unknown>[];
  variant: (typeof ISOLATION_VARIANTS)[number];
  query: string;
  fhirUser: string | undefined;
}

const isolationCaseArb: fc.Arbitrary<IsolationCase> = fc
  .tuple(
    patientArb,
    fc.oneof({ weight: 6, arbitrary: memberTypeArb }, { weight: 1, arbitrary: fc.constant("Patient") }),
  )
  .chain(([P, T]) =>
    otherIdArb(P).chain((Q) => {
      // Links name only other patients, or are look-alikes of P that do not name P; P is mentioned
      // in non-linking places (focus, notes, extensions, contained, identifiers, tags).
      const foreign = referenceArb(
        fc.oneof(namingRefArb(Q), decoyRefArb(P), otherIdArb(P).chain(namingRefArb)),
        P,
      );
      // Patient.link is not followed by default, so a link to P does not make Patient/Q visible.
      const patientLink = referenceArb(fc.oneof(namingRefArb(P), namingRefArb(Q)), P);
      const otherArb =
        T === "Patient"
          ? resourceArb("Patient", {
              linkRef: patientLink,
              allowNoLinks: true,
              mention: P,
              id: fc.constant(Q),
            })
          : resourceArb(T, { linkRef: foreign, allowNoLinks: true, mention: P });
      const mineArb =
        T === "Patient"
          ? resourceArb("Patient", { allowNoLinks: true, id: fc.constant(P) })
          : resourceArb(T, { linkRef: referenceArb(namingRefArb(P)), mention: Q });
      return fc.record({
        P: fc.constant(P),
        Q: fc.constant(Q),
        T: fc.constant(T),
        token: patientTokenArb(T),
        other: otherArb,
        mine: fc.array(mineArb, { maxLength: T === "Patient" ? 1 : 2 }),
        others: fc.array(otherArb, { minLength: 1, maxLength: 3 }),
        variant: fc.constantFrom(...ISOLATION_VARIANTS),
        query: searchQueryArb(T, 2),
        fhirUser: fhirUserArb,
      });
    }),
  );

function isolationInput(c: IsolationCase): DecisionInput {
  const claims = compact({ scope: c.token.scopes.join(" "), patient: c.P, fhirUser: c.fhirUser });
  const { T, other } = c;
  const id = String(other.id);
  const at = `${T}/${id}`;
  const first = c.mine[0] ? { ...c.mine[0], id } : { ...other, resourceType: T, id };
  switch (c.variant) {
    case "read":
      return { claims, request: { method: "GET", url: at }, resource: other };
    case "head":
      return { claims, request: { method: "HEAD", url: at }, resource: other };
    case "vread":
      return { claims, request: { method: "GET", url: `${at}/_history/2` }, resource: other };
    case "history":
      return { claims, request: { method: "GET", url: `${at}/_history` }, resource: other };
    case "read-response":
      return { claims, request: { method: "GET", url: at }, response: other };
    case "update":
      return { claims, request: { method: "PUT", url: at, body: other }, resource: other };
    case "update-move":
      return { claims, request: { method: "PUT", url: at, body: other }, resource: first };
    case "delete":
      return { claims, request: { method: "DELETE", url: at }, resource: other };
    case "patch":
      return {
        claims,
        request: { method: "PATCH", url: at, body: [{ op: "replace", path: "/status", value: "final" }] },
        resource: other,
      };
    case "create":
      return { claims, request: { method: "POST", url: T, body: other } };
    case "compartment-other":
      return {
        claims,
        request: { method: "GET", url: T === "Patient" ? `Patient/${c.Q}/*` : `Patient/${c.Q}/${T}` },
      };
    case "search-names-other": {
      const params = T === "Patient" ? ["_id"] : linkParams(T);
      const name = params[c.query.length % params.length]!;
      const value = c.query.length % 2 === 0 ? c.Q : `Patient/${c.Q}`;
      return { claims, request: { method: "GET", url: `${T}?${name}=${encodeURIComponent(value)}` } };
    }
    case "search-unfiltered":
    case "search-bundle":
    default:
      return { claims, request: { method: "GET", url: c.query === "" ? T : `${T}?${c.query}` } };
  }
}

export const patientIsolation: PropertyDef = {
  id: "P6",
  title: "patient isolation: a patient/ token never releases, changes or searches another patient's resource",
  weight: 0.16,
  build: (ctx) =>
    fc.property(isolationCaseArb, fc.nat(), (c, seed) => {
      ctx.stats.run();
      if (c.variant === "search-bundle") {
        const entries = fc.sample(shuffledArb([...c.others, ...c.mine]), { numRuns: 1, seed })[0]!;
        const bundle = bundleOf(entries);
        const input = { ...isolationInput(c), response: bundle };
        const d = decide(ctx, input);
        if (d.decision === "deny") return;
        const items = (bundle.entry as { resource: Record<string, unknown> }[]).map((e) => e.resource);
        const mine = new Set(c.mine.map((m) => m));
        items.forEach((r, i) => {
          const isMine = mine.has(entries[i]!);
          const ref = refOf(r);
          const kept = (d.keep ?? []).includes(ref);
          const dropped = (d.drop ?? []).some((x) => x.ref === ref);
          if (!isMine && (kept || !dropped))
            fail("another patient's resource was released from a Bundle", { c, input, d, ref });
          if (isMine && c.token.unconstrainedRead && !kept) {
            fail("the patient's own resource was withheld despite an unconstrained patient/ read scope", {
              c,
              input,
              d,
              ref,
            });
          }
        });
        return;
      }
      const input = isolationInput(c);
      const d = decide(ctx, input);
      if (c.variant === "search-unfiltered") {
        // No response to filter: what the search may return must already be confined to P.
        if (d.decision === "deny" || queryConfines(c.T, c.query, c.P)) return;
        if (d.decision === "allow")
          fail("an unconfined search was allowed for a patient/ token", { c, input, d });
        const confines = (alt: Record<string, string>) =>
          Object.entries(alt).some(
            ([k, v]) =>
              confiningParams(c.T).includes(k) &&
              orValues(v).every(
                (x) => namesPatient(x, c.P) || (x === c.P && (c.T === "Patient" || patientOnlyParam(c.T, k))),
              ),
          );
        if (!(d.narrow ?? []).every(confines))
          fail("an unconfined search was narrowed without confining it to the patient", { c, input, d });
        return;
      }
      if (c.variant === "search-names-other") {
        if (d.decision === "allow") fail("a search naming another patient was allowed", { c, input, d });
        if (d.decision === "filter") {
          const confines = (alt: Record<string, string>) =>
            Object.values(alt).some((v) => v === `Patient/${c.P}` || (c.T === "Patient" && v === c.P));
          if (!(d.narrow ?? []).every(confines))
            fail("a search naming another patient was not confined to the patient in context", {
              c,
              input,
              d,
            });
        }
        return;
      }
      if (released(d, refOf(c.other)) || d.decision !== "deny") {
        fail(`another patient's resource was not denied (${c.variant})`, { c, input, d });
      }
    }),
};

/** The search's own parameters confine it to patient p (a confining parameter whose values all name p). */
function queryConfines(t: string, query: string, p: string): boolean {
  if (query === "") return false;
  return query.split("&").some((item) => {
    const i = item.indexOf("=");
    if (i <= 0) return false;
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(item.slice(0, i));
      value = decodeURIComponent(item.slice(i + 1));
    } catch {
      return false;
    }
    const [base, modifier = ""] = name.split(":");
    if (name.includes(".") || !["", "Patient"].includes(modifier) || !confiningParams(t).includes(base!))
      return false;
    const values = orValues(value);
    return (
      values.length > 0 &&
      values.every(
        (v) =>
          namesPatient(v, p) ||
          (v === p && (t === "Patient" || modifier === "Patient" || patientOnlyParam(t, base!))),
      )
    );
  });
}

// --- P7: v2 constraints ---------------------------------------------------------------------------

interface ConstraintCase {
  T: string;
  specs: ScopeSpec[];
  others: string[];
  resources: Record<string, unknown>[];
  read: boolean;
}

const constraintCaseArb: fc.Arbitrary<ConstraintCase> = fc
  .constantFrom("Observation", "Condition")
  .chain((T) =>
    fc.record({
      T: fc.constant(T),
      specs: fc.array(
        fc
          .record({
            context: fc.constantFrom("user", "system"),
            type: fc.constantFrom(T, T, "*"),
            perm: v2LettersArb.filter((l) => /[rs]/.test(l)),
          })
          .chain((s) => constraintQueryArb(s.type === "*" ? T : s.type).map((query) => ({ ...s, query }))),
        { minLength: 1, maxLength: 3 },
      ),
      others: fc.array(resourceScopeSpecArb.filter((s) => s.type !== T && s.type !== "*").map(scopeText), {
        maxLength: 2,
      }),
      resources: fc.array(resourceArb(T, { allowNoLinks: true }), { minLength: 1, maxLength: 4 }),
      read: fc.boolean(),
    }),
  );

/**
 * From the spec, not the policy: whether some grant of a constrained token covers a resource for
 * letter(s). A scope that repeats a parameter (category=a&category=b) is an AND under FHIR search
 * rules, but a policy may also refuse it as not narrowable (grants nothing): `repeated` chooses.
 * A user/ grant covers only what the user (fhirUser) may reach (user-access.ts).
 */
function constrainedVisible(
  c: ConstraintCase,
  resource: Record<string, unknown>,
  letters: string[],
  repeated: "and" | "nothing",
  fhirUser: string | undefined,
): boolean {
  return c.specs.some((s) => {
    if (!letters.some((l) => s.perm.includes(l))) return false;
    if (s.context === "user" && !userReaches(fhirUser, resource)) return false;
    const cs = parseConstraintQuery(s.query ?? "");
    if (cs === undefined) return false;
    if (repeated === "nothing" && new Set(cs.map((k) => k.param)).size !== cs.length) return false;
    return resourceSatisfies(resource, cs);
  });
}

/** true/false when both readings of repeated parameters agree, undefined when either is acceptable. */
function expectedVisible(
  c: ConstraintCase,
  resource: Record<string, unknown>,
  letters: string[],
  fhirUser: string | undefined,
): boolean | undefined {
  const and = constrainedVisible(c, resource, letters, "and", fhirUser);
  return and === constrainedVisible(c, resource, letters, "nothing", fhirUser) ? and : undefined;
}

export const constraintEnforcement: PropertyDef = {
  id: "P7",
  title:
    "v2 constraints: a constrained token releases exactly the resources that match a grant (FHIR token rules)",
  weight: 0.1,
  build: (ctx) =>
    fc.property(constraintCaseArb, fhirUserArb, (c, fhirUser) => {
      ctx.stats.run();
      const claims = compact({ scope: [...c.specs.map(scopeText), ...c.others].join(" "), fhirUser });
      if (c.read) {
        const r = c.resources[0]!;
        const input = { claims, request: { method: "GET", url: `${c.T}/${String(r.id)}` }, resource: r };
        const d = decide(ctx, input);
        const visible = expectedVisible(c, r, ["r"], fhirUser);
        if (visible === undefined) return;
        const want = visible ? "allow" : "deny";
        if (d.decision !== want)
          fail(`read of a ${want === "allow" ? "matching" : "non-matching"} resource: expected ${want}`, {
            claims,
            resource: r,
            d,
          });
        return;
      }
      const bundle = bundleOf(c.resources);
      const input = { claims, request: { method: "GET", url: c.T }, response: bundle };
      const d = decide(ctx, input);
      const enforceable = (s: ScopeSpec, repeatedOk: boolean) => {
        if (s.context === "user" && !userMaySearch(fhirUser, c.T)) return false;
        const cs = parseConstraintQuery(s.query ?? "");
        if (!cs || !cs.every((k) => constraintPaths(c.T, k.param))) return false;
        return repeatedOk || new Set(cs.map((k) => k.param)).size === cs.length;
      };
      const searchable = c.specs.some((s) => s.perm.includes("s") && enforceable(s, false));
      const searchableIfAnd = c.specs.some((s) => s.perm.includes("s") && enforceable(s, true));
      if (searchable !== searchableIfAnd) return; // only a repeated-parameter scope could allow it: either is fine
      if (!searchable) {
        if (d.decision !== "deny") fail("a search no enforceable grant covers was not denied", { claims, d });
        return;
      }
      if (d.decision === "deny") fail("a search an enforceable grant covers was denied", { claims, d });
      const items = (bundle.entry as { resource: Record<string, unknown> }[]).map((e) => e.resource);
      for (const r of items) {
        const want = expectedVisible(c, r, ["r", "s"], fhirUser);
        const kept = (d.keep ?? []).includes(refOf(r));
        if (want !== undefined && want !== kept)
          fail(`resource ${refOf(r)} should ${want ? "" : "not "}be released`, { claims, resource: r, d });
      }
    }),
};

// --- P8: unparseable input is denied --------------------------------------------------------------

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]);
const POWER = {
  scope: "system/*.cruds user/*.cruds patient/*.cruds",
  patient: "123",
  fhirUser: "Practitioner/9",
};

function recognizableFirstSegment(url: string): boolean {
  const path = url.split("?")[0]!;
  if (path === "") return true;
  let seg: string;
  try {
    seg = decodeURIComponent(path.split("/")[0]!);
  } catch {
    return false;
  }
  return (
    RESOURCE_TYPES.includes(seg) ||
    ["metadata", ".well-known", "_history"].includes(seg) ||
    seg.startsWith("$")
  );
}

export const unparseableDenied: PropertyDef = {
  id: "P8",
  title: "unparseable: garbage methods, URLs, claims, scopes or whole inputs are denied",
  weight: 0.12,
  build: (ctx) =>
    fc.property(
      fc.oneof(
        // a method that is not one FHIR uses
        fc.tuple(
          fc.constant("method"),
          garbageStringArb.filter((m) => !METHODS.has(m.toUpperCase())),
        ),
        // a URL that is absolute, rooted, has a fragment, bad escapes, or names nothing FHIR knows
        fc.tuple(
          fc.constant("url"),
          fc.oneof(
            garbageStringArb.filter((u) => !recognizableFirstSegment(u)),
            fc
              .tuple(
                fc.constantFrom(
                  "/",
                  "https://x/",
                  "urn:x:",
                  "Observation#",
                  "Observation/%zz",
                  "Observation//",
                  "Observation/../",
                  "Observation/%2e%2e/",
                  "Observation/a%2Fb/",
                  "Patient/123/%2E/",
                ),
                garbageStringArb,
              )
              .map(([p, g]) => p + g),
          ),
        ),
        // claims that are not an object, or scopes that cannot grant anything
        fc.tuple(
          fc.constant("claims"),
          fc.oneof(
            anyJson.filter((x) => typeof x !== "object" || x === null || Array.isArray(x)),
            fc.constant(undefined),
          ),
        ),
        fc.tuple(
          fc.constant("scope"),
          fc.oneof(
            fc.array(fc.oneof(garbageStringArb, malformedScopeArb)).map((a) => a.join(" ")),
            anyJson.filter((x) => typeof x !== "string" && !Array.isArray(x)),
            fc.array(fc.oneof(garbageStringArb, malformedScopeArb, anyJson)),
          ),
        ),
        fc.tuple(fc.constant("input"), anyJson),
      ),
      fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE"),
      ([slot, junk], method) => {
        ctx.stats.run();
        let input: unknown;
        let mustDeny = true;
        const request = {
          method,
          url: "Observation/1",
          body: { resourceType: "Observation", subject: { reference: "Patient/123" } },
        };
        switch (slot) {
          case "method":
            input = { claims: POWER, request: { ...request, method: junk } };
            break;
          case "url":
            input = { claims: POWER, request: { ...request, url: junk } };
            break;
          case "claims":
            input = { claims: junk, request };
            break;
          case "scope": {
            const tokens =
              typeof junk === "string"
                ? junk.split(" ")
                : Array.isArray(junk)
                  ? junk.filter((x): x is string => typeof x === "string")
                  : [];
            mustDeny = !tokens.some(couldBeResourceScope);
            input = {
              claims: { patient: "123", scope: junk },
              request: { method: "GET", url: "Observation/1" },
            };
            break;
          }
          default: {
            input = junk;
            const o = junk as Record<string, unknown> | null;
            const isObj = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
            mustDeny = !(isObj(o) && isObj(o!.claims) && isObj(o!.request));
          }
        }
        const d = decide(ctx, input);
        const violation = contractViolation(d);
        if (violation) fail(`not a contract decision: ${violation}`, { input, d });
        if (mustDeny && d.decision !== "deny") fail(`unparseable ${slot} was not denied`, { input, d });
      },
    ),
};

// --- P9: deep and huge JSON ------------------------------------------------------------------------

const MB = 1024 * 1024;

/** ~1 MB of JSON: a big string, many small objects, or a wide object. */
function hugeJson(kind: number, seed: string): unknown {
  switch (kind % 3) {
    case 0:
      return seed.repeat(Math.ceil(MB / seed.length));
    case 1:
      return Array.from({ length: MB / 32 }, (_, i) => ({ k: `${seed}${i}`.slice(0, 16) }));
    default:
      return Object.fromEntries(Array.from({ length: MB / 32 }, (_, i) => [`k${i}`, seed.slice(0, 16)]));
  }
}

const PLACEMENTS = [
  "scope",
  "claims",
  "url",
  "method",
  "create-body",
  "read-resource",
  "response",
  "if-none-exist",
  "batch",
  "irrelevant",
] as const;

export const deepAndHuge: PropertyDef = {
  id: "P9",
  title:
    "deep (depth ~1,000) and huge (~1 MB) JSON: no exception, denied where it is judged, host usable after",
  weight: 0.004,
  maxRuns: 400,
  build: (ctx) =>
    fc.property(
      fc.constantFrom(...PLACEMENTS),
      fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      fc.integer({ min: 900, max: 1100 }),
      fc.constantFrom<"object" | "array" | "mixed">("object", "array", "mixed"),
      fc.nat(2),
      fc.stringMatching(/^[a-z%/?&=|.]{1,8}$/),
      (placement, huge, depth, shape, kind, seed) => {
        ctx.stats.run();
        const big = huge ? hugeJson(kind, seed) : deepJson(depth, shape, seed);
        const bigText = typeof big === "string" ? big : JSON.stringify(big);
        const claims = { scope: "patient/Observation.crus patient/Patient.rs", patient: "123" };
        let input: Record<string, unknown>;
        let mustDeny = true;
        switch (placement) {
          case "scope":
            input = { claims: { ...claims, scope: big }, request: { method: "GET", url: "Observation/1" } };
            break;
          case "claims":
            input = { claims: huge ? { big } : big, request: { method: "GET", url: "Observation/1" } };
            break;
          case "url":
            input = { claims, request: { method: "GET", url: `Observation/${bigText}` } };
            break;
          case "method":
            input = { claims, request: { method: bigText, url: "Observation/1" } };
            break;
          case "create-body":
            input = {
              claims,
              request: {
                method: "POST",
                url: "Observation",
                body: { resourceType: "Observation", subject: big },
              },
            };
            break;
          case "read-resource":
            input = {
              claims,
              request: { method: "GET", url: "Observation/1" },
              resource: { resourceType: "Observation", id: "1", subject: big },
            };
            break;
          case "response":
            input = {
              claims,
              request: { method: "GET", url: "Observation" },
              response: {
                resourceType: "Bundle",
                type: "searchset",
                entry: [{ resource: { resourceType: "Observation", id: "9", subject: big } }],
              },
            };
            break;
          case "if-none-exist":
            input = {
              claims,
              request: {
                method: "POST",
                url: "Observation",
                headers: { "if-none-exist": `patient=${bigText}` },
                body: { resourceType: "Observation", subject: { reference: "Patient/123" } },
              },
            };
            break;
          case "batch":
            input = {
              claims,
              request: {
                method: "POST",
                url: "",
                body: {
                  resourceType: "Bundle",
                  type: "transaction",
                  entry: [
                    {
                      request: { method: "POST", url: "Observation" },
                      resource: { resourceType: "Observation", subject: big },
                    },
                  ],
                },
              },
            };
            break;
          case "irrelevant":
          default:
            // Where the big value is not looked at, the answer is the one without it, or a fail-closed deny.
            mustDeny = false;
            input = {
              claims: { ...claims, extra: big },
              request: { method: "GET", url: "Observation/1", headers: { "x-big": bigText } },
              resource: {
                resourceType: "Observation",
                id: "1",
                subject: { reference: "Patient/123" },
                note: big,
              },
            };
        }
        const d = decide(ctx, input);
        const violation = contractViolation(d);
        if (violation) fail(`not a contract decision: ${violation}`, { placement, huge, d });
        const confined = (x: Decision) =>
          x.decision === "filter" &&
          (x.narrow ?? []).length > 0 &&
          (x.narrow ?? []).every((alt) => Object.values(alt).includes("Patient/123"));
        if (placement === "response" && d.decision !== "deny" && (d.keep ?? []).length > 0) {
          fail("a huge/deep foreign resource was released", { placement, huge, d });
        } else if (placement === "if-none-exist") {
          // A value that names nobody does not exclude the search: it may be narrowed to the patient instead.
          if (d.decision !== "deny" && !confined(d))
            fail("a deep/huge If-None-Exist was neither denied nor confined to the patient", {
              placement,
              huge,
              d,
            });
        } else if (placement !== "response" && mustDeny && d.decision !== "deny") {
          fail(`deep/huge ${placement} was not denied`, { placement, huge, depth, shape, d });
        }
        if (!mustDeny && d.decision !== "allow" && !(d.decision === "deny" && d.status === 500)) {
          fail("an irrelevant big value changed the decision", { placement, huge, d });
        }
        checkCanary(ctx, { placement, huge, depth, shape });
      },
    ),
};

// --- P10: the patch guard ------------------------------------------------------------------------

interface PatchCase {
  mode: "patient" | "constraint";
  T: string;
  P: string;
  Q: string;
  scope: string;
  constraint: string;
  stored: Record<string, unknown>;
  ops: PatchOp[];
}

function pointersFor(t: string): string[] {
  const firsts = [...new Set(linkPaths(t).map((p) => p[0]!))];
  return [
    "",
    "/status",
    "/note",
    "/category",
    "/category/0",
    "/category/0/coding/0/code",
    "/code",
    "/focus",
    ...firsts.flatMap((f) => [`/${f}`, `/${f}/reference`, `/${f}/0`, `/${f}/0/reference`, `/${f}/-`]),
    ...linkPaths(t)
      .filter((p) => p.length > 1)
      .map((p) => `/${p[0]}/0/${p.slice(1).join("/")}`),
  ];
}

const patchCaseArb: fc.Arbitrary<PatchCase> = fc
  .record({
    mode: fc.constantFrom<"patient" | "constraint">("patient", "patient", "constraint"),
    P: patientArb,
    category: fc.constantFrom(...["laboratory", "vital-signs", "encounter-diagnosis"]),
  })
  .chain(({ mode, P, category }) => {
    const T =
      mode === "patient"
        ? fc.constantFrom(
            "Observation",
            "Condition",
            "Encounter",
            "Communication",
            "AllergyIntolerance",
            "Appointment",
          )
        : fc.constantFrom("Observation", "Condition");
    return T.chain((t) =>
      otherIdArb(P).chain((Q) => {
        const foreignRef = { reference: `Patient/${Q}` };
        const value = fc.constantFrom<unknown>(
          foreignRef,
          `Patient/${Q}`,
          [foreignRef],
          "final",
          [{ coding: [{ system: OBS_CATEGORY, code: "social-history" }] }],
          { coding: [{ system: OBS_CATEGORY, code: "social-history" }] },
          "social-history",
          {
            resourceType: t,
            id: "1",
            subject: foreignRef,
            patient: foreignRef,
            category: [{ coding: [{ code: "social-history" }] }],
          },
          {
            resourceType: t,
            id: "1",
            subject: { reference: `Patient/${P}` },
            patient: { reference: `Patient/${P}` },
          },
        );
        const firsts = [...new Set(linkPaths(t).map((p) => p[0]!))];
        const pointer = fc.oneof(
          fc.constantFrom(...pointersFor(t)),
          fc.constantFrom("", "/category", ...firsts.map((f) => `/${f}`)),
        );
        const op = fc
          .record({
            op: fc.constantFrom("add", "add", "replace", "replace", "remove", "move", "copy", "test"),
            path: pointer,
            from: pointer,
            value,
          })
          .map(
            ({ op, path, from, value }) =>
              (op === "move" || op === "copy"
                ? { op, path, from }
                : op === "remove"
                  ? { op, path }
                  : { op, path, value }) as PatchOp,
          );
        const stored = resourceArb(t, { linkRef: referenceArb(namingRefArb(P)), id: fc.constant("1") }).map(
          (r) => ({
            ...r,
            category: [
              { coding: [{ system: t === "Condition" ? COND_CATEGORY : OBS_CATEGORY, code: category }] },
            ],
          }),
        );
        const scope =
          mode === "patient"
            ? fc.constantFrom(`patient/${t}.rus`, `patient/${t}.u`, "patient/*.cruds", `patient/${t}.write`)
            : fc.constantFrom(
                `user/${t}.rus?category=${category}`,
                `system/${t}.u?category=${category}`,
                `user/*.cruds?category=${category}`,
              );
        return fc.record({
          mode: fc.constant(mode),
          T: fc.constant(t),
          P: fc.constant(P),
          Q: fc.constant(Q),
          scope,
          constraint: fc.constant(`category=${category}`),
          stored,
          ops: fc.array(op, { minLength: 1, maxLength: 3 }),
        });
      }),
    );
  });

/** KB-3's trigger: an operation on the document root (RFC 6902: "" is the whole resource). */
export const touchesRoot = (ops: PatchOp[]): boolean => ops.some((o) => o.path === "" || o.from === "");

export const patchGuard: PropertyDef = {
  id: "P10",
  title:
    "patch guard: a JSON Patch whose result leaves the patient's compartment or the granted constraints is denied",
  weight: 0.06,
  build: (ctx) =>
    fc.property(patchCaseArb, (c) => {
      ctx.stats.run();
      const after = applyJsonPatch(c.stored, c.ops);
      if (after === undefined) return; // the server would reject the patch
      const escapes =
        c.mode === "patient"
          ? !inCompartment(after, c.P)
          : !resourceSatisfies(after as Record<string, unknown>, parseConstraintQuery(c.constraint)!);
      if (!escapes) return;
      const claims =
        c.mode === "patient"
          ? { scope: c.scope, patient: c.P }
          : { scope: c.scope, fhirUser: "Practitioner/9" };
      const input = {
        claims,
        request: { method: "PATCH", url: `${c.T}/1`, body: c.ops },
        resource: c.stored,
      };
      const d = decide(ctx, input);
      if (d.decision === "deny") return;
      fail(
        `a patch that takes the resource outside the ${c.mode === "patient" ? "patient's compartment" : "granted constraints"} was ${d.decision}ed`,
        { input, after, d },
      );
    }),
};

export const ALL_PROPERTIES: PropertyDef[] = [
  neverThrows,
  scopeGrammar,
  monotonicity,
  v1v2Equivalence,
  splitEquivalence,
  patientIsolation,
  constraintEnforcement,
  unparseableDenied,
  deepAndHuge,
  patchGuard,
];

/** Runs for one property out of a total budget. */
export function runsFor(p: PropertyDef, total: number): number {
  const n = Math.max(1, Math.round(total * p.weight));
  return p.maxRuns !== undefined ? Math.min(n, p.maxRuns) : n;
}

export { idArb, requestCaseArb, typeArb };
