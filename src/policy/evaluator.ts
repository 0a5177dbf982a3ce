/**
 * The one place where policy evaluation happens, behind an async interface so that a worker pool
 * (pool.ts) and the in-thread engine are interchangeable for the HTTP API and the proxy.
 */
import { failClosed, type Decision, type DecisionInput } from "../core/contract.js";
import { SmartAuthzError } from "../core/errors.js";
import type { PolicyEngine } from "./engine.js";

/**
 * The ONE place where policy evaluation happens. Async so that a worker pool can replace the
 * in-thread engine without touching the HTTP layer.
 */
export interface Evaluator {
  decide(input: DecisionInput): Promise<{ decision: Decision; revision: string | undefined }>;
  /** Any entrypoint; `input` is an object, or undefined to evaluate without input. */
  evaluate(entrypoint: string, input: unknown): Promise<{ result: unknown; revision: string | undefined }>;
  entrypoints(): readonly string[];
  revision(): string | undefined;
}

/** Evaluates in this thread with whatever engine `current()` returns (the last good bundle). */
export function engineEvaluator(current: () => PolicyEngine | undefined): Evaluator {
  return {
    async decide(input) {
      const engine = current();
      if (!engine) {
        return {
          decision: failClosed("bundle-not-loaded", "no policy bundle is active yet", 503),
          revision: undefined,
        };
      }
      return { decision: engine.decide(input), revision: engine.revision };
    },
    async evaluate(entrypoint, input) {
      const engine = current();
      if (!engine) throw new SmartAuthzError("BUNDLE_UNAVAILABLE", "no policy bundle is active yet");
      return { result: engine.evaluate(entrypoint, input), revision: engine.revision };
    },
    entrypoints: () => current()?.entrypoints ?? [],
    revision: () => current()?.revision,
  };
}
