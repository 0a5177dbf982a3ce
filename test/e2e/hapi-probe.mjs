#!/usr/bin/env node
// Record what a FHIR server answers to the searches a narrowing proxy might send, against the
// generated data set's ground truth. Prints a report; asserts nothing (the smoke test does that).
//
//   node test/e2e/hapi-probe.mjs <fhir-base> [--data build/e2e/data] [--json] [--slow]
//
// --slow adds the chained `patient._has:` searches, which run away on HAPI 8.8.0 + H2 (30 s timeout
// each, and the server stays busy with them: restart it afterwards).
//
// Used to write the "What HAPI answers" section of test/e2e/README.md; re-run it when HAPI changes.
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";

const args = process.argv.slice(2);
let base = "";
let dataDir = "build/e2e/data";
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--data") dataDir = args[++i] ?? "";
  else if (args[i] === "--json" || args[i] === "--slow") continue;
  else if (!base && /^https?:\/\//.test(args[i])) base = args[i].replace(/\/+$/, "");
  else base = "";
}
const asJson = args.includes("--json");
if (!base || !dataDir) {
  console.error("usage: hapi-probe.mjs <fhir-base> [--data DIR] [--json] [--slow]");
  process.exit(2);
}
const truth = JSON.parse(readFileSync(join(dataDir, "truth.json"), "utf8"));
const inCompartment = (pid, type) =>
  Object.keys(truth.compartments[pid]).filter((k) => k.startsWith(`${type}/`));

