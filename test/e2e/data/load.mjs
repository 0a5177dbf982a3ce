#!/usr/bin/env node
// Load the generated data set into a FHIR server and verify that the server holds exactly it.
//
//   node test/e2e/data/load.mjs <fhir-base> [--data build/e2e/data] [--chunk 500] [--allow-extra]
//
// POSTs <data>/transaction.json as one or more transactions (entries are in dependency order, so
// consecutive chunks of it load in turn), then checks against <data>/truth.json:
//   - every type has exactly the ids of the truth (--allow-extra: at least them);
//   - every absolute reference to another server is stored unchanged.
// Exits 0 when all holds, 1 with the reason otherwise. Idempotent: loading twice changes nothing.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { referencesIn } from "./generate.mjs";

const FHIR_JSON = "application/fhir+json";
const TIMEOUT_MS = 180_000;

function parseArgs(argv) {
  const opts = { base: null, data: "build/e2e/data", chunk: 500, allowExtra: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--data") opts.data = value();
    else if (a === "--chunk") {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < 1)
        throw new Error(`--chunk must be a positive integer, got ${JSON.stringify(v)}`);
      opts.chunk = Number(v);
    } else if (a === "--allow-extra") opts.allowExtra = true;
    else if (!a.startsWith("--") && opts.base === null) opts.base = a;
    else throw new Error(`unexpected argument ${JSON.stringify(a)}`);
  }
  if (opts.base === null) {
    throw new Error("usage: load.mjs <fhir-base> [--data DIR] [--chunk N] [--allow-extra]");
  }
  let url;
  try {
    url = new URL(opts.base);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(opts.base)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`the FHIR base must be http(s), got ${url.protocol}`);
  }
  opts.base = opts.base.replace(/\/+$/, "");
  return opts;
}

async function fhir(method, url, body) {
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: { accept: FHIR_JSON, ...(body ? { "content-type": FHIR_JSON } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    throw new Error(`${method} ${url}: ${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}`);
  }
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: reported below with the status
  }
  return { status: res.status, json, text };
}

function outcomeText(r) {
  const issues = r.json?.resourceType === "OperationOutcome" ? r.json.issue : null;
  return issues ? issues.map((i) => i.diagnostics ?? i.code).join("; ") : r.text.slice(0, 300);
}

/** Every id of one type on the server (follows `next` links). */
export async function serverIds(base, type) {
  const ids = [];
  let url = `${base}/${type}?_elements=id&_count=1000`;
  for (let page = 0; url; page++) {
    if (page > 1000) throw new Error(`${type}: more than 1000 pages, giving up`);
    const r = await fhir("GET", url);
    if (r.status !== 200 || r.json?.resourceType !== "Bundle") {
      throw new Error(`GET ${url}: HTTP ${r.status}: ${outcomeText(r)}`);
    }
    for (const e of r.json.entry ?? []) ids.push(e.resource.id);
    url = r.json.link?.find((l) => l.relation === "next")?.url ?? null;
  }
  return ids;
}

export async function load({ base, data, chunk, allowExtra }, log = console.log) {
  const transaction = JSON.parse(readFileSync(join(data, "transaction.json"), "utf8"));
  const truth = JSON.parse(readFileSync(join(data, "truth.json"), "utf8"));
  const meta = await fhir("GET", `${base}/metadata`);
  if (meta.status !== 200 || meta.json?.resourceType !== "CapabilityStatement") {
    throw new Error(`${base}/metadata: HTTP ${meta.status}, not a FHIR server answering`);
  }
  if (meta.json.fhirVersion !== truth.fhirVersion) {
    throw new Error(`server is FHIR ${meta.json.fhirVersion}, the data set is ${truth.fhirVersion}`);
  }

  const t0 = performance.now();
  const entries = transaction.entry;
  for (let start = 0; start < entries.length; start += chunk) {
    const part = entries.slice(start, start + chunk);
    const r = await fhir("POST", base, { ...transaction, entry: part });
    if (r.status !== 200 || r.json?.resourceType !== "Bundle") {
      throw new Error(
        `transaction of entries ${start}..${start + part.length - 1}: HTTP ${r.status}: ${outcomeText(r)}`,
      );
    }
    const bad = (r.json.entry ?? [])
      .map((e, i) => [i, e.response?.status ?? ""])
      .filter(([, s]) => !/^20[01]\b/.test(s));
    if (bad.length || (r.json.entry ?? []).length !== part.length) {
      throw new Error(
        `transaction answered ${r.json.entry?.length ?? 0} entries for ${part.length}; not 200/201: ${JSON.stringify(bad.slice(0, 5))}`,
      );
    }
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  log(
    `loaded ${entries.length} resources in ${Math.ceil(entries.length / chunk)} transaction(s), ${loadSeconds.toFixed(1)} s`,
  );

  const problems = [];
  for (const [type, expected] of Object.entries(truth.ids)) {
    const got = await serverIds(base, type);
    const gotSet = new Set(got);
    const want = new Set(expected);
    const missing = expected.filter((id) => !gotSet.has(id));
    const extra = got.filter((id) => !want.has(id));
    if (got.length !== gotSet.size) problems.push(`${type}: the server listed an id twice`);
    if (missing.length)
      problems.push(`${type}: missing ${missing.length}: ${missing.slice(0, 10).join(", ")}`);
    if (extra.length && !allowExtra) {
      problems.push(
        `${type}: ${extra.length} not in the data set (use a fresh server or --allow-extra): ${extra.slice(0, 10).join(", ")}`,
      );
    }
  }
  for (const [key, refs] of Object.entries(truth.externalReferences)) {
    const r = await fhir("GET", `${base}/${key}`);
    if (r.status !== 200) {
      problems.push(`GET ${key}: HTTP ${r.status}`);
      continue;
    }
    const stored = referencesIn(r.json);
    for (const { path, reference } of refs) {
      if (!stored.some((s) => s.path === path && s.reference === reference)) {
        const now = stored.filter((s) => s.path === path).map((s) => s.reference);
        problems.push(`${key}.${path}: sent ${reference}, the server stored ${JSON.stringify(now)}`);
      }
    }
  }
  if (problems.length) throw new Error(`the server does not hold the data set:\n  ${problems.join("\n  ")}`);
  log(
    `verified: ${truth.total} resources of ${Object.keys(truth.ids).length} types, ${Object.keys(truth.externalReferences).length} external reference(s) intact`,
  );
  return { loadSeconds };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`load.mjs: ${e.message}`);
    process.exit(2);
  }
  try {
    await load(opts);
  } catch (e) {
    console.error(`load.mjs: ${e.message}`);
    process.exit(1);
  }
}
