/**
 * The policy engine: a thin layer over the compiled WASM policy. It loads a bundle, supplies data,
 * checks the module's builtin needs at load time, and evaluates with an object input or with input
 * that is already JSON text. Any failure inside evaluation becomes a deny (fail closed), never an
 * exception to the caller of `decide`.
 */
import { Buffer } from "node:buffer";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import type { PolicyBundle } from "./bundle.js";
import { failClosed, type Decision, type DecisionInput } from "../core/contract.js";
import { SmartAuthzError, describeError } from "../core/errors.js";

export const ENTRYPOINTS = {
  decision: "smart/api/decision",
  scopes: "smart/api/scopes",
} as const;

/** Builtins the host implements for the policy. The policy is written to need none. */
export const HOST_BUILTINS: Record<string, (...args: unknown[]) => unknown> = {};

/**
 * 64 KiB WASM pages: never beyond 256 MiB, and all of it from the start. OPA's allocator grows
 * memory one page at a time whenever an evaluation needs more, and each `memory.grow` costs
 * ~0.7 ms in Node 20 (V8 accounts the growth as external memory and collects garbage): the first
 * 4,000-entry Bundle filter took ~5 s growing to 210 MiB, 0.27 s with the memory already there
 * (docs/benchmarks.md). Untouched pages are only reserved address space, not resident memory.
 */
/** The JSON text `evaluateJson` takes for an evaluation without input. */
export const NO_INPUT = "";

export const DEFAULT_MEMORY = { initial: 4096, maximum: 4096 } as const;

export interface EngineOptions {
  /** Extra data merged over the bundle's data.json, e.g. `{ config: ... }` from the YAML config. */
  data?: Record<string, unknown>;
  memory?: { initial: number; maximum: number };
}

type LoadedPolicy = Awaited<ReturnType<typeof loadPolicy>>;

/** What a policy instance is made from, besides the module: enough to rebuild it in a worker thread. */
export interface EngineInit {
  revision: string;
  wasmSha256: string;
  /** The complete data document as JSON text (bundle data.json merged with the host's extra data). */
  dataJson: string;
  memory?: { initial: number; maximum: number };
}

/**
 * The parts of opa-wasm's LoadedPolicy (pinned 1.10.0, ABI 1.2+) that the raw-JSON fast path uses.
 * With ABI >= 1.2 one `opa_eval` call parses the input text, evaluates and dumps the result set; the
 * heap is reset to `dataHeapPtr` on every call, so nothing accumulates between evaluations.
 */
interface RawPolicy {
  wasmInstance: WebAssembly.Instance;
  mem: WebAssembly.Memory;
  dataAddr: number;
  dataHeapPtr: number;
  minorVersion: number;
  entrypoints: Record<string, number>;
}

type OpaEval = (
  reserved: number,
  entrypoint: number,
  data: number,
  input: number,
  inputLen: number,
  heap: number,
  format: number,
) => number;

const WASM_PAGE = 64 * 1024;
const RESULT_PREFIX = '[{"result":';
const RESULT_SUFFIX = "}]";

export class PolicyEngine {
  readonly revision: string;
  readonly wasmSha256: string;
  readonly entrypoints: readonly string[];
  /** The compiled module: instantiated again, without recompiling, by the worker threads of src/policy/pool.ts. */
  readonly module: WebAssembly.Module;
  readonly memory: { initial: number; maximum: number };
  private dataText: string | undefined;
  private readonly opaEval: OpaEval | undefined;

  private constructor(
    private readonly policy: LoadedPolicy,
    module: WebAssembly.Module,
    init: { revision: string; wasmSha256: string; memory: { initial: number; maximum: number } },
    private readonly dataDocument: Record<string, unknown> | undefined,
    dataJson: string | undefined,
  ) {
    this.revision = init.revision;
    this.wasmSha256 = init.wasmSha256;
    this.entrypoints = Object.keys(policy.entrypoints);
    this.module = module;
    this.memory = init.memory;
    this.dataText = dataJson;
    const raw = policy as unknown as RawPolicy;
    const fn = (raw.wasmInstance.exports as Record<string, unknown>).opa_eval;
    this.opaEval = raw.minorVersion >= 2 && typeof fn === "function" ? (fn as OpaEval) : undefined;
  }

