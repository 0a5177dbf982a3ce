#!/usr/bin/env node
// Soak test of the real service on loopback (`make soak`): `node dist/src/cli.js serve` with a
// private copy of build/bundle.tar.gz, driven at a steady open-loop rate (SOAK_RATE, default 200
// req/s) for SOAK_SECONDS (default 600) by a fixed mix of decisions whose answers are known. Every
// response is checked (status, decision, the facts that make it right, the policy revision). The
// server's RSS is sampled every 10 s. At 25% of the run the bundle file is replaced by one whose
// policy.wasm is garbage, at 37.5% by a truncated gzip, at 50% by a good bundle with a new
// revision, at 75% the config file is overwritten with invalid YAML and the server gets SIGHUP.
// Pass: 0 failed requests, 0 wrong decisions, the bad bundles rejected with the old revision kept,
// the new one activated, the server alive to the end and exiting 0 on SIGTERM, p99 stable (every
// bucket after the first, which holds the warm-up, under max(4 x the median bucket p99, 100 ms),
// and no upward drift: the second half's median bucket p99 at most 2 x the first half's + 10 ms),
// RSS flat (end within +25% / +96 MB of the RSS after the first minute). The 1-minute load
// average is recorded per bucket (the reference machine is shared). Prints a table and writes
// build/soak/results.json; exits 1 on any failure.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { Agent, request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { SignJWT, exportJWK, generateKeyPair } from "jose";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "src", "cli.js");
const BUNDLE = join(ROOT, "build", "bundle.tar.gz");
const OUT_DIR = join(ROOT, "build", "soak");

const DURATION_S = positive("SOAK_SECONDS", 600);
const RATE = positive("SOAK_RATE", 200);
const RSS_SAMPLE_MS = 10_000;
const BUCKET_S = DURATION_S >= 300 ? 60 : 10;
const REQUEST_TIMEOUT_MS = 10_000;
/** p99 of every bucket must stay under max(P99_FACTOR x the median bucket p99, P99_FLOOR_MS)... */
const P99_FACTOR = 4;
const P99_FLOOR_MS = 100;
/** ...and the median bucket p99 of the second half must stay under P99_DRIFT x the first half's + 10 ms. */
const P99_DRIFT = 2;
/** RSS at the end may exceed the RSS after warm-up by at most this much. */
const RSS_MAX_GROWTH = 0.25;
const RSS_MAX_GROWTH_MB = 96;

const ISSUER = "https://soak.issuer.test";
const AUDIENCE = "https://fhir.soak.test";

