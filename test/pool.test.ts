/**
 * The policy pool (src/policy/pool.ts): worker threads built from one compiled module give the same
 * decisions as the engine; a deadline stops a slow evaluation and fails closed; a full queue
 * refuses with a fail-closed deny; a bundle swap keeps in-flight requests; close() drains.
 * The workers run dist/src/policy/pool-worker.js: `make build` first (`make test-host` does).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DecisionInput } from "../src/core/contract.js";
import { parseDecision, type PolicyEngine } from "../src/policy/engine.js";
import { PolicyPool, PoolError, type PoolEvent } from "../src/policy/pool.js";
import { loadRealEngine } from "./helpers/policy.js";

const NOW = "2026-11-22T10:00:00Z";
const claims = { scope: "patient/*.rs", patient: "123" };

const read = (id = "o1", patient = "123"): DecisionInput => ({
  claims,
  request: { method: "GET", url: `Observation/${id}`, headers: {} },
  resource: {
    resourceType: "Observation",
    id,
    status: "final",
    subject: { reference: `Patient/${patient}` },
  },
  now: NOW,
});

/** A searchset of n Observations; every 4th one is another patient's. */
const bundleInput = (n: number): DecisionInput => ({
  claims,
  request: { method: "GET", url: "Observation?patient=123", headers: {} },
  response: {
    resourceType: "Bundle",
    type: "searchset",
    entry: Array.from({ length: n }, (_, i) => ({
      resource: {
        resourceType: "Observation",
        id: `o${i}`,
        status: "final",
        subject: { reference: `Patient/${i % 4 === 3 ? "999" : "123"}` },
      },
    })),
  },
  now: NOW,
});

let engine: PolicyEngine;
const pools: PolicyPool[] = [];

async function pool(options: ConstructorParameters<typeof PolicyPool>[0] = {}): Promise<PolicyPool> {
  const p = await PolicyPool.create(engine, { workers: 2, ...options });
  pools.push(p);
  return p;
}

