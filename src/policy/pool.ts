/**
 * Where policy evaluation runs: a pool of worker threads that all instantiate ONE compiled
 * `WebAssembly.Module` (compiled once on the main thread, handed to each worker through
 * `workerData`, never recompiled), or inline on the calling thread.
 *
 * Evaluation is synchronous WASM: inline, a slow decision blocks the event loop and nothing can
 * interrupt it. In a worker it can be: every evaluation has a deadline (`timeoutMs`, default 500 ms, counted from
 * the moment the worker starts on it); past it the worker is terminated and replaced and the caller
 * gets a fail-closed deny (status 500, reason `policy-timeout`). The queue in front of the workers
 * is bounded; when it is full a request is refused at once with a fail-closed deny (status 503,
 * reason `policy-overloaded`) instead of queueing without limit.
 *
 * Input goes to a worker as JSON text (one JSON.stringify on the main thread, none in the worker:
 * the text is written straight into WASM memory) and comes back as JSON text (parsed once, on the
 * main thread, and checked: anything that is not a decision is a deny).
 *
 * `activate(engine)` hot-swaps to a new bundle: a new set of workers is started from the new module;
 * once they are all ready new requests go to them, while requests already running on the old
 * workers finish there (and report the old revision); the old workers are then terminated.
 *
 * The pool implements the HTTP layer's `Evaluator` interface, so it replaces `engineEvaluator`.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker, type ResourceLimits } from "node:worker_threads";
import { failClosed, type Decision, type DecisionInput } from "../core/contract.js";
import { NO_INPUT, assertWellFormed, parseDecision, type EngineInit, type PolicyEngine } from "./engine.js";
import { SmartAuthzError, describeError, type ErrorCode } from "../core/errors.js";
import type { Evaluator } from "./evaluator.js";
import type { WorkerHello, WorkerInit, WorkerReply, WorkerRequest } from "./pool-worker.js";

export type PoolMode = "inline" | "workers";

/**
 * The default mode. Measured on the 2-core reference machine (docs/benchmarks.md): see there for
 * the figures behind this choice.
 */
export const DEFAULT_POOL_MODE: PoolMode = "workers";

/**
 * The default deadline of one evaluation. It must sit well above the slowest legitimate decision:
 * at the default 1 MiB body limit the largest searchset (~3,800 Observations) takes ~150 ms to
 * filter on the 2-core reference machine (docs/benchmarks.md), more on a loaded machine.
 */
export const DEFAULT_TIMEOUT_MS = 500;

export interface PoolOptions {
  /** "workers" (default) or "inline" (no deadline can be enforced inline). */
  mode?: PoolMode;
  /** Worker threads; default: the number of available cores. */
  workers?: number;
  /** Deadline of one evaluation in a worker, ms (default 500: see DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Requests waiting for a worker, at most (default 1024); beyond it requests are refused. */
  maxQueue?: number;
  /** Requests handed to one worker at a time (default 2: the next one is ready when one finishes). */
  pipeline?: number;
  /** Time a new worker spends warming its instance up on synthetic inputs before it takes requests, ms (default 250; 0: none). */
  warmupMs?: number;
  /** Deadline for a worker to instantiate the policy, ms (default 30 000). */
  startTimeoutMs?: number;
  /** V8 heap limits of each worker (default: 256 MiB old generation). WASM memory is bounded by the engine. */
  resourceLimits?: ResourceLimits;
  /** The worker script (default: pool-worker.js next to this file, or dist/src/ when run from sources). */
  workerUrl?: URL;
  /** Told about timeouts, crashes and replacements (e.g. to log them). */
  onEvent?: (event: PoolEvent) => void;
}

export type PoolEvent =
  | { type: "timeout"; revision: string; elapsedMs: number }
  | { type: "worker-crashed"; revision: string; message: string }
  | { type: "worker-replaced"; revision: string }
  | { type: "worker-start-failed"; revision: string; message: string }
  | { type: "activated"; revision: string; previous: string | undefined; startMs: number };

