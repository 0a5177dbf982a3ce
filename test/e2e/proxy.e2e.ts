/**
 * The enforcing proxy in front of a real HAPI FHIR server, compared with the data set's ground
 * truth (test/e2e/data/truth.json, itself checked against HAPI by hapi-smoke.e2e.ts).
 *
 * Two proxies run against the same HAPI (`make e2e-proxy` starts them):
 *   A  narrowing strategy `auto`, fallback `primary`: `_filter` when HAPI has it on, otherwise only
 *      the patient/subject alternative (records linked by other parameters are then left out);
 *   B  strategy `single`, fallback `response-filter`: never `_filter`, the unnarrowed search with
 *      every page filtered.
 * For every token (each patient, and a user) and every type, every page is followed with a small
 * `_count` and what the token sees is compared with what it should see: records expected / seen /
 * missing / extra. Extra is never allowed; missing only where a documented choice explains it.
 * Then reads of other patients' resources, includes, writes and batches for other patients (and HAPI
 * checked directly that nothing changed).
 *
 * Environment: FHIR_BASE (HAPI itself), PROXY_A, PROXY_B (the proxies' FHIR bases), E2E_DATA,
 * FHIR_FILTER_ENABLED (how HAPI was started), E2E_REPORT (where the comparison table is written).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli.js";
import { loadTruth, type Resource } from "./support/truth.js";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run \`make e2e-proxy\``);
  return v.replace(/\/+$/, "");
};
const HAPI = env("FHIR_BASE");
const PROXIES = { A: env("PROXY_A"), B: env("PROXY_B") } as const;
type ProxyName = keyof typeof PROXIES;
const filterOn = (process.env.FHIR_FILTER_ENABLED ?? "true") !== "false";
const REPORT = process.env.E2E_REPORT ?? "build/e2e/proxy/comparison.md";
const { truth, resources } = loadTruth(process.env.E2E_DATA ?? "build/e2e/data");
const COUNT = 7;

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
): Promise<{ match: string[]; include: string[]; pages: number; upstreamLeak: boolean }> {
  const out = { match: [] as string[], include: [] as string[], pages: 0, upstreamLeak: false };
  let next: string | undefined = url;
  while (next) {
    if (out.pages > 400) throw new Error(`${url}: more than 400 pages`);
    const r = await call(next, tok);
    if (r.status !== 200 || r.body?.resourceType !== "Bundle")
      throw new Error(`GET ${next}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    out.pages++;
    const text = JSON.stringify(r.body);
    if (text.includes(HAPI) || text.includes("_getpages")) out.upstreamLeak = true;
    for (const e of r.body.entry ?? []) {
      const mode = e.search?.mode ?? "match";
      if (mode === "match") out.match.push(keyOf(e));
      else if (mode === "include") out.include.push(keyOf(e));
    }
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

/** Why a record in the token's R4 compartment may be missing through `proxy`, or undefined when it may not. */
function excuse(proxy: ProxyName, patient: string, key: string): string | undefined {
  const params = truth.compartments[patient]?.[key] ?? [];
  if (key.startsWith("Patient/") && !params.includes("_id"))
    return "Patient.link not followed (policy.patient.follow_patient_link: false, R5 semantics)";
  const primaryOnly = proxy === "A" && !filterOn;
  if (primaryOnly && !params.some((p) => ["subject", "patient"].includes(p)))
    return `fallback primary: linked only by ${params.join(", ")}`;
  return undefined;
}

const rows: Row[] = [];
const TYPES = Object.keys(truth.compartmentParams).sort();

beforeAll(async () => {
  for (const [name, base] of Object.entries(PROXIES)) {
    const r = await call(`${base}/metadata`, undefined);
    if (r.status !== 200) throw new Error(`proxy ${name} at ${base} does not answer metadata: ${r.status}`);
  }
});

