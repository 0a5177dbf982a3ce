// How the user access model scales with the number of patients a Practitioner is related to
// (docs/user-access.md, "How narrowing scales"). For 10, 1,000 and 10,000 related patients, in one
// process with the compiled policy (WASM host, build/bundle.tar.gz, one engine per document):
// the decision time (median and p90 of PolicyEngine.decide) and the size of what the decision asks
// the FHIR server to run (the `narrow` alternatives as a query string), for
//   - the patients listed on the user directly (named one by one: an OR-list up to the bound);
//   - the same patients in one group that carries a FHIR List id (`_list` for Patient searches);
// and, for comparison, the OR-list with the bound lifted to 10,000 (policy.user.max_search_patients).
//   make build && node scripts/bench/user-narrowing.mjs [--json]
// (BENCH_SIZES=10,1000 and BENCH_SHAPES=direct select a part.)
// The filter cases answer a search that names one related patient with a 50-entry searchset, half of
// it the related patients', half strangers'; the baseline is the same with a patient/ token.
import { readBundle } from "../../dist/src/policy/bundle.js";
import { PolicyEngine } from "../../dist/src/policy/engine.js";
import { BUNDLE, round, summarize } from "./lib.mjs";

const SIZES = (process.env.BENCH_SIZES ?? "10,1000,10000").split(",").map(Number);
const USER = "Practitioner/dr-lee";
const patientId = (i) => `pat-${String(i).padStart(6, "0")}`;

function relationships(n, shape) {
  const ids = Array.from({ length: n }, (_, i) => patientId(i));
  if (shape === "direct") return { version: 1, users: { [USER]: { patients: ids } } };
  return {
    version: 1,
    users: { [USER]: { groups: ["CareTeam/ward"] } },
    groups: { "CareTeam/ward": { patients: ids, list: "ward-census" } },
  };
}

const observation = (id, patient) => ({
  resourceType: "Observation",
  id,
  status: "final",
  code: { text: "x" },
  subject: { reference: `Patient/${patient}` },
});

function cases(n) {
  const claims = { scope: "user/Observation.rs user/Patient.rs", fhirUser: USER };
  const bundle = {
    resourceType: "Bundle",
    type: "searchset",
    entry: Array.from({ length: 50 }, (_, i) => ({
      resource: observation(`o${i}`, i % 2 === 0 ? patientId(i % n) : `stranger-${i}`),
    })),
  };
  return {
    "search Observation": { claims, request: { method: "GET", url: "Observation?code=x" } },
    "search Patient": { claims, request: { method: "GET", url: "Patient?name=x" } },
    "read Observation (stored)": {
      claims,
      request: { method: "GET", url: "Observation/o1" },
      resource: observation("o1", patientId(n - 1)),
    },
    "search naming a related patient, filter 50 entries": {
      claims,
      request: { method: "GET", url: `Observation?patient=Patient/${patientId(0)}` },
      response: bundle,
    },
    "same, patient/ token (baseline)": {
      claims: { scope: "patient/Observation.rs", patient: patientId(0) },
      request: { method: "GET", url: `Observation?patient=Patient/${patientId(0)}` },
      response: bundle,
    },
  };
}

/** The narrowed request's added query, as a FHIR server would receive it (the longest alternative). */
function narrowSize(d) {
  if (d.decision !== "filter" || !Array.isArray(d.narrow) || d.narrow.length === 0) return undefined;
  const queries = d.narrow.map((alt) =>
    Object.entries(alt)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join("&"),
  );
  return { alternatives: d.narrow.length, longestQueryBytes: Math.max(...queries.map((q) => q.length)) };
}

function time(engine, input) {
  const run = () => engine.decide(input);
  for (let i = 0; i < 5; i++) run();
  const t0 = performance.now();
  let n = 0;
  while (n < 20 || (performance.now() - t0 < 1500 && n < 2000)) {
    run();
    n++;
  }
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    run();
    samples[i] = performance.now() - t;
  }
  const s = summarize(samples);
  return { runs: n, ms: { p50: round(s.p50, 3), p90: round(s.p90, 3) } };
}

const bundle = readBundle(BUNDLE);
const rows = [];
const SHAPES = [
  ["direct", {}],
  ["group with List", {}],
  ["direct, bound 10,000", { user: { max_search_patients: 10_000 } }],
].filter(([shape]) => !process.env.BENCH_SHAPES || process.env.BENCH_SHAPES.split(",").includes(shape));
for (const [shape, config] of SHAPES) {
  for (const n of SIZES) {
    const engine = await PolicyEngine.load(bundle, {
      data: { config, relationships: relationships(n, shape.startsWith("direct") ? "direct" : "list") },
    });
    for (const [name, input] of Object.entries(cases(n))) {
      const d = engine.decide(input);
      rows.push({
        shape,
        patients: n,
        case: name,
        decision: d.decision,
        reason: d.decision === "deny" ? d.reasons?.[0]?.code : undefined,
        kept: d.keep?.length,
        narrow: narrowSize(d),
        ...time(engine, input),
      });
    }
  }
}

if (process.argv.includes("--json")) {
  console.log(JSON.stringify(rows, null, 1));
} else {
  console.log(
    "| relationships | patients | request | decision | narrow (alternatives, longest query) | p50 ms | p90 ms |",
  );
  console.log("| --- | ---: | --- | --- | --- | ---: | ---: |");
  for (const r of rows) {
    const decision = r.reason
      ? `deny (${r.reason})`
      : r.kept !== undefined
        ? `${r.decision}, keep ${r.kept}`
        : r.decision;
    const narrow = r.narrow
      ? `${r.narrow.alternatives}, ${r.narrow.longestQueryBytes.toLocaleString("en")} B`
      : "–";
    console.log(
      `| ${r.shape} | ${r.patients.toLocaleString("en")} | ${r.case} | ${decision} | ${narrow} | ${r.ms.p50} | ${r.ms.p90} |`,
    );
  }
}
