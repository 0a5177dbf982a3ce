// Memory over many decisions (run by run.mjs in its own process; prints JSON): RSS of the whole
// process (main thread + worker threads + WASM memories) sampled every 100,000 decisions while the
// worker pool decides the small cases of the mix (read, search, BTG, and a 20-entry batch every 20th).
import { readBundle } from "../../dist/src/policy/bundle.js";
import { PolicyEngine } from "../../dist/src/policy/engine.js";
import { PolicyPool } from "../../dist/src/policy/pool.js";
import { DATA, mix } from "./inputs.mjs";
import { BUNDLE, QUICK, log, round } from "./lib.mjs";

const total = Number(process.env.BENCH_MEMORY_DECISIONS ?? (QUICK ? 50_000 : 1_000_000));
const every = Number(process.env.BENCH_MEMORY_EVERY ?? (QUICK ? 10_000 : 100_000));
const mode = process.env.BENCH_MEMORY_MODE ?? "workers";
const MiB = 2 ** 20;

const engine = await PolicyEngine.load(readBundle(BUNDLE), { data: DATA });
const pool = await PolicyPool.create(engine, { mode });
const m = mix();
const rotation = [];
for (let i = 0; i < 20; i++) rotation.push(i === 19 ? m.batch : [m.read, m.search, m.btg][i % 3]);

let done = 0;
const denied = {};
async function run(n) {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const { decision } = await pool.decide(rotation[(done + i) % rotation.length]);
      if (decision.decision === "deny") {
        const code = decision.reasons?.[0]?.code ?? "unknown";
        denied[code] = (denied[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, lane));
  done += n;
}

function sample() {
  const u = process.memoryUsage();
  return {
    decisions: done,
    rssMiB: round(u.rss / MiB, 1),
    heapUsedMiB: round(u.heapUsed / MiB, 1),
    heapTotalMiB: round(u.heapTotal / MiB, 1),
    externalMiB: round(u.external / MiB, 1),
  };
}

await run(Math.min(20_000, every)); // warm: JIT, WASM tier-up, heaps at their working size
done = 0;
const samples = [sample()];
const started = performance.now();
while (done < total) {
  await run(Math.min(every, total - done));
  samples.push(sample());
  log(`memory: ${done} decisions, RSS ${samples.at(-1).rssMiB} MiB`);
}
const seconds = (performance.now() - started) / 1000;
const stats = pool.stats();
await pool.close();
const rss = samples.map((s) => s.rssMiB);
const first = rss[0];
const last = rss.at(-1);
const max = Math.max(...rss);
process.stdout.write(
  JSON.stringify({
    mode,
    workers: pool.size,
    decisions: total,
    seconds: round(seconds, 1),
    perSecond: round(total / seconds, 0),
    denied,
    pool: stats,
    rssMiB: { first, last, max, min: Math.min(...rss) },
    driftPct: round(((last - first) / first) * 100, 1),
    maxDeviationPct: round((Math.max(...rss.map((r) => Math.abs(r - first))) / first) * 100, 1),
    samples,
  }),
);
