// The enforcing proxy against HAPI FHIR directly, side by side in one run (`make bench-proxy`).
//
//   FHIR_BASE=http://127.0.0.1:18090/fhir node scripts/bench/proxy.mjs
//
// Loads its own data into the running HAPI (Patient/bench-1 with BENCH_PROXY_OBSERVATIONS
// Observations, default 1,100, so a 1,000-entry page exists; PUTs, so running it again changes
// nothing), starts the proxy from the built CLI (strategy auto: HAPI's _filter), and measures, one
// request at a time, interleaved in random order per round, the same question asked of HAPI and of
// the proxy:
//   read      GET Observation/<id>
//   search    a narrowed search: the client's `Observation?code=…&_count=10` through the proxy;
//             HAPI is asked exactly what the proxy sends it (the client's query + the _filter)
//   page-100  `Observation?_count=100` (100 entries), the same way
//   page-1000 `Observation?_count=1000` (1,000 entries), the same way
// The proxy verifies a patient/*.rs token for bench-1 on every request, decides, narrows, checks
// every resource it returns and signs the paging links. Reports p50/p95 per side and the ratio of
// the p50s (proxy / HAPI); writes build/bench/proxy.json and build/bench/proxy.md.
//
// Variables: FHIR_BASE (required), BENCH_PROXY_PORT (default: a free port), BENCH_PROXY_ROUNDS
// (read rounds, default 300; the others in proportion), BENCH_PROXY_CASES (e.g. read,search; default
// all), BENCH_PROXY_CPU_PROF=1 (the proxy runs
// with --cpu-prof; profiles in build/bench/proxy/prof/), BENCH_PROXY_LOG_LEVEL (default info).
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { createServer } from "node:net";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { ROOT, machine, round, sleep, summarize } from "./lib.mjs";

const FHIR_BASE = (process.env.FHIR_BASE ?? "").replace(/\/+$/, "");
if (!FHIR_BASE) {
  console.error("bench-proxy: FHIR_BASE is not set (make bench-proxy starts HAPI and sets it)");
  process.exit(2);
}
const OUT = resolve(ROOT, "build/bench");
const RUN = resolve(OUT, "proxy");
const PATIENT = "bench-1";
const OBSERVATIONS = Number(process.env.BENCH_PROXY_OBSERVATIONS ?? 1100);
const ROUNDS = Number(process.env.BENCH_PROXY_ROUNDS ?? 300);
const CODES = ["8867-4", "9279-1", "8310-5", "29463-7", "8302-2", "2339-0"];
const NARROW = `(patient eq "Patient/${PATIENT}") or (performer eq "Patient/${PATIENT}")`;

const agents = {
  hapi: new Agent({ keepAlive: true, maxSockets: 1 }),
  proxy: new Agent({ keepAlive: true, maxSockets: 1 }),
};

/** One request, body read to the end; resolves with status, body text and milliseconds. */
function timed(side, url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((res, rej) => {
    const started = performance.now();
    const req = request(url, { method, headers, agent: agents[side] }, (r) => {
      const chunks = [];
      r.on("data", (c) => chunks.push(c));
      r.on("end", () =>
        res({
          status: r.statusCode,
          text: Buffer.concat(chunks).toString("utf8"),
          ms: performance.now() - started,
        }),
      );
      r.on("error", rej);
    });
    req.on("error", rej);
    req.end(body);
  });
}

