/**
 * Every conformance vector (the public set in test/vectors/public, the project's own in test/vectors)
 * through the compiled WASM policy in this host, held to the vector's expectation AND to the
 * decision OPA's own evaluator reaches on the Rego sources.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { PolicyEngine } from "../src/policy/engine.js";
import type { DecisionInput, Decision } from "../src/core/contract.js";
// @ts-expect-error: plain ESM helper shared with the parity runner
import { PUBLIC_VECTORS, loadVectors, vectorToInput } from "../scripts/lib/vectors.mjs";
import { loadRealEngine, opaOutcomes } from "./helpers/policy.js";
import { mismatch, type Vector } from "./helpers/vectors.js";
import { readContract, reasonCodesOf } from "./helpers/contract.js";

const vectors = loadVectors() as Vector[];
let engine: PolicyEngine;
let opa: Record<string, unknown>;

beforeAll(async () => {
  engine = await loadRealEngine();
  opa = opaOutcomes();
});

const configured = new Map<string, Promise<PolicyEngine>>();

/**
 * Vectors may carry a `config` (the policy section of the service config), a `relationships`
 * document (data.relationships) and `clients` (data.clients, the client registrations): one engine
 * per distinct combination.
 */
function engineFor(v: Vector): Promise<PolicyEngine> {
  const { config, relationships } = v as { config?: Record<string, unknown>; relationships?: unknown };
  const clients = v.clients;
  if (!config && relationships === undefined && !clients) return Promise.resolve(engine);
  const key = JSON.stringify([config ?? null, relationships ?? null, clients ?? null]);
  if (!configured.has(key))
    configured.set(
      key,
      loadRealEngine({
        ...(config ? { config } : {}),
        ...(relationships !== undefined ? { relationships } : {}),
        ...(clients ? { clients } : {}),
      }),
    );
  return configured.get(key)!;
}

/** Every reason code the vectors' decisions carry; each must be listed in docs/contract.md. */
const producedCodes = new Set<string>();

const sources = [...new Set(vectors.map((v) => v.source ?? "public"))];

it("loads the public vectors from the repository, unchanged", () => {
  expect(sources).toContain("public");
  const readme = readFileSync(join(PUBLIC_VECTORS, "..", "README.md"), "utf8");
  const digest = createHash("sha256").update(readFileSync(PUBLIC_VECTORS)).digest("hex");
  expect(readme, "test/vectors/public/README.md names the file's SHA-256").toContain(digest);
  const publicIds = vectors.filter((v) => v.source === "public").map((v) => v.id);
  expect(new Set(publicIds).size).toBe(publicIds.length);
});

describe.each(sources)("%s vectors", (source) => {
  const set = vectors.filter((v) => (v.source ?? "public") === source);
  it.each(set.map((v) => [`${v.id}: ${v.note ?? ""}`, v] as const))("%s", async (_, v) => {
    if (v.parse) {
      const parsed = engine.parseScopes(v.scopes) as { valid: boolean };
      expect(parsed.valid, JSON.stringify(parsed)).toBe(v.expect === "valid");
      expect(parsed).toEqual(opa[v.id]);
      return;
    }
    const decision: Decision = (await engineFor(v)).decide(vectorToInput(v) as DecisionInput);
    reasonCodesOf(decision, producedCodes);
    expect(mismatch(v, decision)).toBeUndefined();
    expect(decision, "the WASM host and OPA's evaluator disagree").toEqual(opa[v.id]);
  });
});

it("produces only reason codes that docs/contract.md lists", () => {
  const documented = new Set(readContract().reasonCodes.map((r) => r.name));
  expect(producedCodes.size).toBeGreaterThan(20);
  const undocumented = [...producedCodes].filter((c) => !documented.has(c)).sort();
  expect(undocumented, undocumented.join(", ")).toEqual([]);
});
