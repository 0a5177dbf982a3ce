// Shared helpers of the benchmark suite: statistics, machine description, child processes.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem, availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const OPA = resolve(ROOT, ".tools", "bin", "opa");
export const BUNDLE = resolve(ROOT, "build", "bundle.tar.gz");
export const QUICK = process.env.BENCH_QUICK === "1";

/** Percentiles (nearest rank) and mean of a list of numbers. */
export function summarize(values) {
  const a = Float64Array.from(values).sort();
  const n = a.length;
  if (n === 0) return { n: 0 };
  const at = (p) => a[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
  let sum = 0;
  for (const v of a) sum += v;
  return { n, mean: sum / n, min: a[0], p50: at(50), p90: at(90), p99: at(99), max: a[n - 1] };
}

export function median(values) {
  return summarize(values).p50;
}

export function round(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** nproc, CPU model, memory, Node and OPA versions, kernel. */
export function machine() {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) model = m[1].trim();
  } catch {
    // not Linux
  }
  let opa = "not installed";
  try {
    opa = /Version:\s*(\S+)/.exec(execFileSync(OPA, ["version"], { encoding: "utf8" }))?.[1] ?? "unknown";
  } catch {
    // reported as missing
  }
  let kernel = "";
  try {
    kernel = execFileSync("uname", ["-sr"], { encoding: "utf8" }).trim();
  } catch {
    // not POSIX
  }
  return {
    nproc: availableParallelism(),
    cpu: model,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    opa,
    kernel,
  };
}

/** Runs `node script args...`, returns its stdout parsed as JSON (stderr passes through). */
export function nodeJson(script, args = [], env = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`));
      try {
        resolvePromise(JSON.parse(out));
      } catch (err) {
        reject(new Error(`${script}: output is not JSON (${err.message}): ${out.slice(0, 300)}`));
      }
    });
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Prints progress to stderr (stdout is for results). */
export function log(...args) {
  process.stderr.write(`[bench] ${args.join(" ")}\n`);
}
