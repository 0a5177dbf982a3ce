/**
 * fast-check generators for the decision contract: SMART scopes drawn from the grammar (contexts,
 * real R4 type names, v1 and v2 permissions, query constraints) and their malformed mutations;
 * FHIR requests of every interaction the policy classifies; resources that link to chosen patients
 * through the real compartment paths (with look-alike references as decoys); response Bundles and
 * batch/transaction Bundles; and plain garbage.
 */
import fc from "fast-check";
import type { DecisionInput } from "../../../src/core/contract.js";
import {
  COMPARTMENT_TYPES,
  MEMBER_TYPES,
  RESOURCE_TYPES,
  SHARED_TYPES,
  linkParams,
  linkPaths,
  tokenParams,
} from "./fhir-data.js";

// --- Pools -------------------------------------------------------------------------------------

/** Launch patients. Small on purpose, so generated searches and references collide with them. */
export const PATIENTS = ["123", "456", "p-9"] as const;
export const CONTEXTS = ["patient", "user", "system"] as const;
export const V2_LETTERS = ["c", "r", "u", "d", "s"] as const;
export const V1_TO_V2: Record<string, string> = { read: "rs", write: "cud", "*": "cruds" };

/** Types most requests are about (weighted in), so scopes and requests meet often. */
export const FOCUS_TYPES = [
  "Observation",
  "Condition",
  "Encounter",
  "Patient",
  "MedicationRequest",
  "Communication",
  "AllergyIntolerance",
  "DocumentReference",
  "Appointment",
  "Medication",
  "Organization",
  "Practitioner",
  "CodeSystem",
  "ValueSet",
  "Group",
  "Task",
] as const;

export const OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category";
export const COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category";
export const LOINC = "http://loinc.org";
export const CATEGORY_CODES = [
  "laboratory",
  "vital-signs",
  "social-history",
  "encounter-diagnosis",
  "problem-list-item",
];
export const LOINC_CODES = ["8867-4", "1234-5", "4548-4"];
export const STATUSES = ["final", "amended", "preliminary", "active"];
const SYSTEMS = [OBS_CATEGORY, COND_CATEGORY, LOINC, "urn:oid:1.2.3"];

export const idArb = fc.constantFrom("1", "2", "abc", "o-1", "X.9");
export const patientArb = fc.constantFrom(...PATIENTS);
export const typeArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...FOCUS_TYPES) },
  { weight: 2, arbitrary: fc.constantFrom(...RESOURCE_TYPES) },
);
export const memberTypeArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom("Observation", "Condition", "Encounter", "Communication", "Appointment"),
  },
  { weight: 2, arbitrary: fc.constantFrom(...MEMBER_TYPES) },
);

// --- Scopes ------------------------------------------------------------------------------------

export interface ScopeSpec {
  context: string;
  type: string;
  /** v1 word (read, write, *) or v2 letters in order. */
  perm: string;
  /** The query suffix without "?", v2 only. */
  query?: string;
}

export const scopeText = (s: ScopeSpec): string =>
  `${s.context}/${s.type}.${s.perm}${s.query !== undefined ? `?${s.query}` : ""}`;

export const v2LettersArb = fc.subarray([...V2_LETTERS], { minLength: 1 }).map((a) => a.join(""));
export const v1PermArb = fc.constantFrom("read", "write", "*");

/** A token search value in one of FHIR's four forms: code, system|code, |code, system|. */
export function tokenValueArb(
  codes: readonly string[],
  systems: readonly string[] = SYSTEMS,
): fc.Arbitrary<string> {
  const code = fc.constantFrom(...codes);
  const system = fc.constantFrom(...systems);
  return fc.oneof(
    { weight: 3, arbitrary: code },
    { weight: 3, arbitrary: fc.tuple(system, code).map(([s, c]) => `${s}|${c}`) },
    { weight: 1, arbitrary: code.map((c) => `|${c}`) },
    { weight: 1, arbitrary: system.map((s) => `${s}|`) },
  );
}

