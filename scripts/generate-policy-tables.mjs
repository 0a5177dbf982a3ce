// Writes the lookup tables the Rego policy reads as data, so that the hot paths of a decision in
// OPA's WASM target are table lookups instead of arithmetic, bits.* calls and per-evaluation
// construction of constant sets (a set or object literal in Rego is rebuilt on every evaluation;
// data is loaded once):
//
//   policies/lib/percent/data.json  (data.lib.percent), for policies/lib/text.rego percent_decode;
//   policies/scope/tables/data.json (data.scope.tables), for recognising the common forms of SMART
//     resource scopes in policies/grant/grant.rego with one split and two lookups per token.
//
// Both are checked in; text_test.rego and scope_test.rego recompute every entry independently.
// Run: node scripts/generate-policy-tables.mjs [--check]   (--check: exit 1 if a file is stale)
//
// data.lib.percent. Keys are the two hex digits of an escape (%XX), in every upper/lower-case
// combination. Only bytes that may appear in a decoded FHIR URL or scope value have an entry:
// printable ASCII (0x20-0x7E), UTF-8 continuation bytes (0x80-0xBF) and UTF-8 lead bytes
// (0xC2-0xF4). Control characters, DEL, 0xC0, 0xC1 and 0xF5-0xFF have none, so their escapes are
// refused.
//
//   class[XX]: the byte's role in a UTF-8 sequence (RFC 3629 section 4, Unicode Table 3-7):
//     "|a" printable ASCII; "|2" a 2-byte lead (C2-DF); "|3" a 3-byte lead (E1-EC, EE, EF);
//     "|E" E0 (next byte A0-BF); "|D" ED (next 80-9F: no surrogates); "|4" F1-F3;
//     "|F" F0 (next 90-BF); "|G" F4 (next 80-8F: nothing above U+10FFFF);
//     "8", "9", "b" continuation bytes 80-8F, 90-9F, A0-BF.
//     Concatenated and split at "|", a well-formed string gives only the keys of `sequences`
//     (one per character, and "" before the first "|"); anything else is malformed UTF-8.
//   printable[c]: true for the printable ASCII characters 0x20-0x7E.
//   quad[XX]: base64 of the three bytes [XX, 0, 0]. Every byte is its own base64 group, so the
//     quads of a string concatenate without any bit alignment, and decoding them yields the
//     bytes with two NULs after each (removed afterwards; %00 is refused, so no NUL is real).
//
// data.scope.tables (SMART App Launch 2.2, "Scopes and Launch Context"):
//   heads["<context>/<type>"] = type, for the three contexts and every FHIR resource type of
//     data.fhir.r4.resource_types, and "*";
//   permissions[p] = "v1" for read, write and *, "v2" for the 31 ordered subsets of c, r, u, d, s.
//
// data.compartment.tables (FHIR R4 CompartmentDefinition "patient" and the search parameters, both
//   from data.fhir.r4), for policies/compartment/compartment.rego:
//   linking_params[t][name] = true for each search parameter of t that can only name the patient's
//     compartment: the compartment's own parameters and their narrowing names, and every other
//     reference parameter all of whose paths are linking paths (Basic: `subject`);
//   linking_paths[t] = the element paths (arrays of names) that link a t to the patient;
//   default_shared_types[t] = true for every type outside the compartment whose security category
//     is business or anonymous and that has no search parameter referencing a Patient (the
//     default of policy.patient.shared_types, smart.config).
//   Every type of the compartment has an entry in both; Patient only in linking_paths (which of its
//   parameters link is configuration: patient.follow_patient_link).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PERCENT = resolve(ROOT, "policies", "lib", "percent", "data.json");
const COMPARTMENT = resolve(ROOT, "policies", "compartment", "tables", "data.json");
const SCOPE = resolve(ROOT, "policies", "scope", "tables", "data.json");
const FHIR = resolve(ROOT, "policies", "fhir", "r4", "data.json");

function byteClass(b) {
  if (b >= 0x20 && b <= 0x7e) return "|a";
  if (b >= 0x80 && b <= 0x8f) return "8";
  if (b >= 0x90 && b <= 0x9f) return "9";
  if (b >= 0xa0 && b <= 0xbf) return "b";
  if (b >= 0xc2 && b <= 0xdf) return "|2";
  if (b === 0xe0) return "|E";
  if (b === 0xed) return "|D";
  if (b >= 0xe1 && b <= 0xef) return "|3";
  if (b === 0xf0) return "|F";
  if (b === 0xf4) return "|G";
  if (b >= 0xf1 && b <= 0xf3) return "|4";
  return undefined;
}

