// OPA data must be an object: writes build/vectors/data.json = {"vectors": {"public": [...], "<file>": [...]}}
// from the public vectors (test/vectors/public/) and the project's own test/vectors/*.json, for `opa test`.
import { mkdirSync, writeFileSync } from "node:fs";
import { loadVectors } from "./lib/vectors.mjs";

const sets = {};
for (const v of loadVectors()) {
  const name =
    v.source === "public" ? "public" : v.source.replace(/\.json$/, "").replace(/[^A-Za-z0-9_]/g, "_");
  (sets[name] ??= []).push(v);
}
mkdirSync("build/vectors", { recursive: true });
writeFileSync("build/vectors/data.json", JSON.stringify({ vectors: sets }));
console.log(
  `wrapped vectors: ${Object.entries(sets)
    .map(([k, v]) => `${k}=${v.length}`)
    .join(", ")}`,
);
