/**
 * The HTTP layer under garbage: raw bodies that are not JSON (truncated, trailing junk, BOMs,
 * 100k-deep nesting, wrong content types), JSON of the wrong shape, random tokens and forwarded
 * claims, random gateway paths. The service must answer every one with a 4xx (or the policy's
 * decision), never a 5xx it did not mean and never a stack trace, and stay healthy.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Stats, assertParameters, fuzzRuns } from "./support/budget.js";
import { anyRequestCaseArb, garbageStringArb } from "./support/arbitraries.js";
import { checkGatewayCase, gatewayCaseArb } from "./support/gateway-invariant.js";
import { startRealService, type RealService } from "./support/service.js";

const TOTAL = fuzzRuns(100_000);
/** HTTP round trips cost ~100x an in-process decision: the HTTP fuzz takes 2% of the budget. */
const RUNS = Math.max(50, Math.round(TOTAL * 0.02));

const stats = new Stats();
let svc: RealService;

beforeAll(async () => {
  svc = await startRealService({ trustForwardedClaims: true });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  stats.write("http");
});

const STACK = /\n\s+at |node_modules|\.(ts|js):\d+:\d+/;
const ENDPOINTS = [
  "/v1/decision",
  "/v1/decision?mode=gateway",
  "/v1/filter",
  "/v1/data/smart/api/decision",
  "/v1/gateway/Observation/1",
];
const CONTENT_TYPES = [
  "application/json",
  "application/fhir+json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "text/plain",
  "application/x-www-form-urlencoded",
  undefined,
];

interface Reply {
  status: number;
  text: string;
}

async function send(
  path: string,
  method: string,
  body: string | undefined,
  headers: Record<string, string>,
): Promise<Reply> {
  const res = await fetch(`${svc.url}${path}`, { method, headers, body });
  return { status: res.status, text: await res.text() };
}

function checkReply(r: Reply, context: unknown): void {
  if (STACK.test(r.text))
    throw new Error(
      `stack trace or source path in a response: ${r.text.slice(0, 500)}\n${JSON.stringify(context)}`,
    );
  if (r.text !== "") {
    try {
      JSON.parse(r.text);
    } catch {
      throw new Error(`a response body that is not JSON: ${r.text.slice(0, 300)}`);
    }
  }
}

const truncatedJsonArb = fc.tuple(anyRequestCaseArb, fc.nat()).map(([rc, cut]) => {
  const text = JSON.stringify({ claims: { scope: "user/*.rs" }, request: rc.request });
  return text.slice(0, cut % text.length);
});