/** An OR-list of token values ("a,b"), sometimes percent-encoded as a client would send it. */
function orList(value: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(fc.uniqueArray(value, { minLength: 1, maxLength: 2 }), fc.boolean())
    .map(([vs, enc]) => (enc ? vs.map(encodeURIComponent).join(",") : vs.join(",")));
}

export const categoryValueArb = tokenValueArb(CATEGORY_CODES, [OBS_CATEGORY, COND_CATEGORY]);
export const codeValueArb = tokenValueArb(LOINC_CODES, [LOINC, "urn:oid:1.2.3"]);
export const statusValueArb = fc.constantFrom(...STATUSES);

/** A v2 query constraint for type t: mostly enforceable token params, sometimes ones the policy cannot enforce. */
export function constraintQueryArb(t: string): fc.Arbitrary<string> {
  const supported = tokenParams(t === "*" ? "Observation" : t);
  const preferred = ["category", "code", "status"].filter((p) => supported.includes(p));
  const pair: fc.Arbitrary<string> = fc.oneof(
    ...(preferred.includes("category")
      ? [{ weight: 4, arbitrary: orList(categoryValueArb).map((v) => `category=${v}`) }]
      : []),
    ...(preferred.includes("code")
      ? [{ weight: 2, arbitrary: orList(codeValueArb).map((v) => `code=${v}`) }]
      : []),
    ...(preferred.includes("status")
      ? [{ weight: 1, arbitrary: statusValueArb.map((v) => `status=${v}`) }]
      : []),
    ...(supported.length > 0
      ? [
          {
            weight: 1,
            arbitrary: fc.tuple(fc.constantFrom(...supported), codeValueArb).map(([p, v]) => `${p}=${v}`),
          },
        ]
      : []),
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "code:in=http://valueset.example.org/ValueSet/diabetes-codes",
        "patient.birthdate=1990",
        "date=ge2020",
        "_tag=http://example.org|x",
        "_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
      ),
    },
  );
  return fc.uniqueArray(pair, { minLength: 1, maxLength: 2 }).map((ps) => ps.join("&"));
}

export const resourceScopeSpecArb: fc.Arbitrary<ScopeSpec> = fc
  .record({
    context: fc.constantFrom(...CONTEXTS),
    type: fc.oneof({ weight: 1, arbitrary: fc.constant("*") }, { weight: 5, arbitrary: typeArb }),
    v1: fc.boolean(),
    v1perm: v1PermArb,
    v2perm: v2LettersArb,
    constrained: fc.nat(4),
  })
  .chain((r) => {
    if (r.v1) return fc.constant<ScopeSpec>({ context: r.context, type: r.type, perm: r.v1perm });
    if (r.constrained !== 0)
      return fc.constant<ScopeSpec>({ context: r.context, type: r.type, perm: r.v2perm });
    return constraintQueryArb(r.type).map<ScopeSpec>((query) => ({
      context: r.context,
      type: r.type,
      perm: r.v2perm,
      query,
    }));
  });

export const otherScopeArb = fc.constantFrom(
  "launch",
  "launch/patient",
  "launch/encounter",
  "openid",
  "fhirUser",
  "profile",
  "offline_access",
  "online_access",
  "__profilePhoto.manage",
  "https://ehr.example.org/scopes/profilePhoto.manage",
);