/** The hex spellings of a byte: "c3", "C3", "c3" with each letter digit in either case. */
function spellings(b) {
  const hex = b.toString(16).toUpperCase().padStart(2, "0");
  const cases = (d) => [...new Set([d, d.toLowerCase()])];
  return cases(hex[0]).flatMap((hi) => cases(hex[1]).map((lo) => hi + lo));
}

/** Every well-formed UTF-8 sequence as a string of classes (without the leading "|"), and "". */
function sequences() {
  const cont = ["8", "9", "b"];
  const tails = (n) => (n === 0 ? [""] : cont.flatMap((c) => tails(n - 1).map((t) => c + t)));
  return [
    "a",
    ...tails(1).map((t) => `2${t}`),
    ...tails(2).map((t) => `3${t}`),
    ...tails(1).map((t) => `Eb${t}`),
    ...["8", "9"].flatMap((c) => tails(1).map((t) => `D${c}${t}`)),
    ...tails(3).map((t) => `4${t}`),
    ...["9", "b"].flatMap((c) => tails(2).map((t) => `F${c}${t}`)),
    ...tails(2).map((t) => `G8${t}`),
  ].sort();
}

export function percentTables() {
  const klass = {};
  const quad = {};
  for (let b = 0; b < 256; b++) {
    const c = byteClass(b);
    if (c === undefined) continue;
    const q = Buffer.from([b, 0, 0]).toString("base64");
    for (const k of spellings(b)) {
      klass[k] = c;
      quad[k] = q;
    }
  }
  const sorted = (o) =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  const seqs = Object.fromEntries(["", ...sequences()].map((q) => [q, true]));
  const printable = {};
  for (let c = 0x20; c <= 0x7e; c++) printable[String.fromCharCode(c)] = true;
  return { class: sorted(klass), printable: sorted(printable), quad: sorted(quad), sequences: seqs };
}

export function scopeTables() {
  const types = ["*", ...Object.keys(JSON.parse(readFileSync(FHIR, "utf8")).resource_types).sort()];
  const heads = {};
  for (const context of ["patient", "user", "system"]) {
    for (const type of types) heads[`${context}/${type}`] = type;
  }
  const permissions = { "*": "v1", read: "v1", write: "v1" };
  for (let mask = 1; mask < 32; mask++) {
    permissions[[..."cruds"].filter((_, i) => mask & (16 >> i)).join("")] = "v2";
  }
  const sorted = (o) =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  return { heads: sorted(heads), permissions: sorted(permissions) };
}

export function compartmentTables() {
  const fhir = JSON.parse(readFileSync(FHIR, "utf8"));
  const linkingParams = {};
  const linkingPaths = {};
  for (const t of Object.keys(fhir.patient_compartment).sort()) {
    const links = fhir.patient_compartment[t];
    const paths = new Map();
    for (const link of Object.values(links))
      for (const path of link.paths) paths.set(JSON.stringify(path), path);
    linkingPaths[t] = [...paths.keys()].sort().map((k) => paths.get(k));
    if (t === "Patient") continue;
    const params = new Set();
    for (const [name, link] of Object.entries(links)) {
      params.add(name);
      params.add(link.narrow_param);
    }
    for (const [name, sp] of Object.entries(fhir.search_params[t] ?? {})) {
      if (sp.type !== "reference" || !Array.isArray(sp.paths) || sp.paths.length === 0) continue;
      if (sp.paths.every((path) => paths.has(JSON.stringify(path)))) params.add(name);
    }
    linkingParams[t] = Object.fromEntries([...params].sort().map((p) => [p, true]));
  }
  const sharedTypes = {};
  for (const [t, info] of Object.entries(fhir.resource_types).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (
      ["business", "anonymous"].includes(info.security_category) &&
      !info.patient_compartment &&
      !info.references_patient
    )
      sharedTypes[t] = true;
  }
  return { default_shared_types: sharedTypes, linking_params: linkingParams, linking_paths: linkingPaths };
}

let stale = false;
for (const [path, tables] of [
  [PERCENT, percentTables()],
  [SCOPE, scopeTables()],
  [COMPARTMENT, compartmentTables()],
]) {
  const text = `${JSON.stringify(tables, null, 1)}\n`;
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(path, "utf8");
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      console.error(`${path} is stale: run node scripts/generate-policy-tables.mjs`);
      stale = true;
    } else {
      console.log(`${path} is up to date`);
    }
  } else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
  }
}
if (stale) process.exit(1);
