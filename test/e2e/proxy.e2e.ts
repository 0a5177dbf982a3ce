/**
 * The enforcing proxy in front of a real HAPI FHIR server, compared with the data set's ground
 * truth (test/e2e/data/truth.json, itself checked against HAPI by hapi-smoke.e2e.ts).
 *
 * The suite starts its own proxies from the built CLI (`node dist/src/cli.js proxy`, configs in
 * test/e2e/proxy/), all in front of the one HAPI that `make e2e` started:
 *   A  narrowing strategy `auto`, fallback `primary`: `_filter` when HAPI has it on, otherwise only
 *      the patient/subject alternative (records linked by other parameters are then left out);
 *   B  strategy `single`, fallback `response-filter`: never `_filter`, the unnarrowed search with
 *      every page filtered;
 *   C  strategy `single`, fallback `primary`: never `_filter` — what A does on a server without
 *      `_filter`, so `make e2e` covers that fallback without a second HAPI start;
 *   L  as A, with `policy.patient.follow_patient_link: true` (Patient.link followed, R4 semantics).
 * For every token (each patient, and a user) and every type, every page is followed with a small
 * `_count` and what the token sees is compared with what it should see: records expected / seen /
 * missing / extra. Expected is the truth's R4 compartment under the proxy's documented policy rules
 * (reachableCompartment); extra is never allowed; missing only where the proxy's documented
 * narrowing strategy explains it (the primary fallback), and then every page must say so.
 * Then reads of other patients' resources, includes, writes and batches for other patients (and HAPI
 * checked directly that nothing changed).
 *
 * Environment: FHIR_BASE (HAPI itself), E2E_DATA, FHIR_FILTER_ENABLED (how HAPI was started),
 * E2E_REPORT (where the comparison table is written; default build/e2e/proxy/comparison.md),
 * PROXY_PORT_A/B/C/L (fixed ports for the proxies; default: free ones).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli.js";
import { freePort, startProcess, stopProcess, type Started } from "./support/processes.js";
import { loadTruth, reachableCompartment, type AccessRules, type Resource } from "./support/truth.js";

const HAPI = (process.env.FHIR_BASE ?? "").replace(/\/+$/, "");
if (!HAPI)
  throw new Error("FHIR_BASE is not set: run `make e2e` (or set it to a running HAPI with the data set)");
const filterOn = (process.env.FHIR_FILTER_ENABLED ?? "true") !== "false";
const REPORT = process.env.E2E_REPORT ?? `build/e2e/proxy/comparison-filter-${filterOn ? "on" : "off"}.md`;
const { truth, resources } = loadTruth(process.env.E2E_DATA ?? "build/e2e/data");
const COUNT = 7;

/** The proxies this suite runs: their config and the policy rules that config documents. */
const SETUPS = {
  A: { config: "a.yaml", rules: { followPatientLink: false }, strategy: "auto, fallback primary" },
  B: { config: "b.yaml", rules: { followPatientLink: false }, strategy: "single, fallback response-filter" },
  C: { config: "c.yaml", rules: { followPatientLink: false }, strategy: "single, fallback primary" },
  L: {
    config: "l.yaml",
    rules: { followPatientLink: true },
    strategy: "auto, fallback primary, Patient.link followed",
  },
} as const satisfies Record<string, { config: string; rules: AccessRules; strategy: string }>;
type ProxyName = keyof typeof SETUPS;
/** The proxies compared type by type for every token (L only where its rule differs: Patient). */
const COMPARED: ProxyName[] = ["A", "B", "C"];