/** Mutations that usually (not always) break a valid scope. */
const MUTATIONS: ((s: string) => string)[] = [
  (s) => s.toUpperCase(),
  (s) => s.replace(".", ".."),
  (s) => s.replace(".", ""),
  (s) => `${s}?`,
  (s) => `${s}?a`,
  (s) => `${s}?=x`,
  (s) => `${s}?category=`,
  (s) => `${s}&`,
  (s) => s.replace(/\.([a-z*]+)/, (_m, p: string) => `.${[...p].reverse().join("")}`),
  (s) => s.replace(/\.([a-z*]+)/, (_m, p: string) => `.${p}${p}`),
  (s) => s.replace("/", "//"),
  (s) => s.replace(/^[a-z]+/, (c) => c[0]!.toUpperCase() + c.slice(1)),
  (s) => s.replace(/\/([A-Z])/, (_m, c: string) => `/${c.toLowerCase()}`),
  (s) => s.replace(/\.[a-z*]+/, ".rd?x"),
  (s) => s.replace(/\.[a-z*]+/, ".read?category=laboratory"),
  (s) => `${s}%`,
  (s) => `${s}?category=%zz`,
  (s) => s.replace(/\?.*$/, "?category=a=b&=c"),
  (s) => s.replace(/\//, "/Ob\u00e9rvation."),
  (s) => `x${s}`,
];

export const malformedScopeArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(resourceScopeSpecArb, fc.nat(MUTATIONS.length - 1))
      .map(([s, i]) => MUTATIONS[i]!(scopeText(s))),
  },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 24 }).map((s) => s.replace(/\s/g, "_")) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "patient/Observation.sr",
      "patient/Observation.dus",
      "patient/Observation.RS",
      "patient/observation.rs",
      "Patient/Observation.rs",
      "patient/Observation.",
      "patient/.rs",
      "patient/*.",
      "patient/*.x",
      "patient/Observation.read?category=laboratory",
      "patient/Observation.rs?",
      "patient/Observation.rs?category",
      "user/Observation.crudss",
      "system/Foo.rs",
      "system/*.**",
      "*/*.*",
    ),
  },
);

/** Any scope token: mostly valid resource scopes, some launch/identity/extension ones, some malformed. */
export const anyScopeArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: resourceScopeSpecArb.map(scopeText) },
  { weight: 1, arbitrary: otherScopeArb },
  { weight: 2, arbitrary: malformedScopeArb },
);

/** A resource scope aimed at type t (or "*"), in any context, v1 or v2, sometimes constrained. */
export function targetedSpecArb(t: string): fc.Arbitrary<ScopeSpec> {
  if (t === "*") return resourceScopeSpecArb;
  return fc
    .record({
      context: fc.constantFrom("patient", "patient", "user", "system"),
      type: fc.constantFrom(t, t, "*"),
      v1: fc.nat(3),
      v1perm: v1PermArb,
      v2perm: fc.oneof(v2LettersArb, fc.constantFrom("cruds", "rs", "cud")),
      q: fc.nat(3),
    })
    .chain((r) => {
      if (r.v1 === 0) return fc.constant<ScopeSpec>({ context: r.context, type: r.type, perm: r.v1perm });
      if (r.q !== 0) return fc.constant<ScopeSpec>({ context: r.context, type: r.type, perm: r.v2perm });
      return constraintQueryArb(r.type).map<ScopeSpec>((query) => ({
        context: r.context,
        type: r.type,
        perm: r.v2perm,
        query,
      }));
    });
}

export const targetedScopeArb = (t: string): fc.Arbitrary<string> => targetedSpecArb(t).map(scopeText);

/** Scopes for a request on type t: random ones plus, usually, some aimed at t. */
export function scopesForArb(t: string, maxLength = 4): fc.Arbitrary<string[]> {
  return fc
    .tuple(
      fc.array(anyScopeArb, { maxLength: Math.max(0, maxLength - 2) }),
      fc.array(targetedScopeArb(t), { minLength: 1, maxLength: 3 }),
    )
    .map(([a, b]) => [...b, ...a]);
}

/**
 * A lenient transcription of the SMART grammar (digest §1.3): whatever does not match it can never
 * be a resource scope. (The policy may still reject more, e.g. undecodable constraint values.)
 */