function positive(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${name} must be a positive number, got ${raw}`);
    process.exit(2);
  }
  return n;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// --- Fixtures: bundles, keys, config -------------------------------------------------------------

function revisionOf(bundlePath, work) {
  const dir = mkdtempSync(join(work, "rev-"));
  execFileSync("tar", ["-xzf", bundlePath, "-C", dir], { stdio: "pipe" });
  return JSON.parse(readFileSync(join(dir, ".manifest"), "utf8")).revision;
}

/** The good bundle again, with another revision in .manifest (so its activation is visible). */
function rebrand(bundlePath, revision, out, work) {
  const dir = mkdtempSync(join(work, "b-"));
  execFileSync("tar", ["-xzf", bundlePath, "-C", dir], { stdio: "pipe" });
  const manifest = JSON.parse(readFileSync(join(dir, ".manifest"), "utf8"));
  writeFileSync(join(dir, ".manifest"), JSON.stringify({ ...manifest, revision }));
  execFileSync("tar", ["--format=ustar", "-czf", out, "-C", dir, ".manifest", "data.json", "policy.wasm"], {
    stdio: "pipe",
  });
}

/** A well-formed tar.gz bundle whose policy.wasm is garbage. */
function garbageWasmBundle(bundlePath, out, work) {
  const dir = mkdtempSync(join(work, "g-"));
  execFileSync("tar", ["-xzf", bundlePath, "-C", dir], { stdio: "pipe" });
  writeFileSync(join(dir, "policy.wasm"), randomBytes(4096));
  const manifest = JSON.parse(readFileSync(join(dir, ".manifest"), "utf8"));
  writeFileSync(join(dir, ".manifest"), JSON.stringify({ ...manifest, revision: "soak-garbage-wasm" }));
  execFileSync("tar", ["--format=ustar", "-czf", out, "-C", dir, ".manifest", "data.json", "policy.wasm"], {
    stdio: "pipe",
  });
}

/** Atomically replaces `target` with `bytes` (what a deployment tool does). */
function replaceFile(target, bytes) {
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, target);
}

function configYaml(jwk) {
  return `server:
  listen: "127.0.0.1:0"
  body_limit: 1mb
  shutdown_grace_seconds: 10
tokens:
  issuers:
    - issuer: ${ISSUER}
      audience: ${AUDIENCE}
      algorithms: [ES256]
      jwks:
        keys:
          - ${JSON.stringify(jwk)}
  clock_tolerance_seconds: 30
bundle:
  source: bundle.tar.gz
  poll_interval_seconds: 1
logging:
  level: info
  decisions: false
policy: {}
`;
}

// --- The mix: requests whose answers are known ----------------------------------------------------

const OBS = (id, patient) => ({
  resourceType: "Observation",
  id,
  subject: { reference: `Patient/${patient}` },
});
const GET_OBS1 = { method: "GET", url: "Observation/1" };

function expectDecision(want) {
  return (r) => {
    if (r.status !== 200) return `HTTP ${r.status}, expected 200`;
    const d = r.json;
    if (d?.decision !== want.decision) return `decision ${d?.decision}, expected ${want.decision}`;
    if (want.status !== undefined && d.status !== want.status)
      return `status ${d.status}, expected ${want.status}`;
    if (want.check) return want.check(d);
    return undefined;
  };
}

function expect401(reason) {
  return (r) => {
    if (r.status !== 401) return `HTTP ${r.status}, expected 401`;
    const code = r.json?.reasons?.[0]?.code;
    if (code !== reason) return `reason ${code}, expected ${reason}`;
    if (!/error="invalid_token"/.test(r.headers["www-authenticate"] ?? "") && reason !== "token-missing")
      return "no invalid_token challenge";
    return undefined;
  };
}

function buildMix(t) {
  const body = (token, extra) => ({ ...(token ? { token } : {}), ...extra });
  return [
    {
      name: "patient read, own Observation -> allow",
      path: "/v1/decision",
      body: () => body(t.patient, { request: GET_OBS1, resource: OBS("1", "123") }),
      check: expectDecision({ decision: "allow" }),
    },
    {
      name: "patient read, other patient's Observation -> deny 404",
      path: "/v1/decision",
      body: () =>
        body(t.patient, { request: { method: "GET", url: "Observation/2" }, resource: OBS("2", "456") }),
      check: expectDecision({ decision: "deny", status: 404 }),
    },
    {
      name: "patient search -> filter narrowed to Patient/123",
      path: "/v1/decision",
      body: () =>
        body(t.patient, { request: { method: "GET", url: "Observation?code=http://loinc.org|8867-4" } }),
      check: expectDecision({
        decision: "filter",
        check: (d) =>
          (d.narrow ?? []).length > 0 && d.narrow.every((alt) => Object.values(alt).includes("Patient/123"))
            ? undefined
            : `narrow ${JSON.stringify(d.narrow)} not confined to Patient/123`,
      }),
    },
    {
      name: "constrained user search -> filter category=laboratory",
      path: "/v1/decision",
      body: () => body(t.user, { request: { method: "GET", url: "Observation" } }),
      check: expectDecision({
        decision: "filter",
        check: (d) =>
          (d.narrow ?? []).length > 0 && d.narrow.every((alt) => alt.category === "laboratory")
            ? undefined
            : `narrow ${JSON.stringify(d.narrow)} is not category=laboratory`,
      }),
    },
    {
      name: "system read -> allow",
      path: "/v1/decision",
      body: () => body(t.system, { request: { method: "GET", url: "Patient/9" } }),
      check: expectDecision({ decision: "allow" }),
    },
    {
      name: "scope missing -> deny 403 with required scope",
      path: "/v1/decision",
      body: () => body(t.patient, { request: { method: "GET", url: "Condition/1" } }),
      check: expectDecision({
        decision: "deny",
        status: 403,
        check: (d) =>
          (d.required_scopes ?? []).includes("patient/Condition.r")
            ? undefined
            : `required_scopes ${JSON.stringify(d.required_scopes)}`,
      }),
    },
    {
      name: "create for another patient -> deny 403",
      path: "/v1/decision",
      body: () => body(t.patient, { request: { method: "POST", url: "Observation", body: OBS("x", "456") } }),
      check: expectDecision({ decision: "deny", status: 403 }),
    },
    {
      name: "no token -> 401 token-missing",
      path: "/v1/decision",
      body: () => ({ request: GET_OBS1 }),
      check: expect401("token-missing"),
    },
    {
      name: "expired token -> 401",
      path: "/v1/decision",
      body: () => body(t.expired, { request: GET_OBS1 }),
      check: expect401("token-expired"),
    },
    {
      name: "tampered token -> 401",
      path: "/v1/decision",
      body: () => body(t.tampered, { request: GET_OBS1 }),
      check: expect401("token-signature-invalid"),
    },
    {
      name: "filter a searchset -> keeps only the patient's entry",
      path: "/v1/filter",
      body: () =>
        body(t.patient, {
          request: { method: "GET", url: "Observation" },
          response: {
            resourceType: "Bundle",
            type: "searchset",
            total: 2,
            entry: [{ resource: OBS("a", "123") }, { resource: OBS("b", "456") }],
          },
        }),
      check: (r) => {
        if (r.status !== 200) return `HTTP ${r.status}`;
        const ids = (r.json?.response?.entry ?? []).map((e) => e.resource?.id);
        if (JSON.stringify(ids) !== '["a"]') return `released ${JSON.stringify(ids)}, expected ["a"]`;
        const total = r.json?.response?.total;
        if (total !== undefined && total !== 1) return `total ${total} leaks the dropped entry`;
        return undefined;
      },
    },
    {
      name: "batch -> per-entry decisions [filter, deny]",
      path: "/v1/decision",
      body: () =>
        body(t.patient, {
          request: {
            method: "POST",
            url: "",
            body: {
              resourceType: "Bundle",
              type: "batch",
              entry: [{ request: GET_OBS1 }, { request: { method: "GET", url: "Condition/1" } }],
            },
          },
        }),
      check: (r) => {
        if (r.status !== 200) return `HTTP ${r.status}`;
        const e = (r.json?.entries ?? []).map((x) => x.decision);
        return JSON.stringify(e) === '["filter","deny"]' ? undefined : `entries ${JSON.stringify(e)}`;
      },
    },
    {
      name: "gateway mode, scope missing -> HTTP 403 insufficient_scope",
      path: "/v1/decision?mode=gateway",
      body: () => body(t.patient, { request: { method: "GET", url: "Condition/1" } }),
      check: (r) =>
        r.status === 403 &&
        /error="insufficient_scope", scope="patient\/Condition\.r"/.test(r.headers["www-authenticate"] ?? "")
          ? undefined
          : `HTTP ${r.status} ${r.headers["www-authenticate"]}`,
    },
    {
      name: "fresh token (verified, not cached), own Observation -> allow",
      path: "/v1/decision",
      body: () => body(t.fresh(), { request: GET_OBS1, resource: OBS("1", "123") }),
      check: expectDecision({ decision: "allow" }),
    },
    {
      name: "transaction with a denied entry -> deny",
      path: "/v1/decision",
      body: () =>
        body(t.patient, {
          request: {
            method: "POST",
            url: "",
            body: {
              resourceType: "Bundle",
              type: "transaction",
              entry: [{ request: { method: "POST", url: "Observation" }, resource: OBS("n", "456") }],
            },
          },
        }),
      check: expectDecision({ decision: "deny", status: 403 }),
    },
  ];
}

async function mintTokens(privateKey, kid, freshCount) {
  const exp = Math.floor(Date.now() / 1000) + DURATION_S + 900;
  const sign = (claims, expiry = exp) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(expiry)
      .sign(privateKey);
  const patientClaims = { scope: "launch/patient patient/Observation.crs openid fhirUser", patient: "123" };
  const patient = await sign(patientClaims);
  const [h, , s] = patient.split(".");
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...patientClaims, patient: "456", iss: ISSUER, aud: AUDIENCE, exp })).toString("base64url")}.${s}`;
  const fresh = [];
  for (let i = 0; i < freshCount; i++) fresh.push(await sign({ ...patientClaims, jti: `soak-${i}` }));
  let next = 0;
  return {
    patient,
    user: await sign({ scope: "user/Observation.rs?category=laboratory", fhirUser: "Practitioner/9" }),
    system: await sign({ scope: "system/*.rs" }),
    expired: await sign(patientClaims, Math.floor(Date.now() / 1000) - 3600),
    tampered,
    fresh: () => fresh[next++ % fresh.length],
  };
}

