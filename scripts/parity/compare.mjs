// Compares every host's results with the reference (OPA topdown on the Rego) and prints a table.
//   node scripts/parity/compare.mjs <cases.json> <results dir> <reference host> <host>...
// <results dir>/<host>.json is a host's output ([{id, result} | {id, undefined: true} | {id, error}]);
// <results dir>/<host>.status, written by run.sh, is "<exit code> <seconds>"; <results dir>/<host>.cases,
// if present, holds the path of the (smaller) cases file that host was given.
// Results are compared as canonical JSON: object keys sorted, arrays in order, numbers compared by
// exact decimal value (1, 1.0 and 1e0 are equal; 12345678901234567890 and 12345678901234567000 are not).
// Exits 1 on any disagreement, any per-case error and any host that failed or left cases out.
import { readFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [casesPath, dir, reference, ...others] = process.argv.slice(2);
if (!casesPath || !dir || !reference) {
  console.error("usage: compare.mjs <cases.json> <results dir> <reference host> <host>...");
  process.exit(2);
}

// ---- lossless JSON: numbers stay as their decimal text, then get a canonical spelling ----------
class Num {
  constructor(text) {
    this.text = canonicalNumber(text);
  }
}

function canonicalNumber(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`bad number ${text}`);
  let digits = (m[2] + (m[3] ?? "")).replace(/^0+/, "");
  let exp = Number(m[4] ?? 0) - (m[3] ?? "").length;
  if (digits === "") return "0";
  const stripped = digits.replace(/0+$/, "");
  exp += digits.length - stripped.length;
  digits = stripped;
  const sign = m[1];
  if (exp >= 0 && digits.length + exp <= 21) return sign + digits + "0".repeat(exp);
  if (exp < 0 && -exp < digits.length) return `${sign}${digits.slice(0, exp)}.${digits.slice(exp)}`;
  if (exp < 0 && -exp - digits.length < 6) return `${sign}0.${"0".repeat(-exp - digits.length)}${digits}`;
  const e = exp + digits.length - 1;
  return `${sign}${digits[0]}${digits.length > 1 ? "." + digits.slice(1) : ""}e${e >= 0 ? "+" : ""}${e}`;
}

function parseJSON(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i])) i++;
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const o = {};
      ws();
      if (text[i] === "}") return (i++, o);
      for (;;) {
        ws();
        const k = string();
        ws();
        if (text[i++] !== ":") throw new Error(`expected ':' at ${i}`);
        o[k] = value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i++] === "}") return o;
        else throw new Error(`expected ',' or '}' at ${i}`);
      }
    }
    if (c === "[") {
      i++;
      const a = [];
      ws();
      if (text[i] === "]") return (i++, a);
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i++] === "]") return a;
        else throw new Error(`expected ',' or ']' at ${i}`);
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ]) {
      if (text.startsWith(word, i)) return ((i += word.length), v);
    }
    const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) throw new Error(`unexpected ${JSON.stringify(text.slice(i, i + 20))} at ${i}`);
    i += m[0].length;
    return new Num(m[0]);
  };
  const string = () => {
    if (text[i] !== '"') throw new Error(`expected string at ${i}`);
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
    const s = JSON.parse(text.slice(i, j + 1));
    i = j + 1;
    return s;
  };
  const v = value();
  ws();
  if (i !== text.length) throw new Error(`trailing text at ${i}`);
  return v;
}

/** Canonical JSON text: sorted keys, arrays in order, canonical numbers. */
function canon(v) {
  if (v instanceof Num) return v.text;
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(v[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

const short = (s, n = 160) => (s.length > n ? s.slice(0, n) + `…(${s.length} chars)` : s);

/** Paths where two values differ, as "path: reference → host" lines. */
function diff(a, b, path = "$", out = []) {
  if (out.length >= 8) return out;
  const ca = canon(a);
  const cb = canon(b);
  if (ca === cb) return out;
  const isObj = (x) => x && typeof x === "object" && !Array.isArray(x) && !(x instanceof Num);
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const p = `${path}.${/^[A-Za-z_][\w]*$/.test(k) ? k : JSON.stringify(k)}`;
      if (!(k in b)) out.push(`${p}: ${short(canon(a[k]))} → (missing)`);
      else if (!(k in a)) out.push(`${p}: (missing) → ${short(canon(b[k]))}`);
      else diff(a[k], b[k], p, out);
    }
  } else if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diff(x, b[i], `${path}[${i}]`, out));
  } else {
    out.push(`${path}: ${short(ca)} → ${short(cb)}`);
  }
  return out;
}