  static async load(
    bundle: PolicyBundle,
    options: EngineOptions = {},
    module?: WebAssembly.Module,
  ): Promise<PolicyEngine> {
    const compiled = module ?? (await compileModule(bundle.wasm));
    assertBuiltinsSupplied(requiredBuiltins(compiled));
    const memory = { ...(options.memory ?? DEFAULT_MEMORY) };
    const policy = await instantiate(compiled, memory);
    const data = mergeData(bundle.data, options.data ?? {});
    policy.setData(data);
    const init = { revision: bundle.manifest.revision ?? "unknown", wasmSha256: bundle.wasmSha256, memory };
    return new PolicyEngine(policy, compiled, init, data, undefined);
  }

  /**
   * Instantiates an already compiled and checked module with data given as JSON text (no parse in
   * JavaScript): how a worker thread builds its copy of an engine from `engine.module` and `engine.init()`.
   */
  static async instantiate(module: WebAssembly.Module, init: EngineInit): Promise<PolicyEngine> {
    assertBuiltinsSupplied(requiredBuiltins(module));
    const memory = { ...(init.memory ?? DEFAULT_MEMORY) };
    const policy = await instantiate(module, memory);
    const bytes = Buffer.from(init.dataJson, "utf8");
    policy.setData(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return new PolicyEngine(policy, module, { ...init, memory }, undefined, init.dataJson);
  }

  /** Everything but the module that `PolicyEngine.instantiate` needs to build the same engine elsewhere. */
  init(): EngineInit {
    this.dataText ??= JSON.stringify(this.dataDocument ?? {});
    return {
      revision: this.revision,
      wasmSha256: this.wasmSha256,
      dataJson: this.dataText,
      memory: this.memory,
    };
  }

  /**
   * Evaluates any entrypoint; throws SmartAuthzError on failure. Input must be an object, or
   * undefined for an evaluation without input (as OPA's Data API without `input`).
   */
  evaluate(entrypoint: string, input: unknown): unknown {
    if (input === undefined) {
      const text = this.evaluateJson(entrypoint, NO_INPUT);
      return text === undefined ? undefined : JSON.parse(text);
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      throw new SmartAuthzError("INPUT_INVALID", "input must be a JSON object");
    }
    if (!this.opaEval) {
      let resultSet: unknown;
      try {
        assertWellFormed(JSON.stringify(input));
      } catch (err) {
        if (err instanceof SmartAuthzError) throw err;
        throw new SmartAuthzError("INPUT_INVALID", `input is not JSON: ${describeError(err)}`);
      }
      try {
        resultSet = this.policy.evaluate(input, entrypoint);
      } catch (err) {
        throw new SmartAuthzError(
          "POLICY_EVALUATION_FAILED",
          `policy evaluation failed: ${describeError(err)}`,
        );
      }
      if (!Array.isArray(resultSet) || resultSet.length !== 1) return undefined;
      return (resultSet[0] as { result?: unknown }).result;
    }
    let json: string;
    try {
      json = JSON.stringify(input);
    } catch (err) {
      throw new SmartAuthzError(
        "POLICY_EVALUATION_FAILED",
        `policy evaluation failed: ${describeError(err)}`,
      );
    }
    const text = this.evaluateJson(entrypoint, json);
    return text === undefined ? undefined : JSON.parse(text);
  }

  /**
   * Evaluates any entrypoint with input that is already JSON text (a JSON object) and returns the
   * result as JSON text, undefined when the policy gives no result. No JSON.stringify or JSON.parse
   * in JavaScript: the text is written straight into WASM memory and the result read straight out.
   * Throws SmartAuthzError on failure. `NO_INPUT` ("") evaluates without input.
   */
  evaluateJson(entrypoint: string, json: string): string | undefined {
    const withInput = json !== NO_INPUT;
    if (withInput && !json.trimStart().startsWith("{")) {
      throw new SmartAuthzError("INPUT_INVALID", "input must be a JSON object");
    }
    if (withInput) assertWellFormed(json);
    const opaEval = this.opaEval;
    if (!opaEval) {
      if (!withInput) return this.evaluateWithoutInput(entrypoint);
      const result = this.evaluate(entrypoint, JSON.parse(json) as unknown);
      return result === undefined ? undefined : JSON.stringify(result);
    }
    const raw = this.policy as unknown as RawPolicy;
    const id = raw.entrypoints[entrypoint];
    if (id === undefined) {
      throw new SmartAuthzError(
        "POLICY_EVALUATION_FAILED",
        `policy evaluation failed: entrypoint ${entrypoint} is not valid in this instance`,
      );
    }
    let text: string;
    try {
      const mem = raw.mem;
      const heapAddr = raw.dataHeapPtr;
      const inputLen = Buffer.byteLength(json, "utf8");
      const delta = heapAddr + inputLen - mem.buffer.byteLength;
      if (delta > 0) mem.grow(Math.ceil(delta / WASM_PAGE));
      Buffer.from(mem.buffer, heapAddr, inputLen).write(json, 0, inputLen, "utf8");
      // Without input, opa_eval takes address 0 and length 0 (as opa-wasm's own evaluate does).
      const inputAddr = withInput ? heapAddr : 0;
      const addr = opaEval(0, id, raw.dataAddr, inputAddr, inputLen, heapAddr + inputLen, 0);
      const out = Buffer.from(mem.buffer);
      const end = out.indexOf(0, addr);
      text = out.toString("utf8", addr, end < 0 ? out.length : end);
    } catch (err) {
      throw new SmartAuthzError(
        "POLICY_EVALUATION_FAILED",
        `policy evaluation failed: ${describeError(err)}`,
      );
    }
    return unwrapResultSet(text);
  }

  private evaluateWithoutInput(entrypoint: string): string | undefined {
    let resultSet: unknown;
    try {
      resultSet = this.policy.evaluate(undefined, entrypoint);
    } catch (err) {
      throw new SmartAuthzError(
        "POLICY_EVALUATION_FAILED",
        `policy evaluation failed: ${describeError(err)}`,
      );
    }
    if (!Array.isArray(resultSet) || resultSet.length !== 1) return undefined;
    const result = (resultSet[0] as { result?: unknown }).result;
    return result === undefined ? undefined : JSON.stringify(result);
  }

  /** The decision for a contract input. Never throws: every failure is a deny. */
  decide(input: DecisionInput): Decision {
    try {
      const result = this.evaluate(ENTRYPOINTS.decision, input);
      if (isDecision(result)) return result;
      return failClosed("policy-undefined", "the policy produced no decision for this input");
    } catch (err) {
      return decisionFromError(err);
    }
  }

  /**
   * The decision document as JSON text for a contract input given as JSON text, for hosts that
   * forward it without looking inside (worker threads). Never throws: a failure is a deny's text.
   * Check it with `parseDecision` before acting on it.
   */
  decideJson(json: string): string {
    try {
      return this.evaluateJson(ENTRYPOINTS.decision, json) ?? JSON.stringify(policyUndefined());
    } catch (err) {
      return JSON.stringify(decisionFromError(err));
    }
  }

  parseScopes(scope: string): unknown {
    return this.evaluate(ENTRYPOINTS.scopes, { scope });
  }
}

async function instantiate(
  module: WebAssembly.Module,
  memory: { initial: number; maximum: number },
): Promise<LoadedPolicy> {
  let policy: LoadedPolicy;
  try {
    policy = await loadPolicy(module, { ...memory }, HOST_BUILTINS);
  } catch (err) {
    throw new SmartAuthzError("BUNDLE_INVALID", `cannot instantiate policy.wasm: ${describeError(err)}`);
  }
  for (const name of Object.values(ENTRYPOINTS)) {
    if (!Object.prototype.hasOwnProperty.call(policy.entrypoints, name)) {
      throw new SmartAuthzError("BUNDLE_INVALID", `policy.wasm lacks the entrypoint ${name}`);
    }
  }
  return policy;
}

/**
 * A `\\uXXXX` escape of a UTF-16 surrogate in JSON text, with the escape itself unescaped (an even
 * run of backslashes before it). JSON.stringify escapes exactly the lone surrogates this way.
 */
const SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2}|d[c-f][0-9a-f]{2})/gi;