const V1_RE = /^(patient|user|system)\/([A-Za-z]+|\*)\.(read|write|\*)$/;
const V2_RE = /^(patient|user|system)\/([A-Za-z]+|\*)\.(c?r?u?d?s?)(\?[^&=]+=[^&]*(&[^&=]+=[^&]*)*)?$/;
const KNOWN_TYPES = new Set(RESOURCE_TYPES);

export function couldBeResourceScope(token: string): boolean {
  const v1 = V1_RE.exec(token);
  if (v1) return v1[2] === "*" || KNOWN_TYPES.has(v1[2]!);
  const v2 = V2_RE.exec(token);
  return !!v2 && v2[3] !== "" && (v2[2] === "*" || KNOWN_TYPES.has(v2[2]!));
}

// --- References and resources ------------------------------------------------------------------

/**
 * Reference strings that DO name this server's Patient/<id> under FHIR rules with the default
 * policy config (relative, versioned; absolute ones only on a configured `fhir.base_urls` base).
 */
export function namingRefArb(id: string): fc.Arbitrary<string> {
  return fc.constantFrom(`Patient/${id}`, `Patient/${id}/_history/2`);
}

/**
 * Strings that mention <id> but do NOT name the patient resource Patient/<id> of this server:
 * contained, bundle-local, other servers' patients, other types, wrong case, searches, extra
 * segments, padding.
 */
export function decoyRefArb(id: string): fc.Arbitrary<string> {
  return fc.constantFrom(
    `#${id}`,
    `https://fhir.example.org/r4/Patient/${id}`,
    `http://ehr.local/fhir/Patient/${id}/_history/7`,
    `urn:uuid:${id}`,
    `Group/${id}`,
    `RelatedPerson/${id}`,
    `patient/${id}`,
    `Patient?identifier=${id}`,
    `Patient/${id}/x`,
    `Patient/${id}/_history`,
    ` Patient/${id}`,
    `Patient/${id} `,
    `Patient//${id}`,
    `Patient/${id}%20`,
    `Patient/${id}/Patient/other`,
  );
}

/** A Reference element for a reference string, sometimes with distracting type/display/identifier. */
export function referenceArb(
  ref: fc.Arbitrary<string>,
  mention?: string,
): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(ref, fc.nat(3)).map(([r, extra]) => {
    const out: Record<string, unknown> = { reference: r };
    if (extra === 1) out.type = "Patient";
    if (extra === 2 && mention) out.display = `Patient/${mention}`;
    if (extra === 3 && mention) out.identifier = { system: "urn:mrn", value: mention };
    return out;
  });
}

/** Sets a value at an element path, choosing single values or arrays at each step as FHIR JSON may. */
function setPath(obj: Record<string, unknown>, path: string[], value: unknown, arrays: boolean[]): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  const asArray = arrays[0] ?? false;
  if (rest.length === 0) {
    const existing = obj[head];
    if (Array.isArray(existing)) existing.push(value);
    else if (existing !== undefined) obj[head] = [existing, value];
    else obj[head] = asArray ? [value] : value;
    return;
  }
  let child = obj[head];
  if (Array.isArray(child)) child = child[0];
  if (typeof child !== "object" || child === null) {
    child = {};
    obj[head] = asArray ? [child] : child;
  }
  setPath(child as Record<string, unknown>, rest, value, arrays.slice(1));
}

export interface ResourceOptions {
  /** Reference elements to put into the compartment-linking elements (at least one when given). */
  linkRef?: fc.Arbitrary<Record<string, unknown>>;
  /** Allow leaving every link empty. */
  allowNoLinks?: boolean;
  /** A patient id to mention in places that do not link (focus, notes, extensions, contained). */
  mention?: string;
  id?: fc.Arbitrary<string>;
}

