// In-process benchmarks of the WASM host (run by run.mjs in a child process; prints JSON):
//  - per case of the mix: decisions/s and latency percentiles of PolicyEngine.decide (object in, object out),
//    and of the opa-wasm library call it replaced (LoadedPolicy.evaluate), for comparison;
//  - the pool: one decision's round trip through a worker thread vs inline, and throughput under concurrency;
//  - scaling: Bundle filter time from 100 to 10,000 entries.
import { readBundle } from "../../dist/src/policy/bundle.js";
import { PolicyEngine } from "../../dist/src/policy/engine.js";
import { PolicyPool } from "../../dist/src/policy/pool.js";
import { DATA, mix, searchsetBundle } from "./inputs.mjs";
import { BUNDLE, QUICK, log, round, summarize } from "./lib.mjs";

const scale = QUICK ? 0.2 : 1;

function timeLoop(fn, { iterations, warmup }) {
  for (let i = 0; i < warmup; i++) fn();
  const samples = new Float64Array(iterations);
  const start = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    fn();
    samples[i] = (performance.now() - t) * 1000;
  }
  const seconds = (performance.now() - start) / 1000;
  const s = summarize(samples);
  return {
    iterations,
    perSecond: round(iterations / seconds, 0),
    us: { mean: round(s.mean), p50: round(s.p50), p90: round(s.p90), p99: round(s.p99), max: round(s.max) },
  };
}

/** Iterations so that one measurement takes about `seconds`. */
function iterationsFor(fn, seconds) {
  const t = performance.now();
  let n = 0;
  while (performance.now() - t < 50 || n < 3) {
    fn();
    n++;
  }
  const each = (performance.now() - t) / n;
  return Math.max(5, Math.round((seconds * 1000 * scale) / each));
}

function outcome(d) {
  const o = { decision: d.decision, status: d.status };
  if (d.keep) o.keep = d.keep.length;
  if (d.drop) o.drop = d.drop.length;
  if (d.entries) o.entries = d.entries.length;
  if (d.narrow) o.narrow = d.narrow.length;
  if (d.reasons?.length) o.reasons = d.reasons.map((r) => r.code);
  return o;
}

async function poolLatency(pool, input, iterations) {
  for (let i = 0; i < Math.min(200, iterations); i++) await pool.decide(input);
  const samples = new Float64Array(iterations);
  const start = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await pool.decide(input);
    samples[i] = (performance.now() - t) * 1000;
  }
  const s = summarize(samples);
  return {
    perSecond: round(iterations / ((performance.now() - start) / 1000), 0),
    us: { p50: round(s.p50), p90: round(s.p90), p99: round(s.p99) },
  };
}

async function poolThroughput(pool, input, concurrency, total) {
  let next = 0;
  const samples = new Float64Array(total);
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const t = performance.now();
      await pool.decide(input);
      samples[i] = (performance.now() - t) * 1000;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker())); // warm
  next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const s = summarize(samples);
  return {
    concurrency,
    perSecond: round(total / ((performance.now() - start) / 1000), 0),
    us: { p50: round(s.p50), p99: round(s.p99) },
  };
}

async function main() {
  const bundle = readBundle(BUNDLE);
  const engine = await PolicyEngine.load(bundle, { data: DATA });
  const cases = mix();
  const result = { revision: engine.revision, cases: {}, library: {}, pool: {}, scaling: [] };

  for (const [name, input] of Object.entries(cases)) {
    const fn = () => engine.decide(input);
    const iterations = iterationsFor(fn, name === "bundle" ? 1.5 : 1);
    log(`in-process ${name}: ${iterations} decisions`);
    result.cases[name] = {
      inputBytes: Buffer.byteLength(JSON.stringify(input)),
      outcome: outcome(engine.decide(input)),
      ...timeLoop(fn, { iterations, warmup: Math.max(3, iterations >> 3) }),
    };
  }

  // The opa-wasm library call the engine used before its raw-JSON fast path (object in, result set out).
  const policy = engine.policy;
  for (const name of ["read", "batch", "bundle"]) {
    const input = cases[name];
    const fn = () => policy.evaluate(input, "smart/api/decision");
    const iterations = iterationsFor(fn, name === "bundle" ? 1 : 0.7);
    log(`in-process ${name} via opa-wasm evaluate(): ${iterations} decisions`);
    result.library[name] = timeLoop(fn, { iterations, warmup: Math.max(3, iterations >> 3) });
  }

  // Pool: what a worker round trip costs for a tiny decision, and what 2 workers give under load.
  const n = Math.round(3000 * (QUICK ? 0.3 : 1));
  for (const [label, options] of [
    ["inline", { mode: "inline" }],
    ["workers-1", { mode: "workers", workers: 1 }],
    ["workers-2", { mode: "workers", workers: 2 }],
  ]) {
    log(`pool ${label}`);
    const pool = await PolicyPool.create(engine, options);
    result.pool[label] = {
      sequential: await poolLatency(pool, cases.read, n),
      concurrent: await poolThroughput(pool, cases.read, 16, n * 2),
      batchConcurrent: await poolThroughput(pool, cases.batch, 16, Math.round(n / 5)),
    };
    await pool.close();
  }

  // Scaling: the engine's default WASM memory maximum (256 MiB) is too small for the largest sizes,
  // so this engine gets 1 GiB; the heap each size needs is measured, and whether the default fits.
  const big = await PolicyEngine.load(bundle, { data: DATA, memory: { initial: 16384, maximum: 16384 } });
  const zeroPage = Buffer.alloc(65536);
  const highWaterMiB = () => {
    const mem = Buffer.from(big.policy.mem.buffer);
    for (let p = mem.length - 65536; p >= 0; p -= 65536) {
      if (!mem.subarray(p, p + 65536).equals(zeroPage)) return (p + 65536) / 2 ** 20;
    }
    return 0;
  };
  const base = cases.bundle;
  const sizes = QUICK ? [100, 1000, 3000] : [100, 300, 1000, 3000, 10000];
  for (const size of sizes) {
    const input = { ...base, response: searchsetBundle(size) };
    const reps = Math.max(3, Math.round((QUICK ? 600 : 3000) / size));
    log(`scaling ${size} entries x ${reps}`);
    const r = timeLoop(() => big.decide(input), { iterations: reps, warmup: 1 });
    const d = big.decide(input);
    const fitsDefault = engine.decide(input).decision === d.decision;
    result.scaling.push({
      entries: size,
      inputKiB: round(Buffer.byteLength(JSON.stringify(input)) / 1024, 0),
      ms: { p50: round(r.us.p50 / 1000, 2), p99: round(r.us.p99 / 1000, 2) },
      usPerEntry: round(r.us.p50 / size, 2),
      decision: d.decision,
      keep: d.keep?.length,
      drop: d.drop?.length,
      wasmHeapMiB: highWaterMiB(),
      fitsDefaultMemory: fitsDefault,
    });
  }
  process.stdout.write(JSON.stringify(result));
}

await main();
