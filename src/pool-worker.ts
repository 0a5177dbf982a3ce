/**
 * A worker thread of the policy pool (src/pool.ts). It instantiates the policy from the compiled
 * `WebAssembly.Module` it is given (no recompilation), loads the data document from JSON text, says
 * `ready`, then answers one request at a time, in order. Input and output travel as JSON text:
 * the main thread serializes once and parses once; nothing is stringified or parsed here.
 */
import { parentPort, workerData } from "node:worker_threads";
import { PolicyEngine, type EngineInit } from "./engine.js";
import { describeError } from "./errors.js";

/** What the pool passes as `workerData`. */
export interface WorkerInit {
  module: WebAssembly.Module;
  init: EngineInit;
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
  const { module, init } = workerData as WorkerInit;
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

void main();
