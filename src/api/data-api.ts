/**
 * The OPA Data API for the policy's entrypoints: POST /v1/data/{entrypoint} with {"input": …}.
 * Only the bundle's entrypoints are reachable; the result is answered as OPA does.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Request, Response } from "express";
import type { Decision } from "../core/contract.js";
import { SmartAuthzError, describeError } from "../core/errors.js";
import { HttpError, carryOutAudit, type AppContext } from "./context.js";

export async function handleData(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const decisionId = randomUUID();
  const started = performance.now();
  const segments = (req.params as { path?: string[] }).path ?? [];
  const entrypoint = segments.join("/");
  if (!ctx.evaluator.entrypoints().includes(entrypoint)) {
    const known = ctx.evaluator.entrypoints().join(", ") || "(none: no bundle is active)";
    throw new HttpError(
      404,
      "resource_not_found",
      `unknown entrypoint "${entrypoint}"; this policy has ${known}`,
    );
  }
  const body: unknown = req.body;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "invalid_parameter", 'the body must be a JSON object: {"input": {...}}');
  }
  const input = (body as { input?: unknown }).input;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new HttpError(400, "invalid_parameter", '"input" is required and must be a JSON object');
  }
  let result: unknown;
  let revision: string | undefined;
  try {
    ({ result, revision } = await ctx.evaluator.evaluate(entrypoint, input));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw dataError(ctx, err);
  }
  if (typeof result === "object" && result !== null && !Array.isArray(result)) {
    result = await carryOutAudit(ctx, result as Decision, decisionId);
  }
  const latencyMs = performance.now() - started;
  ctx.metrics.latency.observe({ endpoint: "data" }, latencyMs / 1000);
  const outcome =
    typeof result === "object" &&
    result !== null &&
    typeof (result as { decision?: unknown }).decision === "string"
      ? String((result as { decision: string }).decision)
      : result === undefined
        ? "undefined"
        : "value";
  ctx.metrics.decisions.inc({ endpoint: "data", outcome });
  if (ctx.config.logging.decisions) {
    ctx.logger.info({
      msg: "decision",
      decision_id: decisionId,
      endpoint: `data/${entrypoint}`,
      revision,
      outcome,
      latency_ms: Math.round(latencyMs * 1000) / 1000,
    });
  }
  res.setHeader("X-Decision-Id", decisionId);
  res
    .status(200)
    .json(result === undefined ? { decision_id: decisionId } : { result, decision_id: decisionId });
}

/**
 * A failed /v1/data evaluation as an HTTP error: input the policy cannot read is the client's 400;
 * a pool refusal keeps its status (503 overloaded or no bundle, 500 timeout); anything else is 500.
 */
function dataError(ctx: AppContext, err: unknown): HttpError {
  if (err instanceof SmartAuthzError && err.code === "INPUT_INVALID") {
    ctx.metrics.errors.inc({ kind: "bad_request" });
    return new HttpError(400, "invalid_parameter", describeError(err));
  }
  if (err instanceof SmartAuthzError && err.code === "BUNDLE_UNAVAILABLE") {
    return new HttpError(503, "unavailable", describeError(err));
  }
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === "number" && status >= 500 && status <= 599 && status !== 500) {
    return new HttpError(status, "unavailable", describeError(err));
  }
  ctx.metrics.errors.inc({ kind: "policy_error" });
  return new HttpError(500, "internal_error", describeError(err));
}
