// Writes the parity cases: [{ id, entrypoint, input }] for every conformance vector.
//   node scripts/parity/cases.mjs [out.json]      (default build/parity/cases.json)
// Request vectors are evaluated at smart/api/decision with their contract input; parse vectors
// at smart/api/scopes with {"scope": ...}. Every distinct scope string of the request vectors is
// also run through smart/api/scopes (ids "scopes:<vector id>"), since the parser is shared code.
// Then the derived cases below (ids "x:<vector id>:<scope hash>").
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadVectors, vectorToInput } from "../lib/vectors.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = resolve(process.argv[2] ?? resolve(root, "build", "parity", "cases.json"));

const cases = [];
const ids = new Set();
const add = (id, entrypoint, input, source) => {
  // The project's own vectors may reuse a public id; keep ids unique and traceable.
  const unique = ids.has(id) ? `${id}@${source}` : id;
  if (ids.has(unique)) throw new Error(`duplicate vector id ${unique}`);
  ids.add(unique);
  cases.push({ id: unique, entrypoint, input });
};

const vectors = loadVectors();
const scopeStrings = new Set(vectors.filter((v) => !v.request).map((v) => v.scopes ?? ""));
for (const v of vectors) {
  const input = vectorToInput(v);
  if (input) {
    add(v.id, "smart/api/decision", input, v.source);
  } else {
    add(v.id, "smart/api/scopes", { scope: v.scopes ?? "" }, v.source);
  }
}
for (const v of vectors) {
  const scope = v.scopes ?? "";
  if (v.request && !scopeStrings.has(scope)) {
    scopeStrings.add(scope);
    add(`scopes:${v.id}`, "smart/api/scopes", { scope }, v.source);
  }
}

// Derived cases: every request vector again under every other scope string of the vectors, so
// that denials, required_scopes and narrowing get exercised far beyond the expected outcomes.
// The policy's answer is not checked here, only that every host gives the same one. The product
// grows quadratically with the vectors, so at most PARITY_CROSS_MAX (default 3000) are kept, an
// evenly spread, deterministic selection. PARITY_CROSS=0 leaves them out.
if (process.env.PARITY_CROSS !== "0") {
  const scopes = [...new Set(vectors.map((v) => v.scopes ?? ""))].sort();
  const derived = [];
  for (const v of vectors.filter((x) => x.request)) {
    for (const scope of scopes) if (scope !== (v.scopes ?? "")) derived.push([v, scope]);
  }
  const max = Math.min(derived.length, Number(process.env.PARITY_CROSS_MAX ?? 3000));
  for (let k = 0; k < max; k++) {
    const [v, scope] = derived[Math.floor((k * derived.length) / max)];
    // The id names the vector and, stably, the scope string: the first 8 hex digits of its SHA-256.
    const tag = createHash("sha256").update(scope).digest("hex").slice(0, 8);
    add(`x:${v.id}:${tag}`, "smart/api/decision", vectorToInput({ ...v, scopes: scope }), v.source);
  }
}

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(cases, null, 1) + "\n");
const byEntrypoint = {};
for (const c of cases) byEntrypoint[c.entrypoint] = (byEntrypoint[c.entrypoint] ?? 0) + 1;
console.error(
  `parity: ${cases.length} cases -> ${out} (${Object.entries(byEntrypoint)
    .map(([e, n]) => `${e}: ${n}`)
    .join(", ")})`,
);