export interface PoolStats {
  mode: PoolMode;
  revision: string | undefined;
  workers: number;
  busy: number;
  queued: number;
  completed: number;
  timeouts: number;
  overloaded: number;
  crashes: number;
  replacements: number;
}

/** An evaluation that did not produce a result: what `evaluate` throws and `decide` turns into a deny. */
export class PoolError extends SmartAuthzError {
  constructor(
    /** The deny's reason code: policy-timeout, policy-overloaded, bundle-not-loaded, pool-closed, ... */
    readonly reason: string,
    /** The HTTP status of the deny. */
    readonly status: number,
    message: string,
    code: ErrorCode = "POLICY_EVALUATION_FAILED",
  ) {
    super(code, message);
    this.name = "PoolError";
  }
}

type Outcome = { ok: true; text: string | undefined } | { ok: false; error: SmartAuthzError };

interface Job {
  id: number;
  /** "" is the decision entrypoint (`decideJson` in the worker: never fails). */
  entrypoint: string;
  json: string;
  done(outcome: Outcome, revision: string | undefined): void;
}

interface Generation {
  engine: PolicyEngine;
  init: EngineInit;
  revision: string;
  entrypoints: readonly string[];
  slots: Slot[];
  /** Workers being (re)started. */
  starting: number;
  retired: boolean;
  retiredDone?: () => void;
}

interface Slot {
  worker: Worker;
  gen: Generation;
  inflight: Job[];
  /** When the head of `inflight` started, as far as this thread can tell. */
  headStart: number;
  timer: NodeJS.Timeout | undefined;
  dead: boolean;
}

export class PolicyPool implements Evaluator {
  readonly mode: PoolMode;
  readonly size: number;
  readonly timeoutMs: number;
  readonly maxQueue: number;
  readonly pipeline: number;
  private readonly startTimeoutMs: number;
  private readonly warmupMs: number;
  private readonly resourceLimits: ResourceLimits;
  private readonly workerUrl: URL | undefined;
  private readonly onEvent: ((event: PoolEvent) => void) | undefined;
  private current: Generation | undefined;
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private activating: Promise<void> = Promise.resolve();
  private drained: (() => void) | undefined;
  private readonly counters = {
    completed: 0,
    timeouts: 0,
    overloaded: 0,
    crashes: 0,
    replacements: 0,
  };

  constructor(options: PoolOptions = {}) {
    let mode = options.mode ?? DEFAULT_POOL_MODE;
    let workerUrl = options.workerUrl;
    if (mode === "workers" && !workerUrl) {
      workerUrl = defaultWorkerUrl();
      // Run from TypeScript sources before `make build` (e.g. a bare `npx vitest run` on a fresh
      // clone): without the compiled worker the default falls back to inline; an explicit mode throws.
      if (!workerUrl && options.mode === undefined) mode = "inline";
      else if (!workerUrl) throw missingWorker();
    }
    this.mode = mode;
    this.size = Math.max(1, Math.floor(options.workers ?? availableParallelism()));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxQueue = Math.max(0, Math.floor(options.maxQueue ?? 1024));
    this.pipeline = Math.max(1, Math.floor(options.pipeline ?? 2));
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.warmupMs = Math.max(0, options.warmupMs ?? 250);
    this.resourceLimits = options.resourceLimits ?? { maxOldGenerationSizeMb: 256 };
    this.workerUrl = this.mode === "workers" ? workerUrl : undefined;
    this.onEvent = options.onEvent;
  }