/** The relationships document, from the generator's own knowledge of who cares for whom. */
const RELATIONSHIPS = {
  version: 1,
  users: Object.fromEntries(
    Object.entries(truth.practitionerPatients).map(([user, via]) => [
      user,
      {
        patients: [...new Set([...via.generalPractitioner, ...via.careTeam, ...via.panel])]
          .map((p) => p.replace(/^Patient\//, ""))
          .sort(),
      },
    ]),
  ),
};
const relatedPatients = (user: string): string[] => RELATIONSHIPS.users[user]?.patients ?? [];

/** The proxies' FHIR bases, set once they answer. */
const PROXIES = {} as Record<ProxyName, string>;
const started: Started[] = [];

beforeAll(async () => {
  // The configs' audit logs are under build/e2e/proxy/ (an audit record that cannot be written refuses the access).
  mkdirSync("build/e2e/proxy", { recursive: true });
  for (const n of Object.keys(SETUPS))
    rmSync(`build/e2e/proxy/audit-${n.toLowerCase()}.jsonl`, { force: true });
  // The relationships document the proxies load (data.relationships): each practitioner acts for
  // the patients the generator made it the general practitioner, care-team member or panel owner of.
  writeFileSync("build/e2e/proxy/relationships.json", JSON.stringify(RELATIONSHIPS, null, 1));
  // One cursor key for all of them, as replicas would share it.
  const cursorKey = randomBytes(36).toString("base64url");
  await Promise.all(
    (Object.keys(SETUPS) as ProxyName[]).map(async (name) => {
      const fixed = Number(process.env[`PROXY_PORT_${name}`]);
      const port = Number.isInteger(fixed) && fixed > 0 ? fixed : await freePort();
      const base = `http://127.0.0.1:${port}/fhir`;
      const p = await startProcess(
        `proxy-${name.toLowerCase()}`,
        process.execPath,
        [
          "dist/src/cli.js",
          "proxy",
          "--config",
          resolve("test/e2e/proxy", SETUPS[name].config),
          "--upstream",
          HAPI,
          "--proxy-addr",
          `127.0.0.1:${port}`,
        ],
        {
          env: { SMART_AUTHZ_PROXY_CURSOR_KEY: cursorKey },
          ready: async () => (await fetch(`${base}/metadata`)).status === 200,
          timeoutMs: 120_000,
        },
      );
      started.push(p);
      PROXIES[name] = base;
    }),
  );
});

afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p)));
});

// --- what the policy is configured to hide (its defaults), stated independently here ---------------
const CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const SENSITIVE = new Set([
  "ETH",
  "GDIS",
  "HIV",
  "MST",
  "SCA",
  "SDV",
  "SEX",
  "SICKLE",
  "SPI",
  "BH",
  "MH",
  "PSY",
  "PSYTHPN",
  "SUD",
  "STD",
  "TBOO",
  "VIO",
]);
const restricted = (key: string) =>
  (truth.labels[key] ?? []).some(
    (l) => (l.system === CONF && ["R", "V"].includes(l.code)) || (l.system === ACT && SENSITIVE.has(l.code)),
  );
/** Types a patient/ token may read outside the compartment (the policy's default shared types, those in the data set). */
const SHARED = new Set(["Organization", "Location", "Medication"]);