/**
 * Refuses JSON text holding a string that is not well-formed UTF-16 (a lone surrogate written as
 * an escape): valid JSON, but OPA's WASM JSON reader rejects it ("illegal string escape
 * character"). That is input the policy cannot even read, so the client's error (400
 * `input-invalid`), not a policy error. A high surrogate escape directly followed by a low one is a
 * well-formed pair. Raw (unescaped) lone surrogates cannot occur in a JS string written as UTF-8.
 */
export function assertWellFormed(json: string): void {
  if (json.indexOf("\\u") === -1) return;
  SURROGATE_ESCAPE.lastIndex = 0;
  let pendingHighEnd = -1;
  for (let m = SURROGATE_ESCAPE.exec(json); m; m = SURROGATE_ESCAPE.exec(json)) {
    const start = m.index + (m[1]?.length ?? 0);
    const unit = parseInt(m[2]!, 16);
    const high = unit < 0xdc00;
    if (pendingHighEnd !== -1) {
      if (!high && start === pendingHighEnd) {
        pendingHighEnd = -1;
        continue;
      }
      throw loneSurrogate(json, pendingHighEnd - 6);
    }
    if (high) pendingHighEnd = start + 6;
    else throw loneSurrogate(json, start);
  }
  if (pendingHighEnd !== -1) throw loneSurrogate(json, pendingHighEnd - 6);
}

