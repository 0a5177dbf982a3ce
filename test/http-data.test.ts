/** /v1/data maps evaluation failures to statuses: pool refusals keep theirs, unreadable input is 400. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/ops/config.js";
import { SmartAuthzError } from "../src/core/errors.js";
import { createApp } from "../src/api/app.js";
import type { Evaluator } from "../src/policy/evaluator.js";
import { createLogger } from "../src/ops/logging.js";
import { createMetrics } from "../src/ops/metrics.js";
import { PoolError } from "../src/policy/pool.js";
import { TokenVerifier } from "../src/auth/tokens.js";
import { LogSink } from "./helpers/fixtures.js";

let failure: unknown;
let server: Server;
let base: string;

const evaluator: Evaluator = {
  decide: () => Promise.reject(new Error("not used")),
  evaluate: () => Promise.reject(failure),
  entrypoints: () => ["smart/api/decision"],
  revision: () => "rev",
};

beforeAll(async () => {
  const config = parseConfig(
    `tokens:
  issuers:
    - issuer: https://issuer.test
      audience: https://fhir.test
      jwks: { keys: [] }
bundle:
  source: ./bundle.tar.gz
`,
    "test.yaml",
    "/tmp",
  );
  const app = createApp({
    config,
    evaluator,
    tokens: new TokenVerifier(config.tokens),
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger(config.logging, new LogSink()),
    bundleStatus: () => ({
      source: "x",
      revision: "rev",
      loadedAt: undefined,
      etag: undefined,
      lastError: undefined,
      lastErrorAt: undefined,
      activations: 1,
      failures: 0,
    }),
    shuttingDown: () => false,
    version: "test",
  });
  server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function data(): Promise<{ status: number; body: { code: string; message: string } }> {
  const res = await fetch(`${base}/v1/data/smart/api/decision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: {} }),
  });
  return { status: res.status, body: (await res.json()) as { code: string; message: string } };
}

describe("POST /v1/data errors", () => {
  it("answers a pool refusal with its status (503 overloaded), not 500", async () => {
    failure = new PoolError("policy-overloaded", 503, "the policy pool is overloaded");
    expect(await data()).toEqual({
      status: 503,
      body: { code: "unavailable", message: "the policy pool is overloaded" },
    });
  });

  it("answers input the policy cannot read with 400, and other failures with 500", async () => {
    failure = new SmartAuthzError("INPUT_INVALID", "lone surrogate");
    expect(await data()).toEqual({
      status: 400,
      body: { code: "invalid_parameter", message: "lone surrogate" },
    });
    failure = new PoolError("policy-timeout", 500, "the policy did not decide within 500 ms");
    expect((await data()).status).toBe(500);
    failure = new SmartAuthzError("POLICY_EVALUATION_FAILED", "conflict");
    expect(await data()).toEqual({ status: 500, body: { code: "internal_error", message: "conflict" } });
  });
});
