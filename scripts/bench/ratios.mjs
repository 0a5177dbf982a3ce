// smart-authz against its floor (issue 14), in-process: every case of the mix, the same read with
// tokens of 6 to 300 scopes, and searches with 1 KB to 32 KB of percent-encoded UTF-8 (security
// review H5), each decided by PolicyEngine and, on the identical input, by the floor policies of
// scripts/bench/floor/ (compiled by the same pinned OPA, evaluated by the same host). Cells run in
// interleaved rounds; each round measures a batch of decisions in wall time and in CPU time of this
// process (which other processes on the machine do not add to); a cell's figure is the median over
// the rounds. Run by run.mjs in a child process; prints JSON.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { readBundle } from "../../dist/src/policy/bundle.js";
import { PolicyEngine } from "../../dist/src/policy/engine.js";
import { DATA, SCOPE_VOLUMES, mix, scopeVolumeRead } from "./inputs.mjs";
import { BUNDLE, OPA, QUICK, ROOT, log, round } from "./lib.mjs";

/** The floor policies: name -> [source directory, bundle]. */
export const FLOORS = Object.fromEntries(
  ["read", "bundle"].map((name) => [
    name,
    [
      resolve(ROOT, "scripts", "bench", "floor", name),
      resolve(ROOT, "build", "bench", `floor-${name}.tar.gz`),
    ],
  ]),
);

/** Builds build/bench/floor-*.tar.gz with the pinned OPA when missing or older than their source. */
export function buildFloors() {
  mkdirSync(resolve(ROOT, "build", "bench"), { recursive: true });
  for (const [dir, bundle] of Object.values(FLOORS)) {
    const src = resolve(dir, "floor.rego");
    if (existsSync(bundle) && statSync(bundle).mtimeMs >= statSync(src).mtimeMs) continue;
    execFileSync(
      OPA,
      ["build", "-t", "wasm", "-e", "smart/api/decision", "-e", "smart/api/scopes", "-o", bundle, dir],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
  }
}

const UNIT = "%C3%A9%E4%B8%AD"; // é 中
/** The patient app's search with a value of about `bytes` bytes of multibyte escapes. */
function decodeSearch(bytes) {
  const search = mix().search;
  const prefix = "Observation?code=";
  const value = UNIT.repeat(Math.floor((bytes - prefix.length) / UNIT.length));
  return { ...search, request: { ...search.request, url: prefix + value } };
}

/**
 * The cases: name, group, input, floor policy, and how many of its decisions make the floor: the
 * batch's floor is twenty reads' floor (the one-line policy deciding the read, times 20).
 */
export function cells() {
  const m = mix();
  const out = [
    ["read", "mix", m.read, "read", 1],
    ["search", "mix", m.search, "read", 1],
    ["bundle", "mix", m.bundle, "bundle", 1],
    ["batch", "mix", m.batch, "read", 20, m.read],
    ["btg", "mix", m.btg, "read", 1],
  ];
  for (const n of SCOPE_VOLUMES) out.push([`scopes-${n}`, "scopes", scopeVolumeRead(n), "read", 1]);
  for (const kb of QUICK ? [1, 8] : [1, 8, 32])
    out.push([`decode-${kb}k`, "decode", decodeSearch(kb * 1024), "read", 1]);
  const only = process.env.BENCH_CASES ? new Set(process.env.BENCH_CASES.split(",")) : null;
  return out
    .filter(([name]) => !only || only.has(name))
    .map(([name, group, input, floor, times, floorInput]) => ({
      name,
      group,
      input,
      floor,
      times,
      floorInput: floorInput ?? input,
    }));
}

const SLICES = 4;

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
}

/** Runs `fn` `n` times; returns [wall µs, CPU µs] per call. */
function batch(fn, n) {
  const c = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < n; i++) fn();
  const wall = (performance.now() - t) * 1000;
  const d = process.cpuUsage(c);
  return [wall / n, (d.user + d.system) / n];
}

