// HTTP benchmarks: the same requests against smart-authz (worker pool and inline) and against OPA's
// own server (`opa run -s`) serving the same policy, once as the compiled wasm bundle and once as
// the Rego sources (topdown). One load generator (autocannon, in this process) for all of them,
// loopback only; every run is bounded by its duration. Targets run interleaved, case by case.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import autocannon from "autocannon";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { DEFAULT_CONFIG_YAML } from "../../dist/src/ops/default-config.js";
import { CLAIMS, WEIGHTS, mix } from "./inputs.mjs";
import { BUNDLE, OPA, ROOT, log, round, sleep, summarize } from "./lib.mjs";

const DATA_PATH = "/v1/data/smart/api/decision";

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function benchConfig(dir) {
  const config = parseYaml(DEFAULT_CONFIG_YAML);
  config.server = { ...config.server, listen: "127.0.0.1:0", body_limit: "16mb" };
  config.tokens.trust_forwarded_claims = true;
  // The inputs are replayed at a fixed time (break-the-glass cases depend on it), as OPA sees them.
  config.tokens.trust_forwarded_now = true;
  config.bundle = { source: BUNDLE, poll_interval_seconds: 0 };
  config.logging = { level: "warn", decisions: false, unmask: false };
  config.policy = {};
  const path = resolve(dir, "smart-authz.yaml");
  writeFileSync(path, stringifyYaml(config));
  return path;
}

/** /proc/<pid>: resident memory (MiB) and CPU time (ms) of a process. */
function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    return { rssMiB: rss, cpuMs: (ticks * 1000) / 100 };
  } catch {
    return { rssMiB: NaN, cpuMs: NaN };
  }
}

async function waitReady(url, child, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`server exited early (${child.exitCode}): ${child.stderrTail}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${child.stderrTail}`);
}

async function startTarget(target, configPath) {
  const port = await freePort();
  let child;
  if (target.kind === "ours") {
    child = spawn(process.execPath, [resolve(ROOT, "dist/src/cli.js"), "serve", "--config", configPath], {
      cwd: ROOT,
      env: { ...process.env, ...target.env, SMART_AUTHZ_LISTEN: `127.0.0.1:${port}` },
      stdio: ["ignore", "ignore", "pipe"],
    });
  } else {
    child = spawn(
      OPA,
      [
        "run",
        "-s",
        "--addr",
        `127.0.0.1:${port}`,
        "--log-level",
        "error",
        "--skip-version-check",
        ...target.args,
      ],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
    );
  }
  child.stderrTail = "";
  child.stderr.on("data", (d) => (child.stderrTail = (child.stderrTail + d).slice(-2000)));
  const base = `http://127.0.0.1:${port}`;
  await waitReady(target.kind === "ours" ? `${base}/ready` : `${base}/health?bundles`, child);
  return { ...target, base, port, child };
}

function stopTarget(t) {
  if (t.child && t.child.exitCode === null) t.child.kill("SIGTERM");
}

/** The request bodies of one case for one API. */
function requestFor(api, input, token) {
  if (api === "data") return { path: DATA_PATH, body: JSON.stringify({ input }) };
  const { claims, ...rest } = input;
  const body = api === "token" ? { token, ...rest } : { claims, ...rest };
  return { path: "/v1/decision", body: JSON.stringify(body) };
}

/** 20 requests in the mix's proportions, interleaved (read, search, read, batch, ...). */
function mixSequence(api, inputs, token) {
  const bag = [];
  for (const [name, w] of Object.entries(WEIGHTS)) for (let i = 0; i < w / 5; i++) bag.push(name);
  const order = [];
  const counts = Object.fromEntries(Object.keys(WEIGHTS).map((k) => [k, 0]));
  for (let i = 0; i < bag.length; i++) {
    // pick the case furthest behind its share: a smooth, deterministic interleaving
    let best;
    for (const [name, w] of Object.entries(WEIGHTS)) {
      const lag = ((i + 1) * w) / 100 - counts[name];
      if (!best || lag > best.lag) best = { name, lag };
    }
    counts[best.name]++;
    order.push(best.name);
  }
  return order.map((name) => requestFor(api, inputs[name], token));
}

function decisionOf(api, body) {
  const d = api === "data" ? body.result : body;
  if (!d || typeof d !== "object") return { decision: "undefined" };
  const o = { decision: d.decision };
  if (d.keep) o.keep = d.keep.length;
  if (d.drop) o.drop = d.drop.length;
  if (d.entries) o.entries = d.entries.length;
  if (d.narrow) o.narrow = d.narrow.length;
  return o;
}

async function probe(target, req, api) {
  const r = await fetch(target.base + req.path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: req.body,
  });
  return { status: r.status, ...decisionOf(api, await r.json()) };
}

function load(target, requests, { duration, connections, record }) {
  return new Promise((res, rej) => {
    const samples = [];
    let client = 0;
    const base = requests.map((r) => ({
      method: "POST",
      path: r.path,
      headers: { "content-type": "application/json" },
      body: r.body,
    }));
    const instance = autocannon(
      {
        url: target.base,
        connections,
        duration,
        requests: base,
        // every connection starts at a different point of the sequence
        setupClient: (c) => {
          const k = (client++ * 3) % base.length;
          c.setRequests([...base.slice(k), ...base.slice(0, k)]);
        },
      },
      (err, result) => (err ? rej(err) : res({ result, samples })),
    );
    if (record) {
      instance.on("response", (_c, status, _bytes, ms) => {
        if (status >= 200 && status < 300) samples.push(ms);
      });
    }
  });
}