  /** A pool serving `engine` once its workers are ready. */
  static async create(engine: PolicyEngine, options: PoolOptions = {}): Promise<PolicyPool> {
    const pool = new PolicyPool(options);
    try {
      await pool.activate(engine);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /**
   * Serves `engine` from now on. In workers mode new workers are started from `engine.module`;
   * requests go to them once all are ready; requests running on the previous workers finish there.
   * Rejects (and keeps serving the previous engine) if the new workers cannot start.
   */
  activate(engine: PolicyEngine): Promise<void> {
    const next = this.activating.then(() => this.swap(engine));
    this.activating = next.catch(() => undefined);
    return next;
  }

  revision(): string | undefined {
    return this.current?.revision;
  }

  entrypoints(): readonly string[] {
    return this.current?.entrypoints ?? [];
  }

  stats(): PoolStats {
    const slots = this.current?.slots ?? [];
    return {
      mode: this.mode,
      revision: this.current?.revision,
      workers: slots.length,
      busy: slots.filter((s) => s.inflight.length > 0).length,
      queued: this.queue.length,
      ...this.counters,
    };
  }

  /** The decision for a contract input. Never rejects: every failure is a fail-closed deny. */
  async decide(input: DecisionInput): Promise<{ decision: Decision; revision: string | undefined }> {
    const gen = this.current;
    if (this.mode === "inline" && gen && !this.closed) {
      this.counters.completed++;
      return { decision: gen.engine.decide(input), revision: gen.revision };
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      return {
        decision: failClosed("input-invalid", "input must be a JSON object", 400),
        revision: gen?.revision,
      };
    }
    let json: string;
    try {
      json = JSON.stringify(input);
    } catch (err) {
      return { decision: failClosed("input-invalid", describeError(err), 400), revision: gen?.revision };
    }
    return this.decideJson(json);
  }

  /**
   * The decision for a contract input that is already JSON text (e.g. forwarded from a request
   * body). Never rejects: every failure is a fail-closed deny.
   */
  decideJson(json: string): Promise<{ decision: Decision; revision: string | undefined }> {
    return new Promise((resolve) => {
      this.submit("", json, (outcome, revision) => {
        const decision = outcome.ok
          ? parseDecision(outcome.text)
          : outcome.error instanceof PoolError
            ? failClosed(outcome.error.reason, outcome.error.message, outcome.error.status)
            : outcome.error.code === "INPUT_INVALID"
              ? failClosed("input-invalid", outcome.error.message, 400)
              : failClosed("policy-error", outcome.error.message);
        resolve({ decision, revision });
      });
    });
  }

  /**
   * Any entrypoint, object input (undefined: none). Rejects with SmartAuthzError when evaluation fails, and with a
   * PoolError (carrying `status` and `reason`) on timeout, overload, or when no bundle is active.
   */
  async evaluate(
    entrypoint: string,
    input: unknown,
  ): Promise<{ result: unknown; revision: string | undefined }> {
    const gen = this.current;
    if (this.mode === "inline" && gen && !this.closed) {
      return { result: gen.engine.evaluate(entrypoint, input), revision: gen.revision };
    }
    if (input !== undefined && (typeof input !== "object" || input === null || Array.isArray(input))) {
      throw new SmartAuthzError("INPUT_INVALID", "input must be a JSON object");
    }
    const json = input === undefined ? NO_INPUT : JSON.stringify(input);
    const { text, revision } = await this.evaluateJson(entrypoint, json);
    return { result: text === undefined ? undefined : (JSON.parse(text) as unknown), revision };
  }

  /** Any entrypoint, input and result as JSON text (result undefined when the policy gives none). */
  evaluateJson(
    entrypoint: string,
    json: string,
  ): Promise<{ text: string | undefined; revision: string | undefined }> {
    if (entrypoint === "") {
      return Promise.reject(new SmartAuthzError("POLICY_EVALUATION_FAILED", "no entrypoint given"));
    }
    return new Promise((resolve, reject) => {
      this.submit(entrypoint, json, (outcome, revision) => {
        if (outcome.ok) resolve({ text: outcome.text, revision });
        else reject(outcome.error);
      });
    });
  }

  /**
   * Stops taking requests (they get a 503 deny, reason `pool-closed`), lets queued and running
   * ones finish (each still bounded by its deadline), then terminates the workers. Idempotent.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.activating;
    if (this.busy()) await new Promise<void>((resolve) => (this.drained = resolve));
    const gen = this.current;
    this.current = undefined;
    if (gen) await this.retire(gen);
  }

  // --- internals -------------------------------------------------------------------------

  private submit(entrypoint: string, json: string, done: Job["done"]): void {
    const gen = this.current;
    if (this.closed) {
      done(
        { ok: false, error: new PoolError("pool-closed", 503, "the policy pool is closed") },
        gen?.revision,
      );
      return;
    }
    if (!gen) {
      done(
        { ok: false, error: new PoolError("bundle-not-loaded", 503, "no policy bundle is active yet") },
        undefined,
      );
      return;
    }
    if (this.mode === "inline") {
      done(runInline(gen.engine, entrypoint, json), gen.revision);
      this.counters.completed++;
      return;
    }
    try {
      // Input the policy's JSON reader would reject is the client's error, found before a worker is busy.
      assertWellFormed(json);
    } catch (err) {
      done({ ok: false, error: err as SmartAuthzError }, gen.revision);
      return;
    }
    const job: Job = { id: this.nextId++, entrypoint, json, done };
    if (this.queue.length === 0) {
      const slot = this.pick(gen);
      if (slot) {
        this.send(slot, job);
        return;
      }
      if (gen.slots.length === 0 && gen.starting === 0) {
        done(
          { ok: false, error: new PoolError("policy-unavailable", 503, "no policy worker is running") },
          gen.revision,
        );
        return;
      }
    }
    if (this.queue.length >= this.maxQueue) {
      this.counters.overloaded++;
      done(
        {
          ok: false,
          error: new PoolError(
            "policy-overloaded",
            503,
            `the policy evaluation queue is full (${this.maxQueue} waiting); try again`,
          ),
        },
        gen.revision,
      );
      return;
    }
    this.queue.push(job);
  }

  /** The least busy live worker of `gen` that can take one more request. */
  private pick(gen: Generation): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of gen.slots) {
      const n = slot.inflight.length;
      if (n === 0) return slot;
      if (n < this.pipeline && (!best || n < best.inflight.length)) best = slot;
    }
    return best;
  }