export async function measure({
  rounds = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 13 : 21)),
  windowMs = QUICK ? 50 : 120,
} = {}) {
  buildFloors();
  const ours = await PolicyEngine.load(readBundle(BUNDLE), { data: DATA });
  const floors = {};
  for (const [name, [, bundle]] of Object.entries(FLOORS)) {
    floors[name] = await PolicyEngine.load(readBundle(bundle), { data: DATA });
  }
  const list = cells();
  const runs = [];
  for (const c of list) {
    const decision = ours.decide(c.input);
    const floor = floors[c.floor];
    const floorDecision = floor.decide(c.floorInput);
    if (floorDecision.decision === "deny") {
      throw new Error(`floor policy ${c.floor} denied ${c.name}: ${JSON.stringify(floorDecision)}`);
    }
    const fns = {
      ours: () => ours.decide(c.input),
      floor: () => floor.decide(c.floorInput),
    };
    for (const [who, fn] of Object.entries(fns)) {
      // Size a slice so that SLICES of them take about windowMs (at least one call each).
      const [once] = batch(fn, 3);
      runs.push({
        cell: c,
        who,
        fn,
        n: Math.max(1, Math.round((windowMs * 1000) / SLICES / Math.max(once, 1))),
        wall: [],
        cpu: [],
      });
    }
    c.outcome = { decision: decision.decision, status: decision.status };
  }
  log(`ratios: ${list.length} cases x (ours, floor), ${rounds} interleaved rounds`);
  // Warm-up: every cell for about two slices, so V8 has compiled and optimised the host's code
  // paths for every policy before anything is measured.
  for (let w = 0; w < 2; w++) for (const run of runs) batch(run.fn, run.n);
  // A round measures every case; within a case, smart-authz and its floor alternate in SLICES
  // slices each, so that both see the same moments of the machine's load.
  for (let r = 0; r < rounds; r++) {
    for (const c of list) {
      const pair = runs.filter((x) => x.cell === c);
      for (let k = 0; k < SLICES; k++) {
        for (const run of pair) {
          const [wall, cpu] = batch(run.fn, run.n);
          run.wall.push(wall);
          run.cpu.push(cpu);
        }
      }
    }
  }
  // The figure of a cell is the CPU time per decision of its fastest slice: other processes on a
  // shared machine only ever add to it (preemption does not count as CPU time; a busy sibling
  // hyperthread or a cold cache slows a slice down), so the minimum is the stable, comparable one.
  // The median wall-clock time is reported beside it.
  const result = { revision: ours.revision, rounds, slices: SLICES, windowMs, cases: {} };
  for (const c of list) {
    const get = (who) => runs.find((x) => x.cell === c && x.who === who);
    const o = get("ours");
    const f = get("floor");
    const us = { cpu: Math.min(...o.cpu), cpuMedian: median(o.cpu), wall: median(o.wall) };
    const floorUs = {
      cpu: Math.min(...f.cpu) * c.times,
      cpuMedian: median(f.cpu) * c.times,
      wall: median(f.wall) * c.times,
    };
    result.cases[c.name] = {
      group: c.group,
      inputBytes: Buffer.byteLength(JSON.stringify(c.input)),
      tokenBytes: Buffer.byteLength(c.input.claims.scope),
      outcome: c.outcome,
      floor: c.floor,
      floorTimes: c.times,
      us: { cpu: round(us.cpu, 1), cpuMedian: round(us.cpuMedian, 1), wall: round(us.wall, 1) },
      floorUs: {
        cpu: round(floorUs.cpu, 2),
        cpuMedian: round(floorUs.cpuMedian, 2),
        wall: round(floorUs.wall, 2),
      },
      ratio: { cpu: round(us.cpu / floorUs.cpu, 2), wall: round(us.wall / floorUs.wall, 2) },
    };
  }
  // Growth with the number of scopes, against the same read with 6 scopes.
  const six = result.cases["scopes-6"];
  for (const n of SCOPE_VOLUMES) {
    const x = result.cases[`scopes-${n}`];
    if (six && x) x.vsSix = { cpu: round(x.us.cpu / six.us.cpu, 2), wall: round(x.us.wall / six.us.wall, 2) };
  }
  // Decoding time against the size of the URL (linear: 4 from 8 KB to 32 KB).
  if (result.cases["decode-32k"] && result.cases["decode-8k"]) {
    result.decodeGrowth = {
      "32k/8k": round(result.cases["decode-32k"].us.cpu / result.cases["decode-8k"].us.cpu, 2),
    };
  }
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(JSON.stringify(await measure()));
}