const rawBodyArb: fc.Arbitrary<string> = fc.oneof(
  garbageStringArb,
  truncatedJsonArb,
  fc.constantFrom(
    "",
    " ",
    "null",
    "[]",
    "{",
    "}",
    "\ufeff{}",
    '{"a":1}x',
    "{'a':1}",
    '{"request":',
    "NaN",
    "1e999999",
  ),
  fc.integer({ min: 1_000, max: 100_000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
  fc.integer({ min: 1_000, max: 100_000 }).map((n) => '{"a":'.repeat(n) + "1" + "}".repeat(n)),
);

describe("HTTP layer fuzz (real service, real policy)", () => {
  it(`malformed bodies on every endpoint: 4xx with a JSON message, never 5xx or a stack trace (${RUNS} requests)`, async () => {
    const tally = stats.begin("HTTP-1");
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS),
        fc.constantFrom(...CONTENT_TYPES),
        rawBodyArb,
        async (path, type, body) => {
          stats.run();
          stats.decision();
          const r = await send(path, "POST", body, type ? { "content-type": type } : {});
          checkReply(r, { path, type, body: body.slice(0, 200) });
          if (r.status >= 500)
            throw new Error(`HTTP ${r.status} for a malformed body: ${r.text.slice(0, 300)}`);
          let parsedOk = true;
          try {
            JSON.parse(body.replace(/^\ufeff/, "")); // body-parser drops a UTF-8 BOM
          } catch {
            parsedOk = false;
          }
          // An empty body is no body (express.json), so it reaches the token check instead.
          const empty = body.trim() === "";
          if (
            !parsedOk &&
            !empty &&
            type?.includes("json") &&
            !type.includes("latin1") &&
            r.status !== 400 &&
            r.status !== 413
          ) {
            throw new Error(`unparseable JSON answered ${r.status}, not 400: ${r.text.slice(0, 300)}`);
          }
        },
      ),
      assertParameters(RUNS),
    );
    tally.ms = Math.round(performance.now() - started);
  });

  it(`JSON of the wrong shape, forwarded claims and random tokens: a decision or a 4xx, never an unmeant 5xx (${RUNS} requests)`, async () => {
    const tally = stats.begin("HTTP-2");
    const started = performance.now();
    const shapeArb = fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.tuple(anyRequestCaseArb, fc.anything({ maxDepth: 2 })).map(([rc, claims]) => ({
        claims,
        request: rc.request,
        resource: rc.resource,
        response: rc.response,
      })),
      fc.tuple(anyRequestCaseArb, garbageStringArb).map(([rc, token]) => ({ token, request: rc.request })),
      fc
        .tuple(anyRequestCaseArb, fc.dictionary(fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 1 })))
        .map(([rc, extra]) => ({ ...extra, request: { ...rc.request, ...extra } })),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS.slice(0, 4)), shapeArb, async (path, body) => {
        stats.run();
        stats.decision();
        const r = await send(path, "POST", JSON.stringify(body), { "content-type": "application/json" });
        checkReply(r, { path, body });
        if (r.status >= 500) {
          // A 5xx is legitimate only as the mirror of a fail-closed policy error in gateway mode.
          const d = JSON.parse(r.text) as { decision?: string; reasons?: { code: string }[] };
          const meant = path.includes("mode=gateway") && d.decision === "deny";
          if (!meant)
            throw new Error(
              `HTTP ${r.status}: ${r.text.slice(0, 400)}\n${JSON.stringify(body).slice(0, 400)}`,
            );
        }
      }),
      assertParameters(RUNS),
    );
    tally.ms = Math.round(performance.now() - started);
  });

  it(`random gateway paths, methods and forwarded headers: never 5xx (${RUNS} requests)`, async () => {
    const tally = stats.begin("HTTP-3");
    const started = performance.now();
    const visible = fc.stringMatching(/^[\x21-\x7e]{0,40}$/);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            visible.map(encodeURIComponent),
            fc.constantFrom("Observation", "Patient", "123", "_history", "$everything", "..", "%2F", "%zz"),
          ),
          { maxLength: 4 },
        ),
        fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"),
        fc.record(
          {
            "x-original-uri": visible,
            "x-original-method": visible,
            authorization: visible.map((t) => `Bearer ${t}`),
          },
          { requiredKeys: [] },
        ),
        async (segments, method, headers) => {
          stats.run();
          stats.decision();
          const r = await send(`/v1/gateway/${segments.join("/")}`, method, undefined, headers);
          if (method !== "HEAD") checkReply(r, { segments, method, headers });
          if (r.status >= 500) throw new Error(`HTTP ${r.status} on the gateway: ${r.text.slice(0, 300)}`);
        },
      ),
      assertParameters(RUNS),
    );
    tally.ms = Math.round(performance.now() - started);
  });

  it(`gateway mode answers 2xx only to an allow that needs nothing more, or an enforcing gateway's filter (${RUNS} requests)`, async () => {
    const tally = stats.begin("HTTP-4");
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(gatewayCaseArb, async (c) => {
        stats.run();
        stats.decision(2);
        await checkGatewayCase(svc, c);
      }),
      assertParameters(RUNS),
    );
    tally.ms = Math.round(performance.now() - started);
  });

  it("is still healthy and deciding after the fuzz", async () => {
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
    const r = await send(
      "/v1/decision",
      "POST",
      JSON.stringify({
        claims: { scope: "patient/Observation.rs", patient: "123" },
        request: { method: "GET", url: "Observation/1" },
        resource: { resourceType: "Observation", id: "1", subject: { reference: "Patient/123" } },
      }),
      { "content-type": "application/json" },
    );
    expect(JSON.parse(r.text).decision).toBe("allow");
  });
});