/** A FHIR resource of type t: compartment links, category/code/status, and non-linking noise. */
export function resourceArb(t: string, options: ResourceOptions = {}): fc.Arbitrary<Record<string, unknown>> {
  const paths = t === "Patient" ? [["link", "other"]] : linkPaths(t);
  const linkRef =
    options.linkRef ?? referenceArb(fc.oneof(patientArb.chain(namingRefArb), patientArb.chain(decoyRefArb)));
  const minLinks = options.allowNoLinks || paths.length === 0 ? 0 : 1;
  const tokens = tokenParams(t);
  return fc
    .record({
      id: options.id ?? idArb,
      links: fc.array(
        fc.tuple(
          fc.constantFrom(...(paths.length > 0 ? paths : [["subject"]])),
          linkRef,
          fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        ),
        {
          minLength: minLinks,
          maxLength: paths.length === 0 ? 0 : 3,
        },
      ),
      category: tokens.includes("category")
        ? fc.option(
            fc.uniqueArray(
              fc.tuple(
                fc.constantFrom(OBS_CATEGORY, COND_CATEGORY, "urn:other"),
                fc.constantFrom(...CATEGORY_CODES),
              ),
              { minLength: 1, maxLength: 2 },
            ),
          )
        : fc.constant(null),
      code: tokens.includes("code")
        ? fc.option(
            fc.tuple(fc.constantFrom(LOINC, "urn:oid:1.2.3"), fc.constantFrom(...LOINC_CODES), fc.boolean()),
          )
        : fc.constant(null),
      status: tokens.includes("status") ? fc.option(statusValueArb) : fc.constant(null),
      noise: fc.subarray(["focus", "note", "extension", "contained", "identifier", "meta"]),
    })
    .map((r) => {
      const res: Record<string, unknown> = { resourceType: t, id: r.id };
      for (const [path, ref, arrays] of r.links) setPath(res, path, structuredClone(ref), arrays);
      if (r.category) {
        res.category = r.category.map(([system, code]) => ({ coding: [{ system, code }] }));
      }
      if (r.code) {
        const [system, code, noSystem] = r.code;
        res.code = { coding: [noSystem ? { code } : { system, code }], text: code };
      }
      if (r.status) res.status = r.status;
      const m = options.mention;
      if (m !== undefined) {
        for (const n of r.noise) {
          if (n === "focus" && t !== "Patient") res.focus = [{ reference: `Patient/${m}` }];
          if (n === "note") res.note = [{ text: `about Patient/${m}` }];
          if (n === "extension")
            res.extension = [
              { url: "http://example.org/subject", valueReference: { reference: `Patient/${m}` } },
            ];
          if (n === "contained") res.contained = [{ resourceType: "Patient", id: m }];
          if (n === "identifier") res.identifier = [{ system: "urn:ref", value: `Patient/${m}` }];
          if (n === "meta") res.meta = { tag: [{ system: "urn:patient", code: m }] };
        }
      }
      return res;
    });
}

/** A resource of any type, linked to pool patients or to nothing. */
export const anyResourceArb: fc.Arbitrary<Record<string, unknown>> = fc
  .oneof(
    { weight: 4, arbitrary: fc.constantFrom(...FOCUS_TYPES) },
    { weight: 1, arbitrary: fc.constantFrom(...COMPARTMENT_TYPES, ...SHARED_TYPES) },
  )
  .chain((t) => resourceArb(t, { allowNoLinks: true }));

/** A searchset Bundle of resources with unique ids (so keep/drop refs identify entries). */
export function searchsetArb(
  resources: fc.Arbitrary<Record<string, unknown>[]>,
): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(resources, fc.boolean()).map(([rs, withTotal]) => {
    const entry = rs.map((r, i) => ({
      fullUrl: `https://fhir.example.org/r4/${String(r.resourceType)}/e${i}`,
      resource: { ...r, id: `e${i}` },
      search: { mode: "match" },
    }));
    return {
      resourceType: "Bundle",
      type: "searchset",
      ...(withTotal ? { total: entry.length } : {}),
      entry,
    };
  });
}

