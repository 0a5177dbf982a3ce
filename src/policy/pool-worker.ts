/**
 * A worker thread of the policy pool (src/policy/pool.ts). It instantiates the policy from the compiled
 * `WebAssembly.Module` it is given (no recompilation), loads the data document from JSON text, says
 * `ready`, then answers one request at a time, in order. Input and output travel as JSON text:
 * the main thread serializes once and parses once; nothing is stringified or parsed here.
 */
import { parentPort, workerData } from "node:worker_threads";
import { PolicyEngine, type EngineInit } from "./engine.js";
import { describeError } from "../core/errors.js";

/** What the pool passes as `workerData`. */
export interface WorkerInit {
  module: WebAssembly.Module;
  init: EngineInit;
  /** Time spent warming the new instance before it says ready (0: none). */
  warmupMs: number;
}

/** A request: [id, entrypoint ("" = the decision entrypoint, which never throws), input JSON text]. */
export type WorkerRequest = [id: number, entrypoint: string, json: string];

/**
 * A reply: [id, 0, result JSON text | undefined] on success, [id, 1, error message, error code]
 * when a non-decision entrypoint failed.
 */
export type WorkerReply =
  [id: number, ok: 0, text: string | undefined] | [id: number, failed: 1, message: string, code: string];

/** Sent once: the instance is ready, or it could not be built. */
export type WorkerHello =
  { type: "ready"; entrypoints: readonly string[] } | { type: "failed"; message: string; code: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("pool-worker.js must run in a worker thread");
  const { module, init, warmupMs } = workerData as WorkerInit;
  let engine: PolicyEngine;
  try {
    engine = await PolicyEngine.instantiate(module, init);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    port.postMessage({
      type: "failed",
      message: describeError(err),
      code: typeof code === "string" ? code : "BUNDLE_INVALID",
    } satisfies WorkerHello);
    return;
  }
  if (warmupMs > 0) warm(engine, warmupMs);
  port.on("message", (msg: WorkerRequest) => {
    const [id, entrypoint, json] = msg;
    if (entrypoint === "") {
      port.postMessage([id, 0, engine.decideJson(json)] satisfies WorkerReply);
      return;
    }
    try {
      port.postMessage([id, 0, engine.evaluateJson(entrypoint, json)] satisfies WorkerReply);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      port.postMessage([
        id,
        1,
        describeError(err),
        typeof code === "string" ? code : "POLICY_EVALUATION_FAILED",
      ] satisfies WorkerReply);
    }
  });
  port.postMessage({ type: "ready", entrypoints: engine.entrypoints } satisfies WorkerHello);
}

/**
 * A fresh instance is slow on its first large evaluations (the policy's heap grows page by page,
 * and V8 has not yet tiered the hot WASM functions up): a first 1,000-entry Bundle filter takes
 * several times its steady-state time. Synthetic contract inputs (one 1,000-entry searchset filter,
 * then a read, a search, a 100-entry filter and a 20-entry batch over and over) run here until `ms`
 * have passed, so that a new or replacement worker does not meet its deadline cold. Results are ignored.
 */
function warm(engine: PolicyEngine, ms: number): void {
  const claims = { scope: "patient/*.rs user/*.rs", patient: "warm-up", fhirUser: "Practitioner/warm-up" };
  const now = "2000-01-01T00:00:00Z";
  const obs = (id: string, patient: string) => ({
    resourceType: "Observation",
    id,
    status: "final",
    code: { coding: [{ system: "http://loinc.org", code: "0000-0" }] },
    subject: { reference: `Patient/${patient}` },
  });
  const searchset = (n: number) => ({
    claims,
    request: { method: "GET", url: "Observation?patient=warm-up" },
    response: {
      resourceType: "Bundle",
      type: "searchset",
      entry: Array.from({ length: n }, (_, i) => ({ resource: obs(`w${i}`, i % 4 ? "warm-up" : "other") })),
    },
    now,
  });
  const batch = {
    resourceType: "Bundle",
    type: "batch",
    entry: Array.from({ length: 20 }, (_, i) => ({ request: { method: "GET", url: `Observation/w${i}` } })),
  };
  const inputs = [
    { claims, request: { method: "GET", url: "Observation/w1" }, resource: obs("w1", "warm-up"), now },
    { claims, request: { method: "GET", url: "Observation?code=0000-0" }, now },
    searchset(100),
    { claims, request: { method: "POST", url: "", body: batch }, now },
  ].map((input) => JSON.stringify(input));
  const deadline = performance.now() + ms;
  // One large evaluation first: it grows the heap to what large Bundles need.
  engine.decideJson(JSON.stringify(searchset(1000)));
  do {
    for (const json of inputs) engine.decideJson(json);
  } while (performance.now() < deadline);
}

void main();