async function token(...args: string[]): Promise<string> {
  let out = "";
  const code = await main(["token", ...args], {
    stdout: (t) => (out += t),
    stderr: () => {},
    stdin: () => "",
    env: {},
  });
  if (code !== 0) throw new Error(`token ${args.join(" ")}: exit ${code}`);
  return out.trim();
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function call(
  url: string,
  tok: string | undefined,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { accept: "application/fhir+json", ...(init.headers ?? {}) };
  if (tok) headers.authorization = `Bearer ${tok}`;
  if (init.body !== undefined) headers["content-type"] ??= "application/fhir+json";
  const res = await fetch(url, {
    method: init.method ?? "GET",
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === "" ? undefined : JSON.parse(text) };
}

const keyOf = (e: any) => `${e.resource.resourceType}/${e.resource.id}`;

/** Every page of a search through a proxy: the match and include keys, and the pages' link relations. */
async function pageAll(
  url: string,
  tok: string,
): Promise<{
  match: string[];
  include: string[];
  pages: number;
  warnedPages: number;
  upstreamLeak: boolean;
}> {
  const out = {
    match: [] as string[],
    include: [] as string[],
    pages: 0,
    warnedPages: 0,
    upstreamLeak: false,
  };
  let next: string | undefined = url;
  while (next) {
    if (out.pages > 400) throw new Error(`${url}: more than 400 pages`);
    const r = await call(next, tok);
    if (r.status !== 200 || r.body?.resourceType !== "Bundle")
      throw new Error(`GET ${next}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    out.pages++;
    const text = JSON.stringify(r.body);
    if (text.includes(HAPI) || text.includes("_getpages")) out.upstreamLeak = true;
    // cursors are opaque: HAPI's stored-search id (its pages are unfiltered) cannot be read from them
    for (const l of r.body.link ?? []) {
      const cursor = /[?&]cursor=([^&]+)/.exec(l.url ?? "")?.[1] ?? "";
      const bytes = Buffer.concat(cursor.split(".").map((p: string) => Buffer.from(p, "base64url")));
      if (bytes.includes(Buffer.from("_getpages"))) out.upstreamLeak = true;
    }
    for (const e of r.body.entry ?? []) {
      const mode = e.search?.mode ?? "match";
      if (mode === "match") out.match.push(keyOf(e));
      else if (mode === "include") out.include.push(keyOf(e));
    }
    if (
      (r.body.entry ?? []).some(
        (e: any) => e.search?.mode === "outcome" && e.resource?.issue?.[0]?.severity === "warning",
      )
    )
      out.warnedPages++;
    next = (r.body.link ?? []).find((l: any) => l.relation === "next")?.url;
  }
  return out;
}

// --- expected sets and the reasons a record may legitimately be missing --------------------------------

type Row = {
  proxy: ProxyName;
  token: string;
  type: string;
  expected: number;
  seen: number;
  pages: number;
  missing: string[];
  extra: string[];
  hidden: number;
  explained: Record<string, string[]>;
};

/** True when `proxy` answers a multi-alternative narrowing with the primary alternative only (documented fallback). */
function primaryOnly(proxy: ProxyName): boolean {
  return proxy === "C" || ((proxy === "A" || proxy === "L") && !filterOn);
}

/**
 * Why a record the token may read can be missing through `proxy`, or undefined when it may not:
 * only the documented `primary` fallback, which searches the patient/subject alternative alone.
 */
function excuse(proxy: ProxyName, params: readonly string[]): string | undefined {
  if (primaryOnly(proxy) && !params.some((p) => ["subject", "patient", "_id"].includes(p)))
    return `fallback primary (warned on every page): linked only by ${params.join(", ")}`;
  return undefined;
}

/** What a patient/*.rs token for `patient` may read of `type` through `proxy`: Type/id → linking parameters. */
function readable(proxy: ProxyName, patient: string, type: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, params] of reachableCompartment(truth, patient, SETUPS[proxy].rules))
    if (k.startsWith(`${type}/`) && !restricted(k)) out.set(k, params);
  return out;
}

const rows: Row[] = [];
const TYPES = Object.keys(truth.compartmentParams).sort();

afterAll(() => {
  if (rows.length === 0) return;
  // Per token, the type searches (`Type?…`): each record once. The compartment-search form
  // (`Patient/<id>/Type?…`) must give the same answer; its differences are counted beside.
  type Sum = {
    expected: number;
    seen: number;
    missing: number;
    extra: number;
    explained: number;
    viaCompartment: number;
  };
  const tokens = new Map<string, Sum>();
  for (const r of rows) {
    const key = `${r.proxy}|${r.token}`;
    const t = tokens.get(key) ?? {
      expected: 0,
      seen: 0,
      missing: 0,
      extra: 0,
      explained: 0,
      viaCompartment: 0,
    };
    if (r.type.includes("/"))
      t.viaCompartment += r.missing.length - Object.values(r.explained).flat().length + r.extra.length;
    else {
      t.expected += r.expected;
      t.seen += r.seen;
      t.missing += r.missing.length;
      t.extra += r.extra.length;
      t.explained += Object.values(r.explained).flat().length;
    }
    tokens.set(key, t);
  }
  const lines = [
    `# Proxy vs ground truth (HAPI _filter ${filterOn ? "on" : "off"})`,
    "",
    ...(Object.keys(SETUPS) as ProxyName[]).map((n) => `- ${n}: strategy ${SETUPS[n].strategy}`),
    "",
    `Every type searched as \`Type?_count=${COUNT}\` and (patients) as \`Patient/<id>/Type?_count=${COUNT}\`, every page followed. ` +
      "Expected: the truth's R4 compartment under the proxy's policy rules (Patient.link counted only where followed), less labelled records; users: their related patients' records, their own Practitioner compartment's and the shared types, less labelled records.",
    "",
    "| proxy | token | records expected | seen | missing | extra | missing, explained by the documented strategy | the same via Patient/<id>/Type: unexplained missing + extra |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...[...tokens].map(([k, t]) => {
      const [proxy, tok] = k.split("|");
      const via = tok!.startsWith("patient") && proxy !== "L" ? String(t.viaCompartment) : "n/a";
      return `| ${proxy} | ${tok} | ${t.expected} | ${t.seen} | ${t.missing} | ${t.extra} | ${t.explained} | ${via} |`;
    }),
    "",
    "## Per search",
    "",
    "| proxy | token | search | expected | seen | pages | missing | extra | hidden by label | missing, explained |",
    "|---|---|---|---:|---:|---:|---|---|---:|---|",
    ...rows.map(
      (r) =>
        `| ${r.proxy} | ${r.token} | ${r.type} | ${r.expected} | ${r.seen} | ${r.pages} | ${r.missing.join(", ") || "—"} | ${r.extra.join(", ") || "—"} | ${r.hidden} | ${
          Object.entries(r.explained)
            .map(([why, keys]) => `${keys.length}: ${why}`)
            .join("; ") || "—"
        } |`,
    ),
  ];
  mkdirSync(dirname(REPORT), { recursive: true });
  writeFileSync(REPORT, `${lines.join("\n")}\n`);
  console.log(`\n${lines.slice(0, lines.indexOf("## Per search")).join("\n")}\nper search: ${REPORT}`);
});