async function measure(target, requests, opts) {
  await load(target, requests, { duration: opts.warmup, connections: opts.connections, record: false });
  const before = procStats(target.child.pid);
  const { result, samples } = await load(target, requests, { ...opts, record: true });
  const after = procStats(target.child.pid);
  const s = summarize(samples);
  const seconds = result.duration;
  return {
    requests: samples.length,
    perSecond: round(samples.length / seconds, 0),
    ms: { p50: round(s.p50, 2), p90: round(s.p90, 2), p99: round(s.p99, 2), max: round(s.max, 1) },
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    serverCpuMsPerRequest: round((after.cpuMs - before.cpuMs) / Math.max(1, samples.length), 3),
    serverRssMiB: round(after.rssMiB, 0),
  };
}

/** Connections per case: the 1,000-entry Bundle filter runs with fewer, so that slow servers finish some requests. */
const BUNDLE_CONNECTIONS = 2;

export async function runHttp({ duration, warmup, connections, quick, defaultTarget }) {
  const dir = resolve(ROOT, "build", "bench");
  mkdirSync(dir, { recursive: true });
  const configPath = benchConfig(dir);
  const token = execFileSync(
    process.execPath,
    [
      resolve(ROOT, "dist/src/cli.js"),
      "token",
      "--scope",
      CLAIMS.scope,
      "--patient",
      CLAIMS.patient,
      "--fhir-user",
      CLAIMS.fhirUser,
      "--ttl",
      "86400",
    ],
    { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  ).trim();

  const targets = [
    {
      key: "ours-workers",
      label: "smart-authz, worker pool",
      kind: "ours",
      env: { SMART_AUTHZ_POOL_MODE: "workers" },
    },
    {
      key: "ours-inline",
      label: "smart-authz, inline",
      kind: "ours",
      env: { SMART_AUTHZ_POOL_MODE: "inline" },
    },
    { key: "opa-wasm", label: "opa run -s (wasm bundle)", kind: "opa", args: ["-b", BUNDLE] },
    {
      key: "opa-rego",
      label: "opa run -s (Rego, topdown)",
      kind: "opa",
      args: ["-b", "--ignore", "*_test.rego", resolve(ROOT, "policies")],
    },
  ];
  const inputs = mix();
  const caseNames = quick ? ["read", "mix"] : ["read", "search", "batch", "btg", "bundle", "mix"];
  const running = [];
  const cleanup = () => running.forEach(stopTarget);
  const interrupted = (signal) => {
    cleanup();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("exit", cleanup);
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  const out = { connections, bundleConnections: BUNDLE_CONNECTIONS, duration, warmup, targets: {}, runs: [] };
  try {
    for (const t of targets) {
      log(`starting ${t.label}`);
      const started = await startTarget(t, configPath);
      running.push(started);
      out.targets[t.key] = { label: t.label, idleRssMiB: round(procStats(started.child.pid).rssMiB, 0) };
    }
    const plan = [];
    for (const name of caseNames) for (const t of running) plan.push({ t, name, api: "data" });
    const def = running.find((t) => t.key === defaultTarget);
    plan.push({ t: def, name: "read", api: "claims" }, { t: def, name: "read", api: "token" });
    if (!quick) plan.push({ t: def, name: "mix", api: "claims" });
    for (const { t, name, api } of plan) {
      const requests =
        name === "mix" ? mixSequence(api, inputs, token) : [requestFor(api, inputs[name], token)];
      const probes = [];
      for (const r of requests.slice(0, name === "mix" ? 5 : 1)) probes.push(await probe(t, r, api));
      if (probes.some((p) => p.status !== 200)) {
        throw new Error(`${t.label} ${name} (${api}) answered ${JSON.stringify(probes)}`);
      }
      log(`${name.padEnd(6)} ${api.padEnd(6)} -> ${t.label}`);
      const m = await measure(t, requests, {
        duration,
        warmup,
        connections: name === "bundle" ? BUNDLE_CONNECTIONS : connections,
      });
      out.runs.push({ target: t.key, case: name, api, probe: name === "mix" ? undefined : probes[0], ...m });
    }
    for (const t of running) out.targets[t.key].finalRssMiB = round(procStats(t.child.pid).rssMiB, 0);
    // Same decision from every server for every case?
    out.disagreements = [];
    for (const name of caseNames.filter((c) => c !== "mix")) {
      const probes = out.runs.filter((x) => x.case === name && x.api === "data");
      const first = JSON.stringify({ ...probes[0]?.probe, status: 200 });
      for (const x of probes) {
        if (JSON.stringify({ ...x.probe, status: 200 }) !== first) {
          out.disagreements.push({
            case: name,
            target: x.target,
            probe: x.probe,
            expected: probes[0]?.probe,
          });
        }
      }
    }
  } finally {
    cleanup();
    process.off("exit", cleanup);
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
  return out;
}