  private send(slot: Slot, job: Job): void {
    slot.inflight.push(job);
    if (slot.inflight.length === 1) {
      slot.headStart = performance.now();
      this.arm(slot, this.timeoutMs);
    }
    slot.worker.postMessage([job.id, job.entrypoint, job.json] satisfies WorkerRequest);
  }

  private pump(): void {
    const gen = this.current;
    if (!gen) return;
    while (this.queue.length > 0) {
      const slot = this.pick(gen);
      if (!slot) break;
      this.send(slot, this.queue.shift() as Job);
    }
    if (this.drained && !this.busy()) {
      const drained = this.drained;
      this.drained = undefined;
      drained();
    }
  }

  private busy(): boolean {
    if (this.queue.length > 0) return true;
    return (this.current?.slots ?? []).some((s) => s.inflight.length > 0);
  }

  private arm(slot: Slot, ms: number): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.onTimer(slot), Math.max(1, ms));
    slot.timer.unref();
  }

  private onTimer(slot: Slot): void {
    slot.timer = undefined;
    if (slot.dead || slot.inflight.length === 0) return;
    const elapsed = performance.now() - slot.headStart;
    if (elapsed < this.timeoutMs) {
      this.arm(slot, this.timeoutMs - elapsed);
      return;
    }
    this.counters.timeouts++;
    this.onEvent?.({ type: "timeout", revision: slot.gen.revision, elapsedMs: elapsed });
    this.kill(
      slot,
      new PoolError(
        "policy-timeout",
        500,
        `policy evaluation exceeded its ${this.timeoutMs} ms deadline; the evaluation was stopped`,
      ),
    );
  }

  private onReply(slot: Slot, msg: WorkerReply): void {
    const job = slot.inflight.shift();
    if (!job || job.id !== msg[0]) {
      // Cannot happen with an in-order worker; if it does, trust nothing from this worker.
      if (job) slot.inflight.unshift(job);
      this.kill(slot, new PoolError("policy-error", 500, "policy worker protocol error"));
      return;
    }
    if (slot.inflight.length > 0) {
      slot.headStart = performance.now();
      if (!slot.timer) this.arm(slot, this.timeoutMs);
    } else if (slot.timer) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    this.counters.completed++;
    const outcome: Outcome =
      msg[1] === 0
        ? { ok: true, text: msg[2] }
        : { ok: false, error: new SmartAuthzError(asErrorCode(msg[3]), msg[2]) };
    job.done(outcome, slot.gen.revision);
    if (slot.gen.retired) {
      if (slot.inflight.length === 0) this.stop(slot);
    } else {
      this.pump();
    }
  }

  /** Terminates a worker that timed out or crashed: its head request fails, the others are requeued. */
  private kill(slot: Slot, error: SmartAuthzError): void {
    if (slot.dead) return;
    const [head, ...rest] = slot.inflight;
    slot.inflight = [];
    this.stop(slot);
    head?.done({ ok: false, error }, slot.gen.revision);
    if (this.closed || slot.gen.retired) {
      for (const job of rest) {
        job.done(
          { ok: false, error: new PoolError("pool-closed", 503, "the policy pool is closed") },
          undefined,
        );
      }
    } else {
      this.queue.unshift(...rest);
    }
    if (!slot.gen.retired && !this.closed) this.replace(slot.gen);
    else if (slot.gen.slots.length === 0)
      this.failQueued(slot.gen, "pool-closed", "the policy pool is closed");
    this.pump();
  }

  private stop(slot: Slot): void {
    slot.dead = true;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    const i = slot.gen.slots.indexOf(slot);
    if (i >= 0) slot.gen.slots.splice(i, 1);
    void slot.worker.terminate().catch(() => undefined);
    if (slot.gen.retired && slot.gen.slots.length === 0) slot.gen.retiredDone?.();
  }

  private replace(gen: Generation, attempt = 0): void {
    gen.starting++;
    this.startSlot(gen).then(
      (slot) => {
        gen.starting--;
        if (gen.retired || this.closed) {
          this.stop(slot);
          return;
        }
        gen.slots.push(slot);
        this.counters.replacements++;
        this.onEvent?.({ type: "worker-replaced", revision: gen.revision });
        this.pump();
      },
      (err: unknown) => {
        gen.starting--;
        this.onEvent?.({ type: "worker-start-failed", revision: gen.revision, message: describeError(err) });
        if (gen.retired || this.closed) return;
        if (gen.slots.length === 0 && gen.starting === 0) {
          this.failQueued(gen, "policy-unavailable", "no policy worker is running");
        }
        const delay = Math.min(5000, 100 * 2 ** attempt);
        setTimeout(() => {
          if (!gen.retired && !this.closed) this.replace(gen, attempt + 1);
        }, delay).unref();
      },
    );
  }

  private failQueued(gen: Generation, reason: string, message: string): void {
    const jobs = this.queue.splice(0);
    for (const job of jobs) job.done({ ok: false, error: new PoolError(reason, 503, message) }, gen.revision);
  }

  private async swap(engine: PolicyEngine): Promise<void> {
    if (this.closed) throw new PoolError("pool-closed", 503, "the policy pool is closed");
    const started = performance.now();
    const gen: Generation = {
      engine,
      init:
        this.mode === "workers"
          ? engine.init()
          : { revision: engine.revision, wasmSha256: engine.wasmSha256, dataJson: "" },
      revision: engine.revision,
      entrypoints: engine.entrypoints,
      slots: [],
      starting: 0,
      retired: false,
    };
    if (this.mode === "workers") {
      gen.starting = this.size;
      const results = await Promise.allSettled(Array.from({ length: this.size }, () => this.startSlot(gen)));
      gen.starting = 0;
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      for (const r of results) if (r.status === "fulfilled") gen.slots.push(r.value);
      if (failed || this.closed) {
        gen.retired = true;
        for (const slot of [...gen.slots]) this.stop(slot);
        if (failed) {
          throw failed.reason instanceof SmartAuthzError
            ? failed.reason
            : new SmartAuthzError("BUNDLE_INVALID", describeError(failed.reason));
        }
        throw new PoolError("pool-closed", 503, "the policy pool is closed");
      }
    }
    const previous = this.current;
    this.current = gen;
    this.onEvent?.({
      type: "activated",
      revision: gen.revision,
      previous: previous?.revision,
      startMs: performance.now() - started,
    });
    this.pump();
    if (previous) void this.retire(previous);
  }

  /** Lets a generation's running requests finish, then terminates its workers. */
  private retire(gen: Generation): Promise<void> {
    gen.retired = true;
    const done = new Promise<void>((resolve) => {
      gen.retiredDone = resolve;
    });
    for (const slot of [...gen.slots]) if (slot.inflight.length === 0) this.stop(slot);
    if (gen.slots.length === 0) gen.retiredDone?.();
    return done;
  }

  private startSlot(gen: Generation): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      let worker: Worker;
      try {
        worker = new Worker(this.workerUrl as URL, {
          workerData: {
            module: gen.engine.module,
            init: gen.init,
            warmupMs: this.warmupMs,
          } satisfies WorkerInit,
          resourceLimits: this.resourceLimits,
        });
      } catch (err) {
        reject(new SmartAuthzError("BUNDLE_INVALID", `cannot start a policy worker: ${describeError(err)}`));
        return;
      }
      const slot: Slot = { worker, gen, inflight: [], headStart: 0, timer: undefined, dead: false };
      let ready = false;
      const startTimer = setTimeout(() => {
        fail(
          new SmartAuthzError(
            "BUNDLE_INVALID",
            `a policy worker did not start within ${this.startTimeoutMs} ms`,
          ),
        );
      }, this.startTimeoutMs);
      startTimer.unref();
      const fail = (err: SmartAuthzError) => {
        if (ready) return;
        ready = true;
        clearTimeout(startTimer);
        slot.dead = true;
        void worker.terminate().catch(() => undefined);
        reject(err);
      };
      worker.on("message", (msg: WorkerReply | WorkerHello) => {
        if (Array.isArray(msg)) {
          this.onReply(slot, msg);
          return;
        }
        if (msg.type === "ready") {
          ready = true;
          clearTimeout(startTimer);
          resolve(slot);
        } else {
          fail(new SmartAuthzError(asErrorCode(msg.code), `policy worker: ${msg.message}`));
        }
      });
      const crashed = (message: string) => {
        if (!ready) {
          fail(new SmartAuthzError("BUNDLE_INVALID", `policy worker failed to start: ${message}`));
          return;
        }
        if (slot.dead) return;
        this.counters.crashes++;
        this.onEvent?.({ type: "worker-crashed", revision: gen.revision, message });
        this.kill(slot, new PoolError("policy-error", 500, `policy worker crashed: ${message}`));
      };
      worker.on("error", (err) => crashed(describeError(err)));
      worker.on("exit", (code) => crashed(`exited with code ${code}`));
    });
  }
}