/** Compares one search through `proxy` with what the token may read; returns its problems. */
async function compare(
  proxy: ProxyName,
  tok: string,
  who: string,
  label: string,
  url: string,
  expected: Map<string, string[]>,
  hidden: number,
): Promise<string[]> {
  const problems: string[] = [];
  const got = await pageAll(url, tok);
  const seen = new Set(got.match);
  const missing = [...expected.keys()].filter((k) => !seen.has(k)).sort();
  const extra = [...seen].filter((k) => !expected.has(k)).sort();
  const explained: Record<string, string[]> = {};
  const unexplained: string[] = [];
  for (const k of missing) {
    const why = excuse(proxy, expected.get(k) ?? []);
    if (why) (explained[why] ??= []).push(k);
    else unexplained.push(k);
  }
  rows.push({
    proxy,
    token: who,
    type: label,
    expected: expected.size,
    seen: seen.size,
    pages: got.pages,
    missing,
    extra,
    hidden,
    explained,
  });
  if (got.upstreamLeak) problems.push(`${label}: a page named the FHIR server or its paging parameters`);
  if (seen.size !== got.match.length) problems.push(`${label}: a record appeared twice`);
  if (extra.length) problems.push(`${label}: released outside what the token may read: ${extra.join(", ")}`);
  if (unexplained.length) problems.push(`${label}: lost: ${unexplained.join(", ")}`);
  if (Object.keys(explained).length > 0 && got.warnedPages !== got.pages)
    problems.push(
      `${label}: records left out by the fallback, but ${got.pages - got.warnedPages} page(s) did not say so`,
    );
  return problems;
}

describe.each(COMPARED)("proxy %s: what each patient sees, every page, against the truth", (proxy) => {
  it.each(truth.patients)("patient %s, every compartment type", async (patient) => {
    const tok = await token("--scope", "patient/*.rs", "--patient", patient);
    const base = PROXIES[proxy];
    const problems: string[] = [];
    const searches = [
      ...TYPES.map((type) => ({ type, path: `${type}?_count=${COUNT}`, label: type })),
      // the same through compartment search (HAPI has none: the proxy narrows a type search instead)
      ...TYPES.filter((t) => t !== "Patient").map((type) => ({
        type,
        path: `Patient/${patient}/${type}?_count=${COUNT}`,
        label: `Patient/${patient}/${type}`,
      })),
    ];
    for (const { type, path, label } of searches) {
      const hidden = Object.keys(truth.compartments[patient] ?? {}).filter(
        (k) => k.startsWith(`${type}/`) && restricted(k),
      ).length;
      problems.push(
        ...(await compare(
          proxy,
          tok,
          `patient ${patient}`,
          label,
          `${base}/${path}`,
          readable(proxy, patient, type),
          hidden,
        )),
      );
    }
    expect(problems, `proxy ${proxy}, patient ${patient}`).toEqual([]);
  });

  it("a clinician (user/*.rs, Practitioner/prac-1) sees its patients' records and its own compartment's, nothing else", async () => {
    // The user access model (policy.user.access: relationships, the default): the patients the
    // relationships document relates prac-1 to, its own R4 Practitioner compartment (every record
    // that names Practitioner/prac-1, and the Practitioner itself) and the shared types; labels on top.
    const user = "Practitioner/prac-1";
    const tok = await token("--scope", "user/*.rs", "--fhir-user", user);
    const problems: string[] = [];
    for (const type of Object.keys(truth.counts).sort()) {
      const expected = new Map<string, string[]>();
      for (const patient of relatedPatients(user))
        for (const [k, params] of readable(proxy, patient, type)) expected.set(k, params);
      for (const [k, r] of resources)
        if (
          k.startsWith(`${type}/`) &&
          !restricted(k) &&
          (k === user || JSON.stringify(r).includes(`"${user}"`))
        )
          expected.set(k, expected.get(k) ?? []);
      if (SHARED.has(type))
        for (const id of truth.ids[type] ?? [])
          if (!restricted(`${type}/${id}`)) expected.set(`${type}/${id}`, []);
      const url = `${PROXIES[proxy]}/${type}?_count=${COUNT * 3}`;
      if (proxy === "C") {
        // Without _filter and with the primary fallback, a search the user may run only under
        // several alternatives (its patients OR its own compartment) is refused, never answered in part.
        const first = await call(url, tok);
        if (first.status === 403) continue;
      }
      const all = (truth.ids[type] ?? []).map((id) => `${type}/${id}`);
      problems.push(
        ...(await compare(proxy, tok, "user prac-1", type, url, expected, all.filter(restricted).length)),
      );
    }
    expect(problems, `proxy ${proxy}, user`).toEqual([]);
  });
});