function loneSurrogate(json: string, offset: number): SmartAuthzError {
  return new SmartAuthzError(
    "INPUT_INVALID",
    `the input holds a string that is not well-formed Unicode: lone surrogate ${json.slice(offset, offset + 6)} at offset ${offset}`,
  );
}

/** `[{"result":X}]` -> X, `[]` -> undefined, without parsing X. */
function unwrapResultSet(text: string): string | undefined {
  if (text.startsWith(RESULT_PREFIX) && text.endsWith(RESULT_SUFFIX)) {
    return text.slice(RESULT_PREFIX.length, text.length - RESULT_SUFFIX.length);
  }
  const resultSet = JSON.parse(text) as unknown;
  if (!Array.isArray(resultSet) || resultSet.length !== 1) return undefined;
  const result = (resultSet[0] as { result?: unknown }).result;
  return result === undefined ? undefined : JSON.stringify(result);
}

function decisionFromError(err: unknown): Decision {
  const code =
    err instanceof SmartAuthzError && err.code === "INPUT_INVALID" ? "input-invalid" : "policy-error";
  return failClosed(code, describeError(err), code === "input-invalid" ? 400 : 500);
}

function policyUndefined(): Decision {
  return failClosed("policy-undefined", "the policy produced no decision for this input");
}

/**
 * A decision document from its JSON text (what `decideJson` and worker threads return), checked:
 * anything that is not a decision becomes a fail-closed deny. Never throws.
 */
export function parseDecision(text: string | undefined): Decision {
  if (text === undefined) return policyUndefined();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return failClosed("policy-error", `the policy result is not JSON: ${describeError(err)}`);
  }
  return isDecision(value) ? value : policyUndefined();
}

export async function compileModule(wasm: Uint8Array): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(new Uint8Array(wasm));
  } catch (err) {
    throw new SmartAuthzError(
      "BUNDLE_INVALID",
      `policy.wasm is not a valid WebAssembly module: ${describeError(err)}`,
    );
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
