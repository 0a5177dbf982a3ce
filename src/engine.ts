/**
 * The policy engine: a thin layer over the compiled WASM policy. It loads a bundle, supplies data,
 * checks the module's builtin needs at load time, and evaluates with an object input. Any failure
 * inside evaluation becomes a deny (fail closed), never an exception to the caller.
 */
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import type { PolicyBundle } from "./bundle.js";
import type { Decision, DecisionInput } from "./contract.js";
import { SmartAuthzError, describeError } from "./errors.js";

export const ENTRYPOINTS = {
  decision: "smart/api/decision",
  scopes: "smart/api/scopes",
} as const;

/** Builtins the host implements for the policy. The policy is written to need none. */
export const HOST_BUILTINS: Record<string, (...args: unknown[]) => unknown> = {};

/** 64 KiB WASM pages: start at 2 MiB, never beyond 256 MiB. */
export const DEFAULT_MEMORY = { initial: 32, maximum: 4096 } as const;

export interface EngineOptions {
  /** Extra data merged over the bundle's data.json, e.g. `{ config: ... }` from the YAML config. */
  data?: Record<string, unknown>;
  memory?: { initial: number; maximum: number };
}

type LoadedPolicy = Awaited<ReturnType<typeof loadPolicy>>;

export class PolicyEngine {
  readonly revision: string;
  readonly wasmSha256: string;
  readonly entrypoints: readonly string[];

  private constructor(
    private readonly policy: LoadedPolicy,
    bundle: PolicyBundle,
  ) {
    this.revision = bundle.manifest.revision ?? "unknown";
    this.wasmSha256 = bundle.wasmSha256;
    this.entrypoints = Object.keys(policy.entrypoints);
  }

  static async load(
    bundle: PolicyBundle,
    options: EngineOptions = {},
    module?: WebAssembly.Module,
  ): Promise<PolicyEngine> {
    const compiled = module ?? (await compileModule(bundle.wasm));
    assertBuiltinsSupplied(requiredBuiltins(compiled));
    let policy: LoadedPolicy;
    try {
      policy = await loadPolicy(compiled, { ...(options.memory ?? DEFAULT_MEMORY) }, HOST_BUILTINS);
    } catch (err) {
      throw new SmartAuthzError("BUNDLE_INVALID", `cannot instantiate policy.wasm: ${describeError(err)}`);
    }
    for (const name of Object.values(ENTRYPOINTS)) {
      if (!Object.prototype.hasOwnProperty.call(policy.entrypoints, name)) {
        throw new SmartAuthzError("BUNDLE_INVALID", `policy.wasm lacks the entrypoint ${name}`);
      }
    }
    policy.setData(mergeData(bundle.data, options.data ?? {}));
    return new PolicyEngine(policy, bundle);
  }

  /** Evaluates any entrypoint; throws SmartAuthzError on failure. Input must be an object. */
  evaluate(entrypoint: string, input: unknown): unknown {
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      throw new SmartAuthzError("INPUT_INVALID", "input must be a JSON object");
    }
    let resultSet: unknown;
    try {
      resultSet = this.policy.evaluate(input, entrypoint);
    } catch (err) {
      throw new SmartAuthzError("POLICY_EVALUATION_FAILED", `policy evaluation failed: ${describeError(err)}`);
    }
    if (!Array.isArray(resultSet) || resultSet.length !== 1) return undefined;
    return (resultSet[0] as { result?: unknown }).result;
  }

  /** The decision for a contract input. Never throws: every failure is a deny. */
  decide(input: DecisionInput): Decision {
    try {
      const result = this.evaluate(ENTRYPOINTS.decision, input);
      if (isDecision(result)) return result;
      return failClosed("policy-undefined", "the policy produced no decision for this input");
    } catch (err) {
      const code = err instanceof SmartAuthzError && err.code === "INPUT_INVALID" ? "input-invalid" : "policy-error";
      return failClosed(code, describeError(err), code === "input-invalid" ? 400 : 500);
    }
  }

  parseScopes(scope: string): unknown {
    return this.evaluate(ENTRYPOINTS.scopes, { scope });
  }
}

export async function compileModule(wasm: Uint8Array): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(new Uint8Array(wasm));
  } catch (err) {
    throw new SmartAuthzError("BUNDLE_INVALID", `policy.wasm is not a valid WebAssembly module: ${describeError(err)}`);
  }
}

/** Names of the non-native builtins the module imports through `opa_builtinN`, read from its `builtins()` export. */
export function requiredBuiltins(module: WebAssembly.Module): string[] {
  const memory = new WebAssembly.Memory({ initial: 32 });
  const fail = () => {
    throw new Error("builtin called while listing builtins");
  };
  const imports: WebAssembly.Imports = {
    env: {
      memory,
      opa_abort: fail,
      opa_println: () => 0,
      opa_builtin0: fail,
      opa_builtin1: fail,
      opa_builtin2: fail,
      opa_builtin3: fail,
      opa_builtin4: fail,
    },
  };
  const exports = new WebAssembly.Instance(module, imports).exports as Record<string, CallableFunction>;
  const dump = exports.opa_json_dump as (addr: number) => number;
  const list = exports.builtins as () => number;
  const start = dump(list());
  const bytes = new Uint8Array(memory.buffer);
  let end = start;
  while (bytes[end] !== 0) end++;
  return Object.keys(JSON.parse(new TextDecoder().decode(bytes.subarray(start, end))) as object).sort();
}

export function assertBuiltinsSupplied(needed: string[], supplied = HOST_BUILTINS): void {
  const missing = needed.filter((name) => !(name in supplied));
  if (missing.length > 0) {
    throw new SmartAuthzError(
      "BUNDLE_MISSING_BUILTIN",
      `policy.wasm needs builtins this host does not implement: ${missing.join(", ")}`,
      { missing },
    );
  }
}

function mergeData(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  return { ...base, ...extra };
}

function isDecision(value: unknown): value is Decision {
  if (typeof value !== "object" || value === null) return false;
  const d = (value as { decision?: unknown }).decision;
  return d === "allow" || d === "deny" || d === "filter";
}

/** The deny a host returns when the policy itself could not decide. */
export function failClosed(code: string, message: string, status = 500): Decision {
  return {
    decision: "deny",
    status,
    reasons: [{ code, message }],
    outcome: {
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: status === 400 ? "invalid" : "exception", diagnostics: message }],
    },
  };
}