describe("proxy L: Patient.link followed (policy.patient.follow_patient_link: true)", () => {
  it.each(truth.patients)(
    "patient %s sees its own Patient and the Patients linked to it, nothing else",
    async (patient) => {
      const tok = await token("--scope", "patient/*.rs", "--patient", patient);
      const expected = readable("L", patient, "Patient");
      const problems = await compare(
        "L",
        tok,
        `patient ${patient}`,
        "Patient",
        `${PROXIES.L}/Patient?_count=${COUNT}`,
        expected,
        0,
      );
      expect(problems).toEqual([]);
      for (const key of expected.keys())
        expect((await call(`${PROXIES.L}/${key}`, tok)).status, key).toBe(200);
    },
  );
});

describe("reads of other patients' resources", () => {
  it("are answered exactly like resources that do not exist", async () => {
    const tok = await token("--scope", "patient/*.rs", "--patient", "123");
    // 123's compartment as proxy A's rules reach it: Patient/888 (linked to 123) is another patient's here
    const mine = new Set(reachableCompartment(truth, "123", SETUPS.A.rules).keys());
    expect(mine.has("Patient/888")).toBe(false);
    const others = [...resources.keys()].filter(
      (k) => !mine.has(k) && !SHARED.has(k.split("/")[0]!) && !k.startsWith("Practitioner"),
    );
    expect(others.length).toBeGreaterThan(40);
    const notFound = await call(`${PROXIES.A}/Observation/no-such-observation`, tok);
    expect(notFound.status).toBe(404);
    for (const key of others) {
      const r = await call(`${PROXIES.A}/${key}`, tok);
      expect(r.status, key).toBe(404);
      expect(r.body, key).toEqual(notFound.body);
      expect(r.headers.get("etag"), key).toBeNull();
      const v = await call(`${PROXIES.A}/${key}/_history/1`, tok);
      expect(v.status, `${key} vread`).toBe(404);
    }
    for (const key of [...mine].filter((k) => !restricted(k)).slice(0, 40)) {
      const r = await call(`${PROXIES.A}/${key}`, tok);
      expect(r.status, key).toBe(200);
    }
    for (const key of [...mine].filter(restricted)) {
      const r = await call(`${PROXIES.A}/${key}`, tok);
      expect(r.status, `${key} (labelled)`).toBe(404);
      expect(r.body).toEqual(notFound.body);
    }
  });
});

/** Types a patient/ token sees when a resource it may see references them (policy.patient.referenced_types' default). */
const REFERENCED = new Set(["Organization", "Location", "Medication", "Practitioner", "PractitionerRole"]);

/** Every relative reference ("Type/id") in the given generated resources. */
function referencesOf(keys: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        if (k === "reference" && typeof x === "string" && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]+$/.test(x))
          out.add(x);
        else walk(x);
      }
  };
  for (const k of keys) walk(resources.get(k));
  return out;
}