function runInline(engine: PolicyEngine, entrypoint: string, json: string): Outcome {
  if (entrypoint === "") return { ok: true, text: engine.decideJson(json) };
  try {
    return { ok: true, text: engine.evaluateJson(entrypoint, json) };
  } catch (err) {
    return {
      ok: false,
      error:
        err instanceof SmartAuthzError
          ? err
          : new SmartAuthzError("POLICY_EVALUATION_FAILED", describeError(err)),
    };
  }
}

const ERROR_CODES: readonly ErrorCode[] = [
  "BUNDLE_INVALID",
  "BUNDLE_MISSING_BUILTIN",
  "BUNDLE_SIGNATURE_INVALID",
  "BUNDLE_UNAVAILABLE",
  "POLICY_EVALUATION_FAILED",
  "INPUT_INVALID",
  "CONFIG_INVALID",
  "TOKEN_INVALID",
  "AUDIT_WRITE_FAILED",
];

function asErrorCode(code: string): ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : "POLICY_EVALUATION_FAILED";
}

/** pool-worker.js next to this module, or the compiled one under dist/ when running from TypeScript sources. */
function defaultWorkerUrl(): URL | undefined {
  const sibling = new URL("./pool-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL("../../dist/src/policy/pool-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  return undefined;
}

function missingWorker(): SmartAuthzError {
  const sibling = fileURLToPath(new URL("./pool-worker.js", import.meta.url));
  return new SmartAuthzError(
    "CONFIG_INVALID",
    `the policy worker script is missing (${sibling}): run \`make build\``,
  );
}