async function get(url, headers = {}, timeoutMs = 120_000) {
  const t0 = performance.now();
  process.stderr.write(`GET ${decodeURIComponent(url.slice(base.length))} ... `);
  let res;
  try {
    res = await fetch(url, {
      headers: { accept: "application/fhir+json", ...headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const ms = Math.round(performance.now() - t0);
    process.stderr.write(`${e.name} after ${ms} ms\n`);
    return { status: 0, body: { issue: [{ diagnostics: `${e.name}: ${e.message}` }] }, ms };
  }
  const body = await res.json().catch(() => null);
  const ms = Math.round(performance.now() - t0);
  process.stderr.write(`${res.status} in ${ms} ms\n`);
  return { status: res.status, body, ms };
}

const keyOf = (e) => `${e.resource.resourceType}/${e.resource.id}`;

/** One request: status, total, entries by search mode, links. */
async function probe(path, timeoutMs) {
  const r = await get(`${base}/${path}`, {}, timeoutMs);
  const b = r.body ?? {};
  if (b.resourceType !== "Bundle") {
    return {
      path,
      status: r.status,
      ms: r.ms,
      outcome: (b.issue ?? []).map((i) => `${i.severity}/${i.code}: ${i.diagnostics ?? ""}`),
    };
  }
  const byMode = {};
  for (const e of b.entry ?? []) (byMode[e.search?.mode ?? "(none)"] ??= []).push(keyOf(e));
  return {
    path,
    status: r.status,
    ms: r.ms,
    type: b.type,
    total: b.total,
    entries: (b.entry ?? []).length,
    byMode,
    links: (b.link ?? []).map((l) => ({ relation: l.relation, url: l.url })),
  };
}

/** Follow `next` from a first request; per page: entries, match ids; overall: dups, total. */
async function pages(path, limit = 50) {
  const out = { path, pages: [], matchIds: [], includeIds: [], firstTotal: undefined };
  let url = `${base}/${path}`;
  while (url && out.pages.length < limit) {
    const r = await get(url);
    const b = r.body ?? {};
    if (b.resourceType !== "Bundle") {
      out.pages.push({ status: r.status, error: (b.issue ?? []).map((i) => i.diagnostics) });
      break;
    }
    const match = (b.entry ?? []).filter((e) => (e.search?.mode ?? "match") === "match");
    const incl = (b.entry ?? []).filter((e) => e.search?.mode === "include");
    out.matchIds.push(...match.map(keyOf));
    out.includeIds.push(...incl.map(keyOf));
    if (out.firstTotal === undefined) out.firstTotal = b.total;
    const next = b.link?.find((l) => l.relation === "next")?.url ?? null;
    out.pages.push({
      status: r.status,
      total: b.total,
      match: match.length,
      include: incl.length,
      relations: (b.link ?? []).map((l) => l.relation),
      next,
    });
    url = next;
  }
  out.distinct = new Set(out.matchIds).size;
  out.duplicates = out.matchIds.length - out.distinct;
  return out;
}

/** keep reports short: at most 12 ids per search mode */
function shorten(p) {
  for (const [m, ids] of Object.entries(p.byMode ?? {})) {
    if (ids.length > 12) p.byMode[m] = [`${ids.length} ids`, ...ids.slice(0, 6), "…"];
  }
  return p;
}

const setCompare = (got, want) => {
  const g = new Set(got);
  const w = new Set(want);
  return {
    got: g.size,
    want: w.size,
    missing: [...w].filter((x) => !g.has(x)),
    extra: [...g].filter((x) => !w.has(x)),
  };
};

const report = [];
const section = (title, data) => report.push({ title, data });

const obs123 = inCompartment("123", "Observation");
const filter = "patient eq Patient/123 or performer eq Patient/123";
const enc = encodeURIComponent;

// 1. _filter, one page and paged with _count=50 (and smaller pages: HAPI's OR paging quirk)
for (const count of [500, 50, 5, 7]) {
  const p = await pages(`Observation?_filter=${enc(filter)}&_count=${count}`, 100);
  section(`Observation?_filter=${filter}&_count=${count}`, {
    pages: p.pages.length,
    perPage: p.pages.map((x) => x.match ?? x.status),
    firstTotal: p.firstTotal,
    duplicates: p.duplicates,
    vsCompartment: setCompare(p.matchIds, obs123),
    firstPage: p.pages[0],
    lastPage: p.pages.at(-1),
  });
}
// Parenthesised form and a single condition
section(
  'Observation?_filter=(patient eq "Patient/123") or (performer eq "Patient/123")&_count=50',
  await pages(
    `Observation?_filter=${enc('(patient eq "Patient/123") or (performer eq "Patient/123")')}&_count=50`,
  ).then((p) => ({ pages: p.pages.length, total: p.firstTotal, vs: setCompare(p.matchIds, obs123) })),
);

// 2. plain paging
{
  const p = await pages("Observation?patient=123&_count=50");
  section("Observation?patient=123&_count=50 (paging)", {
    pages: p.pages.length,
    perPage: p.pages.map((x) => x.match),
    firstTotal: p.firstTotal,
    duplicates: p.duplicates,
    firstPageLinks: p.pages[0]?.relations,
    nextUrls: p.pages
      .map((x) => x.next)
      .filter(Boolean)
      .slice(0, 2),
  });
}

// 3. compartment search, $everything, includes, _list, _has, labels
for (const path of [
  "Patient/123/Observation",
  "Patient/123/Observation?code=8867-4",
  "Patient/123/*",
  "Patient/123/$everything?_count=50",
  "Patient/$everything?_count=5",
  "Observation?patient=123&_revinclude=Provenance:target&_count=1000",
  "Observation?patient=123&_revinclude=Provenance:target&_count=50",
  "Observation?patient=123&_include=Observation:performer&_count=1000",
  "Observation?patient=123&_include=Observation:performer&_count=50",
  "Observation?patient=123&_count=50&_total=accurate",
  "Observation?_list=list-obs-123",
  "Observation?_list=List/list-obs-123",
  "Patient?_list=list-panel-prac-1",
  "Patient?_has:CareTeam:patient:participant=Practitioner/prac-1",
  "Patient?_has:List:item:_id=list-panel-prac-1",
  "Observation?subject:Patient._has:CareTeam:patient:participant=Practitioner/prac-1&_count=1000",
  "Observation?patient.general-practitioner=Practitioner/prac-1&_count=1000",
  "Observation?subject=https://elsewhere.example/fhir/Patient/123",
  "Observation?subject=Patient/123&_summary=count",
  "Observation?performer=Patient/123",
  "Observation?_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV",
  "Observation?_security:not=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV&patient=123&_summary=count",
  "Patient?link=Patient/123",
  "Provenance?target=Observation/obs-123-0001",
  "Provenance?patient=Patient/123",
]) {
  section(`GET ${path}`, shorten(await probe(path)));
}

// 4. $everything against the compartment
for (const p of truth.patients) {
  const e = await pages(`Patient/${p}/$everything?_count=1000`);
  section(
    `Patient/${p}/$everything vs the truth's compartment`,
    setCompare(e.matchIds, Object.keys(truth.compartments[p])),
  );
}

// 5. paging links: which host they name, and what a client can do with a search id
{
  // fetch() will not send another Host header; node:http will.
  const viaGateway = await new Promise((resolveLinks, reject) => {
    const u = new URL(`${base}/Observation?patient=999&_count=5`);
    const req = request(
      u,
      { headers: { host: "gateway.example:8443", accept: "application/fhir+json" } },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolveLinks(JSON.parse(text).link));
      },
    );
    req.on("error", reject);
    req.end();
  });
  section("links when the request's Host is gateway.example:8443", viaGateway);
  const first = await get(`${base}/Observation?patient=999&_count=5`);
  const next = new URL(first.body.link.find((l) => l.relation === "next").url);
  const id = next.searchParams.get("_getpages");
  const all = await get(`${base}?_getpages=${id}&_getpagesoffset=0&_count=1000`);
  section("?_getpages=<id>&_getpagesoffset=0&_count=1000 (client-chosen window)", {
    status: all.status,
    entries: all.body?.entry?.length,
    total: all.body?.total,
  });
  const bare = await get(`${base}?_getpages=${id}`);
  section("?_getpages=<id> alone", { status: bare.status, entries: bare.body?.entry?.length });
  const typed = await probe(`Observation?_getpages=${id}&_getpagesoffset=5&_count=5`);
  section("Observation?_getpages=<id> (on a type path)", typed);
  const withInclude = await pages(`?_getpages=${id}&_getpagesoffset=5&_count=5&_include=Observation:subject`);
  section("?_getpages=<id of a search without _include>&_include=Observation:subject", {
    includes: withInclude.includeIds,
  });
  const gone = await probe(`?_getpages=00000000-0000-0000-0000-000000000000`);
  section("?_getpages=<unknown id>", gone);
}

// 6. last, with a short timeout: chained _has through `patient.` runs away on HAPI 8.8.0 + H2
// (the query keeps a server thread busy after the client gives up; restart the server afterwards).
if (args.includes("--slow")) {
  for (const path of [
    "Observation?patient._has:CareTeam:patient:participant=Practitioner/prac-1&_count=1000",
    "Observation?patient._has:List:item:_id=list-panel-prac-1&_count=1000",
  ]) {
    section(`GET ${path}`, shorten(await probe(path, 30_000)));
  }
}

if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  for (const { title, data } of report) {
    console.log(`\n## ${title}`);
    console.log(JSON.stringify(data, null, 1).replace(/\n\s*/g, " "));
  }
}