afterAll(() => {
  if (rows.length === 0) return;
  const lines = [
    `# Proxy vs ground truth (HAPI _filter ${filterOn ? "on" : "off"})`,
    "",
    "A = strategy auto, fallback primary; B = strategy single, fallback response-filter. `_count=" +
      COUNT +
      "`, every page followed.",
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
  console.log(`\n${lines.join("\n")}\n\nwritten to ${REPORT}`);
});

describe.each(Object.keys(PROXIES) as ProxyName[])(
  "proxy %s: what each patient sees, every page, against the truth",
  (proxy) => {
    const base = PROXIES[proxy];
    it.each(truth.patients)("patient %s, every compartment type", async (patient) => {
      const tok = await token("--scope", "patient/*.rs", "--patient", patient);
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
        const inCompartment = Object.keys(truth.compartments[patient] ?? {}).filter((k) =>
          k.startsWith(`${type}/`),
        );
        const hiddenKeys = inCompartment.filter(restricted);
        const expected = new Set(inCompartment.filter((k) => !restricted(k)));
        const got = await pageAll(`${base}/${path}`, tok);
        const seen = new Set(got.match);
        const missing = [...expected].filter((k) => !seen.has(k)).sort();
        const extra = [...seen].filter((k) => !expected.has(k)).sort();
        const explained: Record<string, string[]> = {};
        const unexplained: string[] = [];
        for (const k of missing) {
          const why = excuse(proxy, patient, k);
          if (why) (explained[why] ??= []).push(k);
          else unexplained.push(k);
        }
        rows.push({
          proxy,
          token: `patient ${patient}`,
          type: label,
          expected: expected.size,
          seen: seen.size,
          pages: got.pages,
          missing,
          extra,
          hidden: hiddenKeys.length,
          explained,
        });
        if (got.upstreamLeak)
          problems.push(`${label}: a page named the FHIR server or its paging parameters`);
        if (seen.size !== got.match.length) problems.push(`${label}: a record appeared twice`);
        if (extra.length)
          problems.push(`${label}: released outside the compartment or labelled: ${extra.join(", ")}`);
        if (unexplained.length) problems.push(`${label}: lost: ${unexplained.join(", ")}`);
      }
      expect(problems, `proxy ${proxy}, patient ${patient}`).toEqual([]);
    });

    it("a user (user/*.rs) sees every unlabelled record of every type, through every page", async () => {
      const tok = await token("--scope", "user/*.rs", "--fhir-user", "Practitioner/prac-1");
      const problems: string[] = [];
      for (const type of Object.keys(truth.counts).sort()) {
        const all = (truth.ids[type] ?? []).map((id) => `${type}/${id}`);
        const expected = new Set(all.filter((k) => !restricted(k)));
        const got = await pageAll(`${base}/${type}?_count=${COUNT * 3}`, tok);
        const seen = new Set(got.match);
        const missing = [...expected].filter((k) => !seen.has(k)).sort();
        const extra = [...seen].filter((k) => !expected.has(k)).sort();
        rows.push({
          proxy,
          token: "user prac-1",
          type,
          expected: expected.size,
          seen: seen.size,
          pages: got.pages,
          missing,
          extra,
          hidden: all.length - expected.size,
          explained: {},
        });
        if (extra.length) problems.push(`${type}: labelled records released: ${extra.join(", ")}`);
        if (missing.length) problems.push(`${type}: lost: ${missing.join(", ")}`);
      }
      expect(problems, `proxy ${proxy}, user`).toEqual([]);
    });
  },
);

describe("reads of other patients' resources", () => {
  it("are answered exactly like resources that do not exist", async () => {
    const tok = await token("--scope", "patient/*.rs", "--patient", "123");
    const mine = new Set(Object.keys(truth.compartments["123"] ?? {}));
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

describe("includes", () => {
  it("release only what the token may read, on every page", async () => {
    const tok = await token("--scope", "patient/*.rs", "--patient", "123");
    const obs = await pageAll(
      `${PROXIES.A}/Observation?_count=${COUNT}&_include=Observation:performer&_include=Observation:encounter`,
      tok,
    );
    expect(obs.include.filter((k) => k.startsWith("Practitioner/"))).toEqual([]);
    const mine = new Set(Object.keys(truth.compartments["123"] ?? {}));
    for (const k of [...obs.match, ...obs.include]) expect(mine.has(k) && !restricted(k), k).toBe(true);
    // everything the token may see, less what proxy A's fallback leaves out when HAPI has no _filter
    expect(obs.match.sort()).toEqual(
      [...mine]
        .filter((k) => k.startsWith("Observation/") && !restricted(k) && excuse("A", "123", k) === undefined)
        .sort(),
    );
    const enc = await pageAll(`${PROXIES.A}/Encounter?_count=2&_include=Encounter:service-provider`, tok);
    expect(enc.include.some((k) => k.startsWith("Organization/"))).toBe(true);
    const prov = await pageAll(`${PROXIES.A}/Observation?_count=${COUNT}&_revinclude=Provenance:target`, tok);
    for (const k of prov.include) expect(mine.has(k) && !restricted(k), k).toBe(true);
  });

  it("$everything releases only the compartment and shared types", async () => {
    const tok = await token("--scope", "patient/*.rs", "--patient", "123");
    const got = await pageAll(`${PROXIES.A}/Patient/123/$everything?_count=50`, tok);
    const mine = new Set(Object.keys(truth.compartments["123"] ?? {}));
    for (const k of got.match)
      expect((mine.has(k) && !restricted(k)) || SHARED.has(k.split("/")[0]!), k).toBe(true);
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
    const mine = new Set(Object.keys(truth.compartments["123"] ?? {}));
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