/**
 * Whether a released record is one the token may see: in the patient's compartment (unlabelled), a
 * shared type, a referenced type that a released record references, or a Provenance whose every
 * target is released (linked resources, README).
 */
function mayRelease(k: string, mine: Set<string>, released: Set<string>, referenced: Set<string>): boolean {
  if (restricted(k)) return false;
  const type = k.split("/")[0]!;
  if (mine.has(k) || SHARED.has(type)) return true;
  if (REFERENCED.has(type) && referenced.has(k)) return true;
  if (type === "Provenance") {
    const targets = ((resources.get(k)?.target as { reference?: string }[] | undefined) ?? []).map(
      (t) => t.reference,
    );
    return (
      targets.length > 0 && targets.every((t) => t !== undefined && (released.has(t) || t === "Patient/123"))
    );
  }
  return false;
}

describe("includes", () => {
  it("release only what the token may read, and the records its own records reference, on every page", async () => {
    const tok = await token("--scope", "patient/*.rs", "--patient", "123");
    const obs = await pageAll(
      `${PROXIES.A}/Observation?_count=${COUNT}&_include=Observation:performer&_include=Observation:encounter`,
      tok,
    );
    const mine = new Set(reachableCompartment(truth, "123", SETUPS.A.rules).keys());
    const released = new Set(obs.match);
    const referenced = referencesOf(obs.match);
    for (const k of obs.match) expect(mine.has(k) && !restricted(k), k).toBe(true);
    for (const k of obs.include) expect(mayRelease(k, mine, released, referenced), k).toBe(true);
    // the performers of the patient's own Observations come with them (linked resources)
    expect(obs.include.some((k) => k.startsWith("Practitioner/"))).toBe(true);
    // everything the token may see, less what proxy A's fallback leaves out when HAPI has no _filter
    expect(obs.match.sort()).toEqual(
      [...readable("A", "123", "Observation")]
        .filter(([, params]) => excuse("A", params) === undefined)
        .map(([k]) => k)
        .sort(),
    );
    const enc = await pageAll(`${PROXIES.A}/Encounter?_count=2&_include=Encounter:service-provider`, tok);
    expect(enc.include.some((k) => k.startsWith("Organization/"))).toBe(true);
    const prov = await pageAll(`${PROXIES.A}/Observation?_count=${COUNT}&_revinclude=Provenance:target`, tok);
    const provReleased = new Set(prov.match);
    for (const k of prov.include)
      expect(mayRelease(k, mine, provReleased, referencesOf(prov.match)), k).toBe(true);
    // the Provenance of the patient's own Observation comes with it (_revinclude=Provenance:target)
    expect(prov.include).toContain("Provenance/prov-obs-123");
  });

  it("$everything releases only the compartment, shared types and the records they reference", async () => {
    const tok = await token("--scope", "patient/*.rs", "--patient", "123");
    const got = await pageAll(`${PROXIES.A}/Patient/123/$everything?_count=50`, tok);
    const mine = new Set(reachableCompartment(truth, "123", SETUPS.A.rules).keys());
    const released = new Set(got.match);
    const referenced = referencesOf(got.match.filter((k) => mine.has(k)));
    for (const k of got.match) expect(mayRelease(k, mine, released, referenced), k).toBe(true);
    expect(got.match).toContain("Patient/123");
  });
});

