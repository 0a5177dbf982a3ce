// Turns the conformance vectors (test/vectors/: the public set in public/, the project's own beside it;
// format in test/vectors/README.md) into decision-contract input documents. Shared by vitest, the
// parity runner and the benchmarks.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A fixed clock so every host sees the same input. */
export const VECTOR_NOW = "2026-11-22T10:00:00Z";

/** The public conformance set, kept in the repository unchanged (test/vectors/public/README.md). */
export const PUBLIC_VECTORS = join(root, "test", "vectors", "public", "spec-vectors.json");

/**
 * Public cases that assume a behaviour the project no longer has by default, with the `policy:`
 * configuration under which they were written; each has a counter-case in the project's own files
 * that holds the default (docs/contract.md, "Public vectors run under a configuration"). The public
 * file itself stays unchanged.
 */
export const PUBLIC_UNDER_CONFIG = {
  // "user scope: server's own user rules": policy.user.access defaults to relationships
  // (counter-case usr-public-user-read-default in user-access.json).
  "user-read": { user: { access: "server" } },
};

/** The public vectors (source "public") plus every JSON file directly under test/vectors/ (each an array of cases). */
export function loadVectors({ includeOwn = true } = {}) {
  const cases = JSON.parse(readFileSync(PUBLIC_VECTORS, "utf8")).map((c) => ({
    ...c,
    ...(PUBLIC_UNDER_CONFIG[c.id] ? { config: PUBLIC_UNDER_CONFIG[c.id] } : {}),
    source: "public",
  }));
  const ownDir = join(root, "test", "vectors");
  if (includeOwn && existsSync(ownDir)) {
    for (const file of readdirSync(ownDir)
      .filter((f) => f.endsWith(".json"))
      .sort()) {
      for (const c of JSON.parse(readFileSync(join(ownDir, file), "utf8")))
        cases.push({ ...c, source: file });
    }
  }
  return cases;
}

/** The contract input for a request vector (parse vectors have none). */
export function vectorToInput(v) {
  if (!v.request) return undefined;
  const input = {
    claims: { ...(v.context ?? {}), scope: v.scopes },
    request: { method: v.request.method, url: v.request.url, headers: v.request.headers ?? {} },
    now: v.now ?? VECTOR_NOW,
  };
  if (v.request.body !== undefined) input.request.body = v.request.body;
  if (v.resource !== undefined) input.resource = v.resource;
  if (v.resource_absent !== undefined) input.resource_absent = v.resource_absent;
  if (v.response !== undefined) input.response = v.response;
  return input;
}