// ---- load ---------------------------------------------------------------------------------------
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
const hosts = [reference, ...others];
const loaded = {};
for (const host of hosts) {
  const file = join(dir, `${host}.json`);
  const statusFile = join(dir, `${host}.status`);
  const [rc, secs] = existsSync(statusFile)
    ? readFileSync(statusFile, "utf8").trim().split(/\s+/)
    : ["?", "?"];
  // A host may have been given a subset of the cases: <host>.cases then names its cases file.
  const casesFile = join(dir, `${host}.cases`);
  const own = existsSync(casesFile)
    ? JSON.parse(readFileSync(readFileSync(casesFile, "utf8").trim(), "utf8"))
    : cases;
  const entry = { rc, secs, byId: new Map(), problem: null, cases: own };
  loaded[host] = entry;
  if (rc !== "0" && rc !== "?") entry.problem = `exited ${rc}`;
  if (!existsSync(file)) {
    entry.problem ??= "no output";
    continue;
  }
  try {
    for (const o of parseJSON(readFileSync(file, "utf8"))) {
      // Outcome: {"result": v} | {"undefined": true} | {"error": "..."}; errors compare by kind only.
      const outcome =
        "error" in o ? { error: true } : o.undefined === true ? { undefined: true } : { result: o.result };
      entry.byId.set(o.id, { outcome, error: o.error });
    }
  } catch (e) {
    entry.problem ??= `unreadable output: ${e.message}`;
  }
}

// ---- compare ------------------------------------------------------------------------------------
const ref = loaded[reference];
const rows = [];
const disagreements = [];
const errors = [];
for (const host of hosts) {
  const h = loaded[host];
  let agree = 0;
  let missing = 0;
  let errs = 0;
  for (const c of h.cases) {
    const got = h.byId.get(c.id);
    const want = ref.byId.get(c.id);
    if (!got) {
      missing++;
      continue;
    }
    if (got.error !== undefined) {
      errs++;
      errors.push({ host, id: c.id, error: got.error });
    }
    if (host === reference) {
      if (got.error === undefined) agree++;
      continue;
    }
    if (!want) continue;
    if (canon(got.outcome) !== canon(want.outcome))
      disagreements.push({ host, id: c.id, lines: diff(want.outcome, got.outcome) });
    else if (got.error === undefined) agree++; // both failing is listed under errors, not agreement
  }
  const disagree = disagreements.filter((d) => d.host === host).length;
  rows.push({
    host,
    agree,
    total: h.cases.length,
    missing,
    errs,
    disagree,
    secs: h.secs,
    problem: h.problem,
  });
}

const ok =
  rows.every((r) => r.agree === r.total && !r.problem) && disagreements.length === 0 && errors.length === 0;
const lines = [];
lines.push(`| host | agrees with ${reference} | errors | run time | status |`);
lines.push("|---|---|---|---|---|");
for (const r of rows) {
  const status =
    r.problem ??
    (r.missing ? `${r.missing} cases missing` : r.disagree ? "DISAGREES" : r.errs ? "ERRORS" : "ok");
  const label = r.host === reference ? `${r.host} (reference)` : r.host;
  lines.push(`| ${label} | ${r.agree}/${r.total} | ${r.errs} | ${r.secs}s | ${status} |`);
}
console.log(lines.join("\n"));
writeFileSync(join(dir, "table.md"), lines.join("\n") + "\n");

for (const host of hosts.filter((h) => loaded[h].problem)) {
  console.log(`\nhost ${host} failed (${loaded[host].problem}); see ${join(dir, host + ".log")}`);
}
if (errors.length) {
  const groups = new Map();
  for (const e of errors) {
    const key = `${e.host}\n${e.error}`;
    if (!groups.has(key)) groups.set(key, { host: e.host, error: e.error, ids: [] });
    groups.get(key).ids.push(e.id);
  }
  console.log(`\nerrors (${errors.length}):`);
  for (const g of groups.values()) {
    const ids = g.ids.length > 12 ? [...g.ids.slice(0, 12), `… ${g.ids.length - 12} more`] : g.ids;
    console.log(`  ${g.host} (${g.ids.length} case${g.ids.length > 1 ? "s" : ""}): ${ids.join(", ")}`);
    console.log(`      ${short(g.error, 300)}`);
  }
}
if (disagreements.length) {
  // Cases of one host that differ in exactly the same way are listed together.
  const groups = new Map();
  for (const d of disagreements) {
    const key = `${d.host}\n${d.lines.join("\n")}`;
    if (!groups.has(key)) groups.set(key, { host: d.host, lines: d.lines, ids: [] });
    groups.get(key).ids.push(d.id);
  }
  console.log(`\ndisagreements (${disagreements.length}), as path: ${reference} → host:`);
  for (const g of groups.values()) {
    const ids = g.ids.length > 12 ? [...g.ids.slice(0, 12), `… ${g.ids.length - 12} more`] : g.ids;
    console.log(`  ${g.host} (${g.ids.length} case${g.ids.length > 1 ? "s" : ""}): ${ids.join(", ")}`);
    for (const l of g.lines) console.log(`      ${l}`);
  }
  writeFileSync(join(dir, "disagreements.json"), JSON.stringify(disagreements, null, 1) + "\n");
}
console.log(ok ? `\nparity: all ${hosts.length} hosts agree (${cases.length} cases)` : "\nparity: FAILED");
process.exit(ok ? 0 : 1);