describe("writes and batches for other patients are refused, and HAPI is unchanged", () => {
  let tok: string;
  beforeAll(async () => {
    tok = await token("--scope", "patient/*.cruds", "--patient", "123");
  });

  async function hapiVersion(key: string): Promise<string | number> {
    const r = await call(`${HAPI}/${key}`, undefined);
    return r.status === 200 ? r.body.meta.versionId : r.status;
  }

  it("update, patch and delete of another patient's resource: 404, nothing written", async () => {
    const key = "Observation/obs-999-0001";
    const before = await hapiVersion(key);
    const body = {
      ...(resources.get(key) as Resource),
      status: "cancelled",
      subject: { reference: "Patient/123" },
    };
    expect((await call(`${PROXIES.A}/${key}`, tok, { method: "PUT", body })).status).toBe(404);
    expect(
      (
        await call(`${PROXIES.A}/${key}`, tok, {
          method: "PATCH",
          body: [{ op: "replace", path: "/status", value: "cancelled" }],
          headers: { "content-type": "application/json-patch+json" },
        })
      ).status,
    ).toBe(404);
    expect((await call(`${PROXIES.A}/${key}`, tok, { method: "DELETE" })).status).toBe(404);
    expect(await hapiVersion(key)).toBe(before);
  });

  it("a create for another patient: 403, nothing created", async () => {
    const marker = `e2e-${Date.now()}`;
    const r = await call(`${PROXIES.A}/Observation`, tok, {
      method: "POST",
      body: {
        resourceType: "Observation",
        status: "final",
        code: { coding: [{ system: "urn:e2e", code: marker }] },
        subject: { reference: "Patient/999" },
      },
    });
    expect(r.status).toBe(403);
    const check = await call(`${HAPI}/Observation?code=urn:e2e|${marker}`, undefined);
    expect(check.body.total ?? check.body.entry?.length ?? 0).toBe(0);
  });

  it("own writes go through, pinned to the version read", async () => {
    const key = "Observation/obs-123-0250";
    const before = Number(await hapiVersion(key));
    const body = { ...(resources.get(key) as Resource), status: "amended", issued: new Date().toISOString() };
    const r = await call(`${PROXIES.A}/${key}`, tok, { method: "PUT", body });
    expect(r.status).toBe(200);
    // HAPI answers an update with Content-Location (the version written): it names the proxy
    expect(r.headers.get("content-location")).toMatch(new RegExp(`^${PROXIES.A}/${key}/_history/\\d+$`));
    expect(Number(await hapiVersion(key))).toBe(before + 1);
  });

  it("a conditional delete touches only the token's compartment", async () => {
    const marker = `cond-${Date.now()}`;
    const code = { coding: [{ system: "urn:e2e", code: marker }] };
    const mine = await call(`${PROXIES.A}/Observation`, tok, {
      method: "POST",
      body: { resourceType: "Observation", status: "final", code, subject: { reference: "Patient/123" } },
    });
    expect(mine.status).toBe(201);
    const theirs = await call(`${HAPI}/Observation`, undefined, {
      method: "POST",
      body: { resourceType: "Observation", status: "final", code, subject: { reference: "Patient/999" } },
    });
    expect(theirs.status).toBe(201);
    const del = await call(`${PROXIES.A}/Observation?code=urn:e2e|${marker}`, tok, { method: "DELETE" });
    expect(del.status).toBeLessThan(300);
    const left = await call(`${HAPI}/Observation?code=urn:e2e|${marker}`, undefined);
    expect((left.body.entry ?? []).map((e: any) => e.resource.subject.reference)).toEqual(["Patient/999"]);
    // leave the data set as it was (the comparison above may run again against this server)
    expect(
      (await call(`${HAPI}/Observation/${theirs.body.id}`, undefined, { method: "DELETE" })).status,
    ).toBeLessThan(300);
  });

  it("a batch: other patients' entries refused in place, the rest carried out", async () => {
    const before = await hapiVersion("Observation/obs-999-0002");
    const r = await call(PROXIES.A, tok, {
      method: "POST",
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          { request: { method: "GET", url: "Observation/obs-123-0001" } },
          { request: { method: "GET", url: "Observation/obs-999-0002" } },
          { request: { method: "DELETE", url: "Observation/obs-999-0002" } },
          { request: { method: "GET", url: "Observation?code=http://loinc.org|8867-4&_count=500" } },
          { request: { method: "GET", url: "Observation?patient=999" } },
        ],
      },
    });
    expect(r.status).toBe(200);
    const e = r.body.entry as any[];
    expect(e).toHaveLength(5);
    expect(e[0].resource.id).toBe("obs-123-0001");
    expect(e[1].response.status).toMatch(/^404/);
    expect(e[2].response.status).toMatch(/^404/);
    const mine = new Set(reachableCompartment(truth, "123", SETUPS.A.rules).keys());
    const nested = (e[3].resource.entry ?? []) as any[];
    for (const x of nested.filter((n) => n.search?.mode !== "outcome"))
      expect(mine.has(keyOf(x)) && !restricted(keyOf(x)), keyOf(x)).toBe(true);
    // with HAPI's _filter off, proxy A answers the primary alternative only, and says so
    const warned = nested.some(
      (n) => n.search?.mode === "outcome" && n.resource.issue[0].severity === "warning",
    );
    expect(warned).toBe(!filterOn);
    expect(e[4].response.status).toMatch(/^403/);
    expect(await hapiVersion("Observation/obs-999-0002")).toBe(before);
  });

  it("a reference to another patient's record is refused exactly like one to no record: no existence oracle", async () => {
    // HAPI validates references: unchecked, 201 would mean "exists" and 400 "does not"
    const marker = `ref-${Date.now()}`;
    const probe = (ref: string) => ({
      resourceType: "Observation",
      status: "final",
      code: { coding: [{ system: "urn:e2e", code: marker }] },
      subject: { reference: "Patient/123" },
      hasMember: [{ reference: ref }],
    });
    const other = await call(`${PROXIES.A}/Observation`, tok, {
      method: "POST",
      body: probe("Observation/obs-999-0001"),
    });
    const none = await call(`${PROXIES.A}/Observation`, tok, {
      method: "POST",
      body: probe("Observation/no-such-obs"),
    });
    expect([other.status, none.status]).toEqual([400, 400]);
    const masked = (a: Answer) => JSON.stringify(a.body).replace(/obs-999-0001|no-such-obs/g, "X");
    expect(masked(other)).toBe(masked(none));
    const created = await call(`${HAPI}/Observation?code=urn:e2e|${marker}`, undefined);
    expect(created.body.entry ?? []).toEqual([]);
  });

  it("a conditional update matching nothing cannot overwrite another patient's record by its id", async () => {
    // HAPI 8.8 updates the resource a no-match conditional update's body names (R4 says 409)
    const key = "Observation/obs-999-0004";
    const before = await hapiVersion(key);
    const hijack = {
      resourceType: "Observation",
      id: "obs-999-0004",
      status: "cancelled",
      code: { text: "hijack" },
      subject: { reference: "Patient/123" },
    };
    const single = await call(`${PROXIES.A}/Observation?code=urn:e2e|nothing-matches`, tok, {
      method: "PUT",
      body: hijack,
    });
    expect(single.status).toBe(400);
    const batch = await call(PROXIES.A, tok, {
      method: "POST",
      body: {
        resourceType: "Bundle",
        type: "transaction",
        entry: [
          { request: { method: "PUT", url: "Observation?code=urn:e2e|nothing-matches" }, resource: hijack },
        ],
      },
    });
    expect(batch.status).toBe(400);
    expect(await hapiVersion(key)).toBe(before);
  });

  it("a transaction with one refused entry is refused whole: HAPI unchanged", async () => {
    const marker = `tx-${Date.now()}`;
    const before = await hapiVersion("Observation/obs-999-0003");
    const r = await call(PROXIES.A, tok, {
      method: "POST",
      body: {
        resourceType: "Bundle",
        type: "transaction",
        entry: [
          {
            request: { method: "POST", url: "Observation" },
            resource: {
              resourceType: "Observation",
              status: "final",
              code: { coding: [{ system: "urn:e2e", code: marker }] },
              subject: { reference: "Patient/123" },
            },
          },
          { request: { method: "DELETE", url: "Observation/obs-999-0003" } },
        ],
      },
    });
    expect(r.status).toBe(404);
    expect(await hapiVersion("Observation/obs-999-0003")).toBe(before);
    const created = await call(`${HAPI}/Observation?code=urn:e2e|${marker}`, undefined);
    expect(created.body.entry ?? []).toEqual([]);
  });

  it("client paging parameters and _filter are refused; forged cursors too", async () => {
    expect((await call(`${PROXIES.A}/Observation?_getpages=x&_getpagesoffset=0`, tok)).status).toBe(400);
    expect(
      (await call(`${PROXIES.A}/Observation?_filter=${encodeURIComponent('patient eq "Patient/999"')}`, tok))
        .status,
    ).toBe(403);
    const first = await call(`${PROXIES.A}/Observation?_count=5`, tok);
    const next: string = first.body.link.find((l: any) => l.relation === "next").url;
    const forged = next.replace(
      /cursor=([A-Za-z0-9_-])/,
      (_m, c: string) => `cursor=${c === "A" ? "B" : "A"}`,
    );
    expect((await call(forged, tok)).status).toBe(400);
    const other = await token("--scope", "patient/*.rs", "--patient", "999");
    expect((await call(next, other)).status).toBe(403);
  });
});