beforeAll(async () => {
  engine = await loadRealEngine();
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe("engine fast path", () => {
  it("decideJson gives the same decision text as decide, without stringify/parse in between", () => {
    for (const input of [read(), read("o2", "999"), bundleInput(10)]) {
      expect(parseDecision(engine.decideJson(JSON.stringify(input)))).toEqual(engine.decide(input));
    }
  });

  it("evaluateJson returns undefined-free JSON text and rejects non-object input", () => {
    expect(
      JSON.parse(engine.evaluateJson("smart/api/scopes", '{"scope":"patient/Observation.rs"}') ?? "null"),
    ).toEqual(engine.parseScopes("patient/Observation.rs"));
    expect(() => engine.evaluateJson("smart/api/decision", "[1]")).toThrow(/JSON object/);
    expect(parseDecision(engine.decideJson("42"))).toMatchObject({ decision: "deny", status: 400 });
  });

  it("parseDecision fails closed on anything that is not a decision", () => {
    expect(parseDecision(undefined)).toMatchObject({
      decision: "deny",
      reasons: [{ code: "policy-undefined" }],
    });
    expect(parseDecision('{"decision":"maybe"}')).toMatchObject({ decision: "deny" });
    expect(parseDecision("{not json")).toMatchObject({
      decision: "deny",
      reasons: [{ code: "policy-error" }],
    });
  });
});

describe("PolicyPool (workers)", () => {
  it("decides like the engine, for every kind of input, concurrently", async () => {
    const p = await pool();
    const inputs = [read(), read("o2", "999"), bundleInput(50), { ...read(), claims: { scope: "" } }];
    const many = Array.from({ length: 40 }, (_, i) => inputs[i % inputs.length] as DecisionInput);
    const results = await Promise.all(many.map((input) => p.decide(input)));
    results.forEach((r, i) => {
      expect(r.decision).toEqual(engine.decide(many[i] as DecisionInput));
      expect(r.revision).toBe(engine.revision);
    });
    expect(p.revision()).toBe(engine.revision);
    expect(p.entrypoints()).toEqual(engine.entrypoints);
    expect(p.stats()).toMatchObject({ mode: "workers", workers: 2, queued: 0, timeouts: 0 });
  });

  it("evaluates other entrypoints and reports their failures as errors", async () => {
    const p = await pool();
    const { result } = await p.evaluate("smart/api/scopes", { scope: "patient/Observation.rs" });
    expect(result).toEqual(engine.parseScopes("patient/Observation.rs"));
    await expect(p.evaluate("smart/api/nope", {})).rejects.toThrow(/entrypoint/);
    await expect(p.evaluate("smart/api/decision", [] as unknown)).rejects.toThrow(/JSON object/);
  });

  it("a decision past its deadline is a fail-closed 500 policy-timeout; the worker is replaced", async () => {
    const events: PoolEvent[] = [];
    const p = await pool({ workers: 1, timeoutMs: 30, onEvent: (e) => events.push(e) });
    const slow = p.decide(bundleInput(20000));
    const queued = p.decide(read()); // waits behind the slow one, then runs on the replacement
    const { decision } = await slow;
    expect(decision).toMatchObject({ decision: "deny", status: 500, reasons: [{ code: "policy-timeout" }] });
    expect((await queued).decision).toEqual(engine.decide(read()));
    expect(events.some((e) => e.type === "timeout")).toBe(true);
    expect(events.some((e) => e.type === "worker-replaced")).toBe(true);
    expect(p.stats()).toMatchObject({ timeouts: 1, replacements: 1, workers: 1 });
  });

  it("evaluate() past its deadline rejects with a PoolError (policy-timeout, 500)", async () => {
    const p = await pool({ workers: 1, timeoutMs: 30 });
    const err = await p.evaluate("smart/api/decision", bundleInput(20000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolError);
    expect(err).toMatchObject({ reason: "policy-timeout", status: 500 });
  });

  it("a full queue refuses at once with a fail-closed 503 policy-overloaded", async () => {
    const p = await pool({ workers: 1, pipeline: 1, maxQueue: 2 });
    const all = await Promise.all(Array.from({ length: 6 }, () => p.decide(bundleInput(300))));
    const refused = all.filter((r) => r.decision.reasons?.[0]?.code === "policy-overloaded");
    expect(refused.length).toBe(3); // 1 running + 2 queued are served
    for (const r of refused) expect(r.decision).toMatchObject({ decision: "deny", status: 503 });
    expect(all.filter((r) => r.decision.decision !== "deny")).toHaveLength(3);
    expect(p.stats().overloaded).toBe(3);
  });

  it("hot-swaps to a new bundle without dropping in-flight requests", async () => {
    const p = await pool();
    const next = await loadRealEngine({ marker: "v2" });
    const inflight = Array.from({ length: 8 }, () => p.decide(bundleInput(200)));
    const swapped = p.activate(next);
    const results = await Promise.all(inflight);
    await swapped;
    for (const r of results) expect(r.decision.decision).toBe("filter");
    const after = await p.decide(read());
    expect(after.decision).toEqual(engine.decide(read()));
    expect(p.stats().workers).toBe(2);
  });

  it("refuses with 503 before a bundle is active and after close()", async () => {
    const empty = new PolicyPool({ workers: 1 });
    expect((await empty.decide(read())).decision).toMatchObject({
      status: 503,
      reasons: [{ code: "bundle-not-loaded" }],
    });
    await empty.close();
    const p = await pool({ workers: 1 });
    const running = p.decide(bundleInput(500));
    const closing = p.close();
    expect((await running).decision.decision).toBe("filter"); // in flight: finished, not dropped
    await closing;
    expect((await p.decide(read())).decision).toMatchObject({
      status: 503,
      reasons: [{ code: "pool-closed" }],
    });
  });
});

describe("PolicyPool (inline)", () => {
  it("evaluates on the calling thread with the same results", async () => {
    const p = await pool({ mode: "inline" });
    expect((await p.decide(read())).decision).toEqual(engine.decide(read()));
    expect((await p.decideJson(JSON.stringify(read()))).decision).toEqual(engine.decide(read()));
    expect((await p.evaluate("smart/api/scopes", { scope: "patient/*.rs" })).result).toEqual(
      engine.parseScopes("patient/*.rs"),
    );
    expect(p.stats()).toMatchObject({ mode: "inline", workers: 0 });
  });
});