// --- Requests ----------------------------------------------------------------------------------

export interface RequestCase {
  request: DecisionInput["request"];
  resource?: unknown;
  response?: unknown;
  kind: string;
  type: string;
}

const patientValueArb = fc.oneof(
  patientArb,
  patientArb.map((p) => `Patient/${p}`),
  patientArb.map((p) => `https://fhir.example.org/r4/Patient/${p}`),
  fc.tuple(patientArb, patientArb).map(([a, b]) => `${a},${b}`),
  idArb,
);

/** One search parameter for type t as [name, raw value]. */
export function searchParamArb(t: string): fc.Arbitrary<[string, string]> {
  const links = linkParams(t);
  const tokens = tokenParams(t);
  return fc.oneof(
    ...(links.length > 0
      ? [{ weight: 4, arbitrary: fc.tuple(fc.constantFrom(...links), patientValueArb) }]
      : []),
    ...(tokens.includes("category")
      ? [{ weight: 3, arbitrary: fc.tuple(fc.constant("category"), orList(categoryValueArb)) }]
      : []),
    ...(tokens.includes("code")
      ? [{ weight: 2, arbitrary: fc.tuple(fc.constant("code"), orList(codeValueArb)) }]
      : []),
    ...(tokens.includes("status")
      ? [{ weight: 1, arbitrary: fc.tuple(fc.constant("status"), statusValueArb) }]
      : []),
    {
      weight: 2,
      arbitrary: fc.constantFrom<[string, string]>(
        ["_count", "10"],
        ["_sort", "-_lastUpdated"],
        ["_summary", "count"],
        ["_elements", "id"],
        ["_total", "accurate"],
        ["_id", "1"],
        ["_include", `${t}:subject`],
        ["_include", "Observation:patient"],
        ["_include", "*"],
        ["_revinclude", "Provenance:target"],
        ["_lastUpdated", "ge2020-01-01"],
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<[string, string]>(
        ["subject:Patient.name", "x"],
        ["subject.name", "y"],
        ["patient.birthdate", "1990"],
        ["general-practitioner.name", "z"],
        ["_has:Observation:patient:code", "1234-5"],
        ["_has:Foo:x:y", "z"],
        ["_filter", "name eq x"],
        ["_query", "abc"],
        ["_contained", "true"],
        ["code:in", "http://valueset.example.org/ValueSet/x"],
        ["category:not", "laboratory"],
        ["patient:missing", "true"],
        ["subject:Group", "1"],
        ["foo", "bar"],
        ["date", "ge2020-01-01"],
      ),
    },
  );
}

function queryString(pairs: [string, string][], encode: boolean): string {
  return pairs.map(([n, v]) => `${n}=${encode ? encodeURIComponent(v) : v}`).join("&");
}

export function searchQueryArb(t: string, maxLength = 3): fc.Arbitrary<string> {
  return fc
    .tuple(fc.array(searchParamArb(t), { maxLength }), fc.boolean())
    .map(([ps, enc]) => queryString(ps, enc));
}

const withQuery = (path: string, q: string) => (q === "" ? path : `${path}?${q}`);

const jsonPatchArb = (t: string): fc.Arbitrary<unknown> => {
  const guarded = [...new Set(linkPaths(t).map((p) => p[0]!))];
  const path = fc.constantFrom("/status", "/note", "/category", "/code/text", ...guarded.map((g) => `/${g}`));
  return fc.array(
    fc.record({
      op: fc.constantFrom("replace", "add", "remove", "test"),
      path,
      value: fc.constantFrom<unknown>("final", { reference: "Patient/456" }, [{ text: "x" }]),
    }),
    { minLength: 1, maxLength: 3 },
  );
};

const fhirpathPatchArb = (t: string): fc.Arbitrary<unknown> =>
  fc
    .array(
      fc.tuple(
        fc.constantFrom("replace", "add", "delete"),
        fc.constantFrom(`${t}.status`, `${t}.note`, `${t}.subject`, `${t}.category`),
      ),
      { minLength: 1, maxLength: 2 },
    )
    .map((ops) => ({
      resourceType: "Parameters",
      parameter: ops.map(([type, path]) => ({
        name: "operation",
        part: [
          { name: "type", valueCode: type },
          { name: "path", valueString: path },
          { name: "value", valueString: "x" },
        ],
      })),
    }));

/** A request of type t and the interaction kind it performs, plus what a host might supply with it. */
export function requestCaseArb(t: string): fc.Arbitrary<RequestCase> {
  const res = resourceArb(t, { allowNoLinks: true });
  const optRes = fc.option(res, { nil: undefined, freq: 2 });
  const searchset = searchsetArb(fc.array(anyResourceOf(t), { maxLength: 4 }));
  const optSearchset = fc.option(searchset, { nil: undefined, freq: 2 });
  const q = searchQueryArb(t);
  const cases: fc.Arbitrary<RequestCase>[] = [
    fc
      .record({
        m: fc.constantFrom("GET", "HEAD"),
        id: idArb,
        resource: optRes,
        response: fc.option(res, { nil: undefined, freq: 3 }),
      })
      .map((r) => ({
        request: { method: r.m, url: `${t}/${r.id}` },
        resource: r.resource && { ...r.resource, id: r.id },
        response: r.response && { ...r.response, id: r.id },
        kind: "read",
        type: t,
      })),
    fc.record({ id: idArb, resource: optRes, hist: fc.boolean() }).map((r) => ({
      request: { method: "GET", url: r.hist ? `${t}/${r.id}/_history` : `${t}/${r.id}/_history/3` },
      resource: r.resource && { ...r.resource, id: r.id },
      kind: r.hist ? "history-instance" : "vread",
      type: t,
    })),
    fc.record({ q, response: optSearchset }).map((r) => ({
      request: { method: "GET", url: withQuery(t, r.q) },
      response: r.response,
      kind: "search-type",
      type: t,
    })),
    fc.record({ q, form: fc.boolean() }).map((r) => ({
      request: {
        method: "POST",
        url: `${t}/_search`,
        body: r.form ? r.q : Object.fromEntries(new URLSearchParams(r.q)),
      },
      kind: "search-type",
      type: t,
    })),
    fc.record({ p: patientArb, star: fc.boolean(), q, response: optSearchset }).map((r) => ({
      request: { method: "GET", url: withQuery(`Patient/${r.p}/${r.star ? "*" : t}`, r.q) },
      response: r.response,
      kind: "search-compartment",
      type: t,
    })),
    fc.constantFrom(`${t}/_history`, "_history", `?_type=${t}`, `?_type=${t},Observation`, "").map((url) => ({
      request: { method: "GET", url },
      kind: "search",
      type: t,
    })),
    fc.record({ body: res, ine: fc.option(q, { nil: undefined }) }).map((r) => ({
      request: {
        method: "POST",
        url: t,
        body: r.body,
        ...(r.ine ? { headers: { "if-none-exist": r.ine } } : {}),
      },
      kind: "create",
      type: t,
    })),
    fc.record({ id: idArb, body: res, resource: optRes }).map((r) => ({
      request: { method: "PUT", url: `${t}/${r.id}`, body: { ...r.body, id: r.id } },
      resource: r.resource && { ...r.resource, id: r.id },
      kind: "update",
      type: t,
    })),
    fc
      .record({ id: idArb, body: fc.oneof(jsonPatchArb(t), fhirpathPatchArb(t)), resource: optRes })
      .map((r) => ({
        request: { method: "PATCH", url: `${t}/${r.id}`, body: r.body },
        resource: r.resource && { ...r.resource, id: r.id },
        kind: "patch",
        type: t,
      })),
    fc.record({ id: idArb, resource: optRes }).map((r) => ({
      request: { method: "DELETE", url: `${t}/${r.id}` },
      resource: r.resource && { ...r.resource, id: r.id },
      kind: "delete",
      type: t,
    })),
    fc
      .record({
        m: fc.constantFrom("PUT", "PATCH", "DELETE"),
        q: searchQueryArb(t, 2).filter((s) => s !== ""),
        body: res,
      })
      .map((r) => ({
        request: {
          method: r.m,
          url: `${t}?${r.q}`,
          ...(r.m === "DELETE" ? {} : { body: r.m === "PUT" ? r.body : [] }),
        },
        kind: "conditional",
        type: t,
      })),
    fc
      .constantFrom(
        `Patient/123/$everything`,
        `Patient/456/$everything`,
        "$export",
        "Patient/$export",
        "Group/1/$export",
        "CodeSystem/$lookup?system=http://loinc.org&code=1234-5",
        "ValueSet/$expand",
        `${t}/$validate`,
        `${t}/1/$meta`,
        "metadata",
        ".well-known/smart-configuration",
      )
      .map((url) => ({ request: { method: "GET", url }, kind: "operation", type: t })),
  ];
  return fc.oneof(...cases);
}

function anyResourceOf(t: string): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    { weight: 4, arbitrary: resourceArb(t, { allowNoLinks: true }) },
    { weight: 1, arbitrary: anyResourceArb },
    { weight: 1, arbitrary: fc.constant({ resourceType: "OperationOutcome", issue: [] }) },
  );
}