// --- HTTP -------------------------------------------------------------------------------------------

// Idle keep-alive sockets are dropped after 4 s, before the server's keepAliveTimeout (Node's
// default 5 s) closes them: otherwise a request can race the server's close and get ECONNRESET,
// which is what a gateway with a longer upstream idle timeout would see (see docs/testing.md).
// FIFO spreads requests over the open sockets so that few sit idle.
const agent = new Agent({ keepAlive: true, maxSockets: 64, timeout: 4000, scheduling: "fifo" });

function send(base, path, payload) {
  const data = Buffer.from(JSON.stringify(payload));
  const url = new URL(path, base);
  return new Promise((resolveReply) => {
    const started = performance.now();
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": data.length },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolveReply({
            ok: true,
            status: res.statusCode,
            headers: res.headers,
            json,
            text,
            ms: performance.now() - started,
          });
        });
        res.on("error", (err) =>
          resolveReply({ ok: false, error: err.message, ms: performance.now() - started }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", (err) =>
      resolveReply({ ok: false, error: err.message, ms: performance.now() - started }),
    );
    req.end(data);
  });
}

async function getJson(base, path) {
  const res = await fetch(new URL(path, base));
  return { status: res.status, json: await res.json() };
}

function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

const quantile = (sorted, q) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

// --- Main ---------------------------------------------------------------------------------------------