async function loadData() {
  const entries = [
    {
      resource: { resourceType: "Patient", id: PATIENT, name: [{ family: "Bench", given: ["Betty"] }] },
      request: { method: "PUT", url: `Patient/${PATIENT}` },
    },
  ];
  for (let i = 1; i <= OBSERVATIONS; i++) {
    const id = `obs-bench-${String(i).padStart(5, "0")}`;
    const code = CODES[i % CODES.length];
    entries.push({
      resource: {
        resourceType: "Observation",
        id,
        status: "final",
        category: [
          {
            coding: [
              { system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "vital-signs" },
            ],
          },
        ],
        code: { coding: [{ system: "http://loinc.org", code }] },
        subject: { reference: `Patient/${PATIENT}` },
        effectiveDateTime: new Date(Date.UTC(2024, 0, 1) + i * 3600_000).toISOString(),
        valueQuantity: {
          value: 60 + (i % 40),
          unit: "/min",
          system: "http://unitsofmeasure.org",
          code: "/min",
        },
      },
      request: { method: "PUT", url: `Observation/${id}` },
    });
  }
  const t0 = performance.now();
  for (let start = 0; start < entries.length; start += 500) {
    const body = JSON.stringify({
      resourceType: "Bundle",
      type: "transaction",
      entry: entries.slice(start, start + 500),
    });
    const r = await timed("hapi", FHIR_BASE, {
      method: "POST",
      headers: { "content-type": "application/fhir+json", accept: "application/fhir+json" },
      body,
    });
    if (r.status !== 200)
      throw new Error(`loading the bench data: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  }
  console.log(
    `bench-proxy: ${entries.length} resources loaded (PUT) in ${round((performance.now() - t0) / 1000)} s`,
  );
}

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

function proxyConfig() {
  const config = {
    server: { listen: "127.0.0.1:0" },
    tokens: {
      issuers: [
        {
          issuer: "https://demo.smart-authz.invalid",
          audience: "https://fhir.demo.smart-authz.invalid",
          algorithms: ["ES256"],
          jwks: {
            keys: [
              {
                kty: "EC",
                crv: "P-256",
                x: "uDLFjrr19r9IJz4rBC1MYSCu1vUPSvSWgWV19cCKEK8",
                y: "E8jKakmmqzaELZb09dNNVm5fmZoTsB8E8flba9ChSl0",
                kid: "demo-m5bShnQT2lqOtax_",
                alg: "ES256",
              },
            ],
          },
        },
      ],
    },
    bundle: { source: resolve(ROOT, "build/bundle.tar.gz"), poll_interval_seconds: 0 },
    logging: { level: process.env.BENCH_PROXY_LOG_LEVEL ?? "info" },
    audit: { path: resolve(RUN, "audit.jsonl") },
    proxy: {
      base_path: "/fhir",
      upstream: { url: FHIR_BASE, max_response_size: "64mb" },
      narrowing: { strategy: "auto", fallback: "primary" },
    },
  };
  const path = resolve(RUN, "config.yaml");
  writeFileSync(
    path,
    `# written by scripts/bench/proxy.mjs (DEMO issuer: never deploy)\n${stringifyYaml(config)}`,
  );
  return path;
}

async function startProxy(port) {
  const args = [];
  if (process.env.BENCH_PROXY_CPU_PROF === "1")
    args.push("--cpu-prof", "--cpu-prof-dir", resolve(RUN, "prof"));
  args.push(
    resolve(ROOT, "dist/src/cli.js"),
    "proxy",
    "--config",
    proxyConfig(),
    "--proxy-addr",
    `127.0.0.1:${port}`,
  );
  const log = openSync(resolve(RUN, "proxy.log"), "w");
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, SMART_AUTHZ_PROXY_CURSOR_KEY: "bench-".repeat(8) },
    stdio: ["ignore", log, log],
  });
  const base = `http://127.0.0.1:${port}/fhir`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null)
      throw new Error(`the proxy exited (${child.exitCode}); see ${RUN}/proxy.log`);
    try {
      if ((await timed("proxy", `${base}/metadata`)).status === 200) return { child, base };
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  child.kill("SIGTERM");
  throw new Error(`the proxy did not answer within 60 s; see ${RUN}/proxy.log`);
}

function token() {
  return execFileSync(
    process.execPath,
    [
      resolve(ROOT, "dist/src/cli.js"),
      "token",
      "--scope",
      "patient/*.rs",
      "--patient",
      PATIENT,
      "--ttl",
      "7200",
    ],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    },
  ).trim();
}

const enc = encodeURIComponent;
const CASES = [
  {
    name: "read",
    client: "Observation/obs-bench-00001",
    upstream: "Observation/obs-bench-00001",
    entries: 1,
    share: 1,
  },
  {
    name: "search",
    client: `Observation?code=${enc("http://loinc.org|8867-4")}&_count=10`,
    upstream: `Observation?code=${enc("http://loinc.org|8867-4")}&_count=10&_filter=${enc(NARROW)}`,
    entries: 10,
    share: 0.15,
  },
  {
    name: "page-100",
    client: "Observation?_count=100",
    upstream: `Observation?_count=100&_filter=${enc(NARROW)}`,
    entries: 100,
    share: 0.15,
  },
  {
    name: "page-1000",
    client: "Observation?_count=1000",
    upstream: `Observation?_count=1000&_filter=${enc(NARROW)}`,
    entries: 1000,
    share: 0.05,
  },
];

