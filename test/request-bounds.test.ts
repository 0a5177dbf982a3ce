/**
 * H5 (host part): a request is bounded before it is evaluated (URL length, parameter count,
 * repeats of one name; on every front door and inside batch bodies), and a client whose requests
 * keep running into the evaluation deadline is refused with 429 while other clients are served.
 * INFO: connections are capped, and a slow client cannot hold a socket. Through HTTP, against the
 * real service with the fixture policy, whose `Slow…` URLs take seconds to decide.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Decision } from "../src/core/contract.js";
import { startService, type Service } from "../src/server.js";
import { TimeoutLimiter } from "../src/api/rate-limit.js";
import { LogSink, buildFixtureBundle, tempDir } from "./helpers/fixtures.js";
import { OpenApiChecker } from "./helpers/openapi.js";
import { TestIssuer } from "./helpers/servers.js";
import { serviceConfig, type ServiceConfigSpec } from "./helpers/service-config.js";

const openapi = new OpenApiChecker();
let issuer: TestIssuer;
let service: Service;

function spec(extra: Partial<ServiceConfigSpec> = {}): ServiceConfigSpec {
  return {
    issuers: [issuer.configEntry],
    bundle: buildFixtureBundle("rev-1"),
    ...extra,
  };
}

async function start(extra: Partial<ServiceConfigSpec> = {}, env: NodeJS.ProcessEnv = {}): Promise<Service> {
  const config = serviceConfig(tempDir(), spec(extra), env);
  return startService(config, { logDestination: new LogSink(), defaultMetrics: false });
}

interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked against openapi.yaml
}

async function call(
  method: string,
  path: string,
  init: { body?: unknown; raw?: string; headers?: Record<string, string>; base?: string } = {},
): Promise<Reply> {
  const headers = { ...(init.headers ?? {}) };
  let body = init.raw;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(`${init.base ?? service.url}${path}`, { method, headers, body });
  const text = await res.text();
  const parsed = res.headers.get("content-type")?.includes("json") && text ? JSON.parse(text) : text;
  openapi.check(method, path, res.status, res.headers.get("content-type"), parsed);
  return { status: res.status, headers: res.headers, body: parsed };
}

const params = (name: (i: number) => string, n: number) =>
  Array.from({ length: n }, (_, i) => `${name(i)}=1`).join("&");

beforeAll(async () => {
  issuer = await TestIssuer.start();
  service = await start();
});
afterAll(async () => {
  await service?.close();
  await issuer?.close();
});

describe("request bounds, before evaluation (H5)", () => {
  let token: string;
  beforeAll(async () => {
    token = await issuer.token();
  });
  const decide = (request: Record<string, unknown>, query = "") =>
    call("POST", `/v1/decision${query}`, { body: { token, request } });

  it("refuses a URL over max_url_bytes with 400 and an OperationOutcome, in both modes", async () => {
    const at = `Observation?code=${"a".repeat(8192 - "Observation?code=".length)}`;
    expect((await decide({ method: "GET", url: at })).body.decision).toBe("allow");
    const over = { method: "GET", url: `${at}a` };
    const plain = await decide(over);
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({
      decision: "deny",
      status: 400,
      reasons: [{ code: "url-too-long" }],
      outcome: { resourceType: "OperationOutcome", issue: [{ code: "too-long" }] },
    });
    expect(plain.body.reasons[0].message).toContain(
      "8193 bytes, over the limit of 8192 (limits.max_url_bytes)",
    );
    const gateway = await decide(over, "?mode=gateway");
    expect(gateway.status).toBe(400);
    expect(gateway.body.reasons[0].code).toBe("url-too-long");
  });

  it("counts bytes, not characters", async () => {
    const url = `Observation?code=${"é".repeat(4096)}`; // 4096 characters, 8192 bytes + the prefix
    expect((await decide({ method: "GET", url })).body.reasons?.[0]?.code).toBe("url-too-long");
  });

  it("refuses more than max_parameters parameters and more than max_parameter_repeats of one name", async () => {
    const hundred = `Observation?${params((i) => `p${i}`, 100)}`;
    expect((await decide({ method: "GET", url: hundred })).body.decision).toBe("allow");
    const more = await decide({ method: "GET", url: `${hundred}&x=1` });
    expect(more.body).toMatchObject({
      status: 400,
      reasons: [{ code: "too-many-parameters" }],
      outcome: { issue: [{ code: "too-costly" }] },
    });
    const twenty = `Observation?${params(() => "_type", 20)}`;
    expect((await decide({ method: "GET", url: twenty })).body.decision).toBe("allow");
    // Spelled differently, still the same parameter.
    for (const extra of ["_type=1", "%5Ftype=1", "%5ftype", "_typ%65=x"]) {
      const r = await decide({ method: "GET", url: `${twenty}&${extra}` });
      expect(r.body.reasons?.[0]?.code, extra).toBe("parameter-repeated-too-often");
      expect(r.body.reasons[0].message).toContain('repeats the parameter "_type" more than 20 times');
    }
  });

  it("counts a POST _search form body with its URL, If-None-Exist, and every batch entry", async () => {
    const url = `Observation/_search?${params((i) => `u${i}`, 60)}`;
    expect((await decide({ method: "POST", url, body: params((i) => `b${i}`, 40) })).body.decision).toBe(
      "allow",
    );
    const form = await decide({ method: "POST", url, body: params((i) => `b${i}`, 41) });
    expect(form.body.reasons?.[0]?.code).toBe("too-many-parameters");
    const json = await decide({
      method: "POST",
      url: "Observation/_search",
      body: { code: Array(21).fill("x") },
    });
    expect(json.body.reasons?.[0]?.code).toBe("parameter-repeated-too-often");

    const ifNoneExist = await decide({
      method: "POST",
      url: "Observation",
      headers: { "if-none-exist": [`Observation?${params((i) => `q${i}`, 101)}`] },
      body: { resourceType: "Observation" },
    });
    expect(ifNoneExist.body.reasons?.[0]?.code).toBe("too-many-parameters");
    expect(ifNoneExist.body.reasons[0].message).toContain("If-None-Exist");

    const batch = (entryUrl: string, extra: Record<string, unknown> = {}) => ({
      method: "POST",
      url: "",
      body: {
        resourceType: "Bundle",
        type: "batch",
        entry: [
          { request: { method: "GET", url: "Observation?code=1" } },
          { request: { method: "GET", url: entryUrl, ...extra } },
        ],
      },
    });
    const entry = await decide(batch(`Observation?${params(() => "code", 21)}`));
    expect(entry.body.reasons?.[0]?.code).toBe("parameter-repeated-too-often");
    expect(entry.body.reasons[0].message).toContain("batch entry 1");
    const long = await decide(batch(`Observation?code=${"x".repeat(9000)}`));
    expect(long.body.reasons?.[0]?.code).toBe("url-too-long");
    const entryIfNoneExist = await decide(batch("Observation", { ifNoneExist: params(() => "code", 21) }));
    expect(entryIfNoneExist.body.reasons?.[0]?.code).toBe("parameter-repeated-too-often");
  });

  it("bounds the gateway's path, X-Original-URI and form body, /v1/filter and /v1/data", async () => {
    const auth = { authorization: `Bearer ${token}` };
    const path = await call("GET", `/v1/gateway/Observation?${params((i) => `p${i}`, 101)}`, {
      headers: auth,
    });
    expect(path.status).toBe(400);
    expect(path.body).toMatchObject({
      reasons: [{ code: "too-many-parameters" }],
      outcome: { resourceType: "OperationOutcome" },
    });
    const nginx = await call("GET", "/v1/gateway/auth", {
      headers: { ...auth, "x-original-uri": `/Observation?code=${"x".repeat(9000)}` },
    });
    expect(nginx.status).toBe(400);
    expect(nginx.body.reasons[0].code).toBe("url-too-long");
    const form = await call("POST", "/v1/gateway/Observation/_search", {
      headers: { ...auth, "content-type": "application/x-www-form-urlencoded" },
      raw: params(() => "code", 21),
    });
    expect(form.status).toBe(400);
    expect(form.body.reasons[0].code).toBe("parameter-repeated-too-often");

    const filter = await call("POST", "/v1/filter", {
      body: { token, request: { method: "GET", url: `Observation?${params(() => "a", 21)}` }, response: {} },
    });
    expect(filter.status).toBe(200);
    expect(filter.body).toMatchObject({ status: 400, response: { resourceType: "OperationOutcome" } });

    const data = await call("POST", "/v1/data/smart/api/decision", {
      body: { input: { token, request: { method: "GET", url: `Observation?${params(() => "a", 21)}` } } },
    });
    expect(data.status).toBe(400);
    expect(data.body.code).toBe("invalid_parameter");
    expect(data.body.message).toContain("parameter-repeated-too-often");
  });

  it("refuses before evaluating: an over-long request to a slow policy path is answered at once", async () => {
    const started = performance.now();
    const r = await decide({ method: "GET", url: `Slow?${params((i) => `p${i}`, 101)}` });
    expect(r.body.reasons?.[0]?.code).toBe("too-many-parameters");
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("takes its bounds from the config", async () => {
    const strict = await start({
      limits: { max_url_bytes: 64, max_parameters: 2, max_parameter_repeats: 1 },
    });
    try {
      const d = (url: string) =>
        call("POST", "/v1/decision", { base: strict.url, body: { token, request: { method: "GET", url } } });
      expect((await d("Observation?a=1&b=2")).body.decision).toBe("allow");
      expect((await d("Observation?a=1&a=2")).body.reasons[0].code).toBe("parameter-repeated-too-often");
      expect((await d("Observation?a=1&b=2&c=3")).body.reasons[0].code).toBe("too-many-parameters");
      expect((await d(`Observation?a=${"x".repeat(60)}`)).body.reasons[0].code).toBe("url-too-long");
    } finally {
      await strict.close();
    }
  });
});

describe("rate limit on clients that run into the evaluation deadline (H5)", () => {
  let limited: Service;
  beforeAll(async () => {
    limited = await start(
      { limits: { policy_timeouts: { burst: 1, refill_seconds: 3 } } },
      { SMART_AUTHZ_POOL_TIMEOUT_MS: "150", SMART_AUTHZ_POOL_WORKERS: "1" },
    );
  });
  afterAll(async () => {
    await limited?.close();
  });
  const decide = (token: string, url: string, query = "") =>
    call("POST", `/v1/decision${query}`, {
      base: limited.url,
      body: { token, request: { method: "GET", url } },
    });

  it("answers 429 with Retry-After to a client out of budget, without evaluating, and serves other clients", async () => {
    const alice = await issuer.token({ sub: "alice", client_id: "app" });
    const bob = await issuer.token({ sub: "bob", client_id: "app" });

    const slow = await decide(alice, "Slow/1");
    expect(slow.status).toBe(200);
    expect(slow.body).toMatchObject({ decision: "deny", status: 500, reasons: [{ code: "policy-timeout" }] });

    // Alice's budget (burst 1) is spent: everything she sends is refused at once, fail closed.
    for (const url of ["Slow/2", "Observation?code=1"]) {
      const started = performance.now();
      const r = await decide(alice, url);
      expect(r.status, url).toBe(429);
      expect(performance.now() - started).toBeLessThan(500);
      const retryAfter = Number(r.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(3);
      expect(r.body as Decision).toMatchObject({
        decision: "deny",
        status: 429,
        reasons: [{ code: "rate-limited" }],
        outcome: { resourceType: "OperationOutcome", issue: [{ code: "throttled" }] },
      });
      expect(r.headers.get("x-decision")).toBe("deny");
    }
    const gateway = await call("GET", "/v1/gateway/Observation", {
      base: limited.url,
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(gateway.status).toBe(429);
    const filter = await call("POST", "/v1/filter", {
      base: limited.url,
      body: { token: alice, request: { method: "GET", url: "Observation" }, response: {} },
    });
    expect(filter.status).toBe(429);
    expect(filter.body).toMatchObject({ status: 429, decision: { reasons: [{ code: "rate-limited" }] } });
    const data = await call("POST", "/v1/data/smart/api/decision", {
      base: limited.url,
      body: { input: { token: alice, request: { method: "GET", url: "Observation" } } },
    });
    expect(data.status).toBe(429);
    expect(data.headers.get("retry-after")).toMatch(/^\d+$/);

    // Bob, another user of the same app, is served.
    expect((await decide(bob, "Observation?code=1")).body.decision).toBe("allow");

    const metrics = await (await fetch(`${limited.url}/metrics`)).text();
    expect(metrics).toMatch(/smart_authz_policy_timeouts_total 1/);
    expect(metrics).toMatch(/smart_authz_rate_limited_total\{endpoint="decision"\} 2/);

    // Once the bucket has refilled, Alice is evaluated again.
    await new Promise((r) => setTimeout(r, retryAfterMs(gateway.headers)));
    expect((await decide(alice, "Observation?code=1")).body.decision).toBe("allow");
  });
});

function retryAfterMs(headers: Headers): number {
  return Number(headers.get("retry-after")) * 1000 + 100;
}

describe("TimeoutLimiter", () => {
  it("allows `burst` timeouts, then one more every refill period; 0 turns it off", () => {
    let now = 0;
    const limiter = new TimeoutLimiter({ burst: 2, refillMs: 1000 }, () => now);
    expect(limiter.retryAfterMs("a")).toBe(0);
    limiter.recordTimeout("a");
    expect(limiter.retryAfterMs("a")).toBe(0);
    limiter.recordTimeout("a");
    expect(limiter.retryAfterMs("a")).toBe(1000);
    expect(limiter.retryAfterMs("b")).toBe(0);
    now = 600;
    expect(limiter.retryAfterMs("a")).toBe(400);
    now = 1000;
    expect(limiter.retryAfterMs("a")).toBe(0);
    const off = new TimeoutLimiter({ burst: 0, refillMs: 1000 }, () => now);
    off.recordTimeout("a");
    expect(off.retryAfterMs("a")).toBe(0);
  });

  it("remembers a bounded number of clients, forgetting those with a full bucket first", () => {
    let now = 0;
    const limiter = new TimeoutLimiter({ burst: 1, refillMs: 1000 }, () => now, 2);
    limiter.recordTimeout("old");
    now = 5000; // "old" has refilled
    limiter.recordTimeout("a");
    limiter.recordTimeout("b");
    expect(limiter.size).toBe(2);
    expect(limiter.retryAfterMs("a")).toBeGreaterThan(0);
    expect(limiter.retryAfterMs("b")).toBeGreaterThan(0);
  });
});

describe("connections and slow clients (INFO)", () => {
  let small: Service;
  beforeAll(async () => {
    small = await start({
      server: { max_connections: 2, headers_timeout_seconds: 1, request_timeout_seconds: 2 },
    });
  });
  afterAll(async () => {
    await small?.close();
  });

  function open(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(small.port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
  }

  /** Everything the server sends until it closes the socket (or `ms` pass). */
  function drain(s: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
    return new Promise((resolve) => {
      let text = "";
      s.on("data", (d) => (text += d.toString("latin1")));
      const timer = setTimeout(() => resolve({ text, closed: false }), ms);
      s.once("close", () => {
        clearTimeout(timer);
        resolve({ text, closed: true });
      });
      s.on("error", () => undefined);
    });
  }

  it("closes connections beyond server.max_connections at once", async () => {
    const held = [await open(), await open()];
    const third = await open();
    const { closed } = await drain(third, 2000);
    expect(closed).toBe(true);
    held.forEach((s) => s.destroy());
    await new Promise((r) => setTimeout(r, 100));
    const ok = await open();
    ok.write("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect((await drain(ok, 3000)).text).toMatch(/^HTTP\/1\.1 200/);
  });

  it("answers 408 and closes a request whose body does not arrive within request_timeout_seconds", async () => {
    const s = await open();
    s.write(
      "POST /v1/decision HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    const started = performance.now();
    const { text, closed } = await drain(s, 6000);
    expect(text).toMatch(/^HTTP\/1\.1 408/);
    expect(closed).toBe(true);
    expect(performance.now() - started).toBeLessThan(4000);
  });

  it("answers 408 to headers that do not arrive within headers_timeout_seconds", async () => {
    const s = await open();
    s.write("GET /health HTTP/1.1\r\nHost: x\r\n");
    const { text, closed } = await drain(s, 5000);
    expect(text).toMatch(/^HTTP\/1\.1 408/);
    expect(closed).toBe(true);
  });

  it("keeps an idle keep-alive connection open past both clocks", async () => {
    const s = await open();
    const replies: string[] = [];
    let buffer = "";
    s.on("data", (d) => {
      buffer += d.toString("latin1");
      const m = /HTTP\/1\.1 (\d{3})/.exec(buffer);
      if (m && buffer.includes("{}")) {
        replies.push(m[1]!);
        buffer = "";
      }
    });
    s.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => setTimeout(r, 3000));
    expect(s.destroyed).toBe(false);
    s.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => setTimeout(r, 500));
    expect(replies).toEqual(["200", "200"]);
    s.destroy();
  });
});