async function main() {
  for (const f of [CLI, BUNDLE]) {
    if (!existsSync(f)) {
      console.error(`${f} is missing: run \`make build\` first`);
      process.exit(2);
    }
  }
  const work = mkdtempSync(join(tmpdir(), "smart-authz-soak-"));
  const failures = [];
  const events = [];
  let server;
  try {
    // Bundles and config.
    const bundlePath = join(work, "bundle.tar.gz");
    copyFileSync(BUNDLE, bundlePath);
    const good = readFileSync(bundlePath);
    const rev1 = revisionOf(bundlePath, work);
    const rev2 = `${rev1}-soak2`;
    rebrand(bundlePath, rev2, join(work, "good2.tar.gz"), work);
    garbageWasmBundle(bundlePath, join(work, "garbage-wasm.tar.gz"), work);
    const good2 = readFileSync(join(work, "good2.tar.gz"));
    const garbageWasm = readFileSync(join(work, "garbage-wasm.tar.gz"));
    const truncated = good.subarray(0, Math.floor(good.length / 3));
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "soak-1", alg: "ES256", use: "sig" };
    const configPath = join(work, "smart-authz.yaml");
    writeFileSync(configPath, configYaml(jwk));

    // The service.
    server = spawn(process.execPath, [CLI, "serve", "--config", configPath], {
      cwd: work,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let exited;
    const exitedP = new Promise((r) => server.on("exit", (code, signal) => r((exited = { code, signal }))));
    let stderr = "";
    server.stderr.on("data", (c) => (stderr = (stderr + c).slice(-4000)));
    const logLines = { error: 0, warn: 0 };
    const base = await new Promise((resolveBase, rejectBase) => {
      let buf = "";
      const timer = setTimeout(
        () => rejectBase(new Error(`the service did not announce its address in 60 s\n${stderr}`)),
        60_000,
      );
      server.stdout.on("data", (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            const o = JSON.parse(line);
            if (o.level >= 50) logLines.error++;
            else if (o.level >= 40) logLines.warn++;
            if (typeof o.listen === "string") {
              clearTimeout(timer);
              resolveBase(o.listen);
            }
          } catch {
            // not a JSON log line (banner text)
          }
        }
      });
      server.on("exit", () => rejectBase(new Error(`the service exited during start\n${stderr}`)));
    });
    log(`service pid ${server.pid} at ${base}, revision ${rev1}; ${DURATION_S} s at ${RATE} req/s`);

    const totalPlanned = Math.ceil(DURATION_S * RATE);
    const tokens = await mintTokens(privateKey, jwk.kid, Math.ceil(totalPlanned / 15) + 100);
    const mix = buildMix(tokens);

    // The mix must be right before it can judge the service.
    for (const m of mix) {
      const r = await send(base, m.path, m.body());
      const why = r.ok ? m.check(r) : r.error;
      if (why) throw new Error(`mix self-check failed: "${m.name}": ${why}\n${r.text ?? ""}`);
    }
    log(`mix self-check passed (${mix.length} kinds of request)`);

    // Load.
    const buckets = [];
    const bucketOf = (t) =>
      (buckets[Math.floor(t / BUCKET_S)] ??= {
        requests: 0,
        errors: 0,
        wrong: 0,
        lat: [],
        rss: [],
        load: [],
      });
    const revisionsSeen = new Map();
    const wrongSamples = [];
    const errorSamples = [];
    let sent = 0;
    let done = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const t0 = performance.now();
    const elapsedS = () => (performance.now() - t0) / 1000;

    const fire = (m) => {
      const at = elapsedS();
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      void send(base, m.path, m.body()).then((r) => {
        inFlight--;
        done++;
        const b = bucketOf(at);
        b.requests++;
        if (!r.ok) {
          b.errors++;
          if (errorSamples.length < 20) errorSamples.push({ t: at.toFixed(1), kind: m.name, error: r.error });
          return;
        }
        b.lat.push(r.ms);
        const rev = r.headers["x-policy-revision"];
        if (rev !== undefined) {
          const seen = revisionsSeen.get(rev);
          if (!seen) revisionsSeen.set(rev, { first: at, last: at, count: 1 });
          else {
            seen.last = at;
            seen.count++;
          }
        }
        let why = m.check(r);
        if (!why && rev !== undefined && rev !== rev1 && rev !== rev2)
          why = `served by unexpected revision ${rev}`;
        if (why) {
          if (r.status >= 500) b.errors++;
          else b.wrong++;
          if (wrongSamples.length < 20)
            wrongSamples.push({ t: at.toFixed(1), kind: m.name, why, body: r.text.slice(0, 300) });
        }
      });
    };

    // RSS sampler.
    const rss = [];
    const sampleRss = () => {
      const mb = rssMb(server.pid);
      if (mb !== undefined) {
        rss.push({ t: Math.round(elapsedS()), mb });
        bucketOf(elapsedS()).rss.push(mb);
        bucketOf(elapsedS()).load.push(loadavg()[0]);
      }
    };
    sampleRss();
    const rssTimer = setInterval(sampleRss, RSS_SAMPLE_MS);

    // Faults, at 25%, 37.5%, 50% and 75% of the run.
    const statusOf = async () => (await getJson(base, "/status")).json.bundle;
    const faults = [
      {
        at: 0.25,
        name: "bundle replaced by one whose policy.wasm is garbage",
        run: async () => {
          const before = await statusOf();
          replaceFile(bundlePath, garbageWasm);
          await sleep(3000);
          const after = await statusOf();
          const ok = after.revision === rev1 && after.failures > before.failures && after.last_error;
          return {
            ok,
            detail: `revision ${after.revision}, failures ${before.failures}->${after.failures}, last_error: ${String(after.last_error).slice(0, 120)}`,
          };
        },
      },
      {
        at: 0.375,
        name: "bundle replaced by a truncated gzip",
        run: async () => {
          const before = await statusOf();
          replaceFile(bundlePath, truncated);
          await sleep(3000);
          const after = await statusOf();
          const ok = after.revision === rev1 && after.failures > before.failures;
          return {
            ok,
            detail: `revision ${after.revision}, failures ${before.failures}->${after.failures}, last_error: ${String(after.last_error).slice(0, 120)}`,
          };
        },
      },
      {
        at: 0.5,
        name: `good bundle with a new revision (${rev2})`,
        run: async () => {
          const before = await statusOf();
          replaceFile(bundlePath, good2);
          let after = before;
          for (let i = 0; i < 20 && after.revision !== rev2; i++) {
            await sleep(500);
            after = await statusOf();
          }
          return {
            ok: after.revision === rev2 && after.activations > before.activations,
            detail: `revision ${before.revision}->${after.revision}, activations ${before.activations}->${after.activations}`,
          };
        },
      },
      {
        at: 0.75,
        name: "config overwritten with invalid YAML, then SIGHUP",
        run: async () => {
          const before = await statusOf();
          writeFileSync(configPath, "server: [unclosed\ntokens: {{{\n\t- not yaml\n");
          server.kill("SIGHUP");
          await sleep(3000);
          const alive = exited === undefined && server.exitCode === null;
          const after = alive ? await statusOf() : undefined;
          const ok = alive && after.revision === rev2;
          return {
            ok,
            detail: alive
              ? `still serving revision ${after.revision} (SIGHUP reloads the bundle; the config is read only at start), activations ${before.activations}->${after.activations}`
              : `the service exited: ${JSON.stringify(exited)}`,
          };
        },
      },
    ];
    const faultRuns = faults.map((f) =>
      sleep(f.at * DURATION_S * 1000).then(async () => {
        const t = elapsedS();
        log(`fault: ${f.name}`);
        let result;
        try {
          result = await f.run();
        } catch (err) {
          result = { ok: false, detail: String(err) };
        }
        events.push({
          t: Number(t.toFixed(1)),
          event: f.name,
          ok: Boolean(result.ok),
          detail: result.detail,
        });
        log(`  ${result.ok ? "ok" : "FAILED"}: ${result.detail}`);
        if (!result.ok) failures.push(`fault "${f.name}": ${result.detail}`);
      }),
    );

    // Open-loop pacing: the number of requests due by now, whatever the answers' latency.
    await new Promise((resolveLoad) => {
      const tick = setInterval(() => {
        const t = elapsedS();
        if (t >= DURATION_S) {
          clearInterval(tick);
          resolveLoad();
          return;
        }
        const due = Math.floor(t * RATE);
        while (sent < due) fire(mix[sent++ % mix.length]);
        if (exited) {
          clearInterval(tick);
          resolveLoad();
        }
      }, 5);
      const progress = setInterval(() => {
        if (elapsedS() >= DURATION_S || exited) return clearInterval(progress);
        const b = buckets.filter(Boolean);
        const errors = b.reduce((n, x) => n + x.errors, 0);
        const wrong = b.reduce((n, x) => n + x.wrong, 0);
        log(
          `${Math.round(elapsedS())} s: ${done} answered, ${errors} errors, ${wrong} wrong, in flight ${inFlight}, rss ${rss.at(-1)?.mb} MB`,
        );
      }, 60_000);
    });
    await Promise.all(faultRuns);
    for (let i = 0; i < 200 && inFlight > 0; i++) await sleep(50);
    clearInterval(rssTimer);
    sampleRss();
    const loadSeconds = elapsedS();
    if (inFlight > 0) failures.push(`${inFlight} requests still unanswered 10 s after the end`);
    if (exited) failures.push(`the service exited during the run: ${JSON.stringify(exited)}\n${stderr}`);

    // Graceful stop.
    server.kill("SIGTERM");
    const stop = await Promise.race([exitedP, sleep(20_000).then(() => undefined)]);
    if (!stop) {
      failures.push("the service did not exit within 20 s of SIGTERM");
      server.kill("SIGKILL");
    } else if (stop.code !== 0) failures.push(`the service exited with ${JSON.stringify(stop)} on SIGTERM`);

    // Figures.
    const rows = buckets.slice(0, Math.ceil(DURATION_S / BUCKET_S)).map((b, i) => {
      const lat = [...(b?.lat ?? [])].sort((x, y) => x - y);
      return {
        from_s: i * BUCKET_S,
        requests: b?.requests ?? 0,
        errors: b?.errors ?? 0,
        wrong: b?.wrong ?? 0,
        p50_ms: Number(quantile(lat, 0.5).toFixed(2)),
        p99_ms: Number(quantile(lat, 0.99).toFixed(2)),
        max_ms: Number((lat.at(-1) ?? 0).toFixed(2)),
        rss_mb: b?.rss.length ? Math.max(...b.rss) : null,
        load1: b?.load.length ? Number(Math.max(...b.load).toFixed(2)) : null,
      };
    });
    const all = buckets.flatMap((b) => b?.lat ?? []).sort((x, y) => x - y);
    const errors = rows.reduce((n, r) => n + r.errors, 0);
    const wrong = rows.reduce((n, r) => n + r.wrong, 0);
    const answered = rows.reduce((n, r) => n + r.requests, 0);
    // Stability is judged on full buckets after the first (which holds start-up and JIT warm-up).
    const full = rows.filter((r, i) => i > 0 && r.from_s + BUCKET_S <= DURATION_S && r.requests > 0);
    const p99s = full.map((r) => r.p99_ms).sort((x, y) => x - y);
    const p99Median = quantile(p99s, 0.5);
    const p99Limit = Math.max(P99_FACTOR * p99Median, P99_FLOOR_MS);
    const warm = rss.find((s) => s.t >= Math.min(60, DURATION_S / 5)) ?? rss[0];
    const endRss = rss.at(-1);
    const maxRss = Math.max(...rss.map((s) => s.mb));
    const growth = warm && endRss ? (endRss.mb - warm.mb) / warm.mb : 0;
    const secondHalf = rss.filter((s) => s.t >= DURATION_S / 2);
    const slope = linearSlope(secondHalf.map((s) => [s.t / 60, s.mb]));

    if (errors > 0) failures.push(`${errors} failed requests`);
    if (wrong > 0) failures.push(`${wrong} wrong answers`);
    if (sent < 0.98 * DURATION_S * RATE)
      failures.push(`only ${sent} requests sent of ${Math.round(DURATION_S * RATE)} planned`);
    for (const r of full)
      if (r.p99_ms > p99Limit)
        failures.push(
          `p99 ${r.p99_ms} ms in the bucket from ${r.from_s} s exceeds ${p99Limit.toFixed(1)} ms`,
        );
    const half = Math.floor(full.length / 2);
    const medianP99 = (rs) =>
      quantile(
        rs.map((r) => r.p99_ms).sort((x, y) => x - y),
        0.5,
      );
    const firstHalfP99 = medianP99(full.slice(0, half));
    const secondHalfP99 = medianP99(full.slice(half));
    if (half > 0 && secondHalfP99 > P99_DRIFT * firstHalfP99 + 10) {
      failures.push(
        `p99 drifted up: median bucket p99 ${firstHalfP99} ms in the first half, ${secondHalfP99} ms in the second`,
      );
    }
    if (warm && endRss && (growth > RSS_MAX_GROWTH || endRss.mb - warm.mb > RSS_MAX_GROWTH_MB)) {
      failures.push(
        `RSS grew from ${warm.mb} MB (t=${warm.t} s) to ${endRss.mb} MB (+${(growth * 100).toFixed(0)}%)`,
      );
    }
    const revisions = Object.fromEntries(
      [...revisionsSeen].map(([k, v]) => [
        k,
        { ...v, first: Number(v.first.toFixed(1)), last: Number(v.last.toFixed(1)) },
      ]),
    );
    if (!revisionsSeen.has(rev2)) failures.push(`no response came from the new revision ${rev2}`);
    const lateOld = revisionsSeen.get(rev1)?.last;
    const switched = revisionsSeen.get(rev2)?.first;
    if (lateOld !== undefined && switched !== undefined && lateOld > switched + 5) {
      failures.push(
        `revision ${rev1} still answered ${(lateOld - switched).toFixed(1)} s after ${rev2} took over`,
      );
    }

    const results = {
      when: new Date().toISOString(),
      duration_s: DURATION_S,
      load_seconds: Number(loadSeconds.toFixed(1)),
      target_rate: RATE,
      achieved_rate: Number((answered / loadSeconds).toFixed(1)),
      mix: mix.map((m) => m.name),
      requests: { sent, answered, errors, wrong, max_in_flight: maxInFlight },
      latency_ms: {
        p50: Number(quantile(all, 0.5).toFixed(2)),
        p90: Number(quantile(all, 0.9).toFixed(2)),
        p99: Number(quantile(all, 0.99).toFixed(2)),
        p999: Number(quantile(all, 0.999).toFixed(2)),
        max: Number((all.at(-1) ?? 0).toFixed(2)),
        bucket_p99_median: p99Median,
        bucket_p99_limit: Number(p99Limit.toFixed(1)),
        bucket_p99_median_first_half: firstHalfP99,
        bucket_p99_median_second_half: secondHalfP99,
      },
      rss_mb: {
        after_warmup: warm,
        end: endRss,
        max: maxRss,
        growth_pct: Number((growth * 100).toFixed(1)),
        second_half_slope_mb_per_min: Number(slope.toFixed(2)),
        samples: rss,
      },
      buckets: { seconds: BUCKET_S, rows },
      faults: events,
      revisions,
      server_log: logLines,
      wrong_samples: wrongSamples,
      error_samples: errorSamples,
      pass: failures.length === 0,
      failures,
    };
    mkdirSync(OUT_DIR, { recursive: true });
    writeFileSync(join(OUT_DIR, "results.json"), JSON.stringify(results, null, 2));
    printSummary(results);
    return failures.length === 0 ? 0 : 1;
  } catch (err) {
    console.error(`soak aborted: ${err instanceof Error ? err.stack : String(err)}`);
    return 1;
  } finally {
    if (server && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
    agent.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

function linearSlope(points) {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const num = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

function printSummary(r) {
  const pad = (v, n) => String(v).padStart(n);
  const lines = [
    "",
    `soak: ${r.load_seconds} s at ${r.target_rate} req/s target (${r.achieved_rate} achieved), ${r.mix.length}-request mix, loopback`,
    `requests: ${r.requests.sent} sent, ${r.requests.answered} answered, ${r.requests.errors} failed, ${r.requests.wrong} wrong, max ${r.requests.max_in_flight} in flight`,
    `latency: p50 ${r.latency_ms.p50} ms, p90 ${r.latency_ms.p90} ms, p99 ${r.latency_ms.p99} ms, p99.9 ${r.latency_ms.p999} ms, max ${r.latency_ms.max} ms`,
    "",
    `  from s  requests  errors  wrong   p50 ms   p99 ms    max ms   rss MB  load1`,
    ...r.buckets.rows.map(
      (x) =>
        `  ${pad(x.from_s, 6)}  ${pad(x.requests, 8)}  ${pad(x.errors, 6)}  ${pad(x.wrong, 5)}  ${pad(x.p50_ms, 7)}  ${pad(x.p99_ms, 7)}  ${pad(x.max_ms, 8)}  ${pad(x.rss_mb ?? "-", 7)}  ${pad(x.load1 ?? "-", 5)}`,
    ),
    "",
    `p99 per ${r.buckets.seconds} s bucket (after the first): median ${r.latency_ms.bucket_p99_median} ms, limit ${r.latency_ms.bucket_p99_limit} ms; median ${r.latency_ms.bucket_p99_median_first_half} ms in the first half, ${r.latency_ms.bucket_p99_median_second_half} ms in the second`,
    `RSS: ${r.rss_mb.after_warmup?.mb} MB after warm-up (t=${r.rss_mb.after_warmup?.t} s), ${r.rss_mb.end?.mb} MB at the end, max ${r.rss_mb.max} MB, growth ${r.rss_mb.growth_pct}%, second-half slope ${r.rss_mb.second_half_slope_mb_per_min} MB/min`,
    "faults:",
    ...r.faults.map((f) => `  t=${f.t} s  ${f.ok ? "ok    " : "FAILED"}  ${f.event}: ${f.detail}`),
    `revisions answering: ${Object.entries(r.revisions)
      .map(([k, v]) => `${k} (${v.count} responses, ${v.first}-${v.last} s)`)
      .join("; ")}`,
    `server log: ${r.server_log.error} error lines, ${r.server_log.warn} warnings`,
    ...(r.wrong_samples.length
      ? ["wrong answers (first 20):", ...r.wrong_samples.map((w) => `  ${JSON.stringify(w)}`)]
      : []),
    ...(r.error_samples.length
      ? ["failed requests (first 20):", ...r.error_samples.map((w) => `  ${JSON.stringify(w)}`)]
      : []),
    "",
    r.pass ? "SOAK PASSED" : `SOAK FAILED:\n  ${r.failures.join("\n  ")}`,
    `results: ${join(OUT_DIR, "results.json")}`,
  ];
  console.log(lines.join("\n"));
}

process.exitCode = await main();