function check(side, c, r) {
  if (r.status !== 200) throw new Error(`${side} ${c.name}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  const body = JSON.parse(r.text);
  const n =
    body.resourceType === "Bundle"
      ? (body.entry ?? []).filter((e) => (e.search?.mode ?? "match") === "match").length
      : 1;
  if (n !== c.entries) throw new Error(`${side} ${c.name}: ${n} entries, expected ${c.entries}`);
}

async function main() {
  mkdirSync(RUN, { recursive: true });
  await loadData();
  const port = Number(process.env.BENCH_PROXY_PORT) || (await freePort());
  const { child, base } = await startProxy(port);
  const auth = { authorization: `Bearer ${token()}`, accept: "application/fhir+json" };
  const results = {};
  try {
    const only = process.env.BENCH_PROXY_CASES?.split(",");
    for (const c of CASES.filter((x) => !only || only.includes(x.name))) {
      const ask = {
        hapi: () =>
          timed("hapi", `${FHIR_BASE}/${c.upstream}`, { headers: { accept: "application/fhir+json" } }),
        proxy: () => timed("proxy", `${base}/${c.client}`, { headers: auth }),
      };
      const rounds = Math.max(10, Math.round(ROUNDS * c.share));
      const warmup = Math.max(5, Math.round(rounds / 10));
      const times = { hapi: [], proxy: [] };
      for (let i = 0; i < warmup + rounds; i++) {
        const order = Math.random() < 0.5 ? ["hapi", "proxy"] : ["proxy", "hapi"];
        for (const side of order) {
          const r = await ask[side]();
          if (i < warmup) check(side, c, r);
          else times[side].push(r.ms);
        }
      }
      const hapi = summarize(times.hapi);
      const proxy = summarize(times.proxy);
      results[c.name] = {
        rounds,
        client: c.client,
        upstream: c.upstream,
        hapi: {
          p50: round(hapi.p50, 2),
          p95: round(percentile(times.hapi, 95), 2),
          mean: round(hapi.mean, 2),
        },
        proxy: {
          p50: round(proxy.p50, 2),
          p95: round(percentile(times.proxy, 95), 2),
          mean: round(proxy.mean, 2),
        },
        ratioP50: round(proxy.p50 / hapi.p50, 3),
        addedP50Ms: round(proxy.p50 - hapi.p50, 2),
      };
      console.log(
        `bench-proxy: ${c.name}: HAPI p50 ${round(hapi.p50, 2)} ms, proxy p50 ${round(proxy.p50, 2)} ms (${rounds} rounds)`,
      );
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
  }
  const report = {
    when: new Date().toISOString(),
    machine: machine(),
    loadavg: loadavg().map((x) => round(x, 2)),
    fhirBase: FHIR_BASE,
    results,
  };
  const table = [
    "| case | rounds | HAPI p50 ms | HAPI p95 ms | proxy p50 ms | proxy p95 ms | proxy/HAPI p50 | added p50 ms |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...Object.entries(results).map(
      ([name, r]) =>
        `| ${name} | ${r.rounds} | ${r.hapi.p50} | ${r.hapi.p95} | ${r.proxy.p50} | ${r.proxy.p95} | ${r.ratioP50} | ${r.addedP50Ms} |`,
    ),
  ].join("\n");
  writeFileSync(resolve(OUT, "proxy.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(
    resolve(OUT, "proxy.md"),
    `# Proxy vs HAPI (${report.when}, load ${report.loadavg.join(" ")})\n\n${table}\n`,
  );
  console.log(
    `\n${table}\n\nload average ${report.loadavg.join(" ")}; written to build/bench/proxy.json and build/bench/proxy.md`,
  );
}

function percentile(values, p) {
  const a = [...values].sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))];
}

main().catch((e) => {
  console.error(`bench-proxy: ${e.message}`);
  process.exit(1);
});