/** A batch or transaction Bundle of simple entries. */
export const batchCaseArb: fc.Arbitrary<RequestCase> = fc
  .record({
    type: fc.constantFrom("batch", "transaction"),
    entries: fc.array(
      typeArb
        .chain((t) => requestCaseArb(t))
        .filter((c) => c.request.url !== "" && !c.request.url.startsWith("?")),
      { minLength: 1, maxLength: 4 },
    ),
    slash: fc.boolean(),
  })
  .map((r) => ({
    request: {
      method: "POST",
      url: "",
      body: {
        resourceType: "Bundle",
        type: r.type,
        entry: r.entries.map((e) => ({
          request: { method: e.request.method, url: `${r.slash ? "/" : ""}${e.request.url}` },
          ...(e.request.body !== undefined &&
          !Array.isArray(e.request.body) &&
          typeof e.request.body === "object"
            ? { resource: e.request.body }
            : {}),
        })),
      },
    },
    kind: r.type,
    type: "*",
  }));

export const anyRequestCaseArb: fc.Arbitrary<RequestCase> = fc.oneof(
  { weight: 12, arbitrary: typeArb.chain((t) => requestCaseArb(t)) },
  { weight: 1, arbitrary: batchCaseArb },
);

// --- Garbage -------------------------------------------------------------------------------------

/** Strings from raw bytes: NULs, controls, lone surrogates, invalid UTF-8 decoded lossily, long runs. */
export const garbageStringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("latin1")),
  fc.uint8Array({ maxLength: 40 }).map((b) => new TextDecoder().decode(b)),
  fc
    .array(
      fc.constantFrom(
        "%",
        "%2",
        "%zz",
        "%00",
        "%ff",
        "%c3",
        "%2F",
        "/",
        "?",
        "&",
        "=",
        "#",
        "..",
        ".",
        " ",
        "\u0000",
        "Observation",
        "Patient",
        "$",
        "_history",
        ":",
        "|",
        ",",
      ),
      { maxLength: 12 },
    )
    .map((a) => a.join("")),
);

/** Nested JSON of a given depth: objects, arrays or a mix. */
export function deepJson(depth: number, shape: "object" | "array" | "mixed", leaf: unknown = "x"): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) {
    if (shape === "object" || (shape === "mixed" && i % 2 === 0)) v = { a: v };
    else v = [v];
  }
  return v;
}
