/**
 * What every HTTP handler shares: the service context, client-safe HTTP errors, and carrying out a
 * decision's audit obligations before it is released.
 */
import type { Response } from "express";
import type { TokenVerifier } from "../auth/tokens.js";
import type { Decision } from "../core/contract.js";
import { carryOutObligations, type AuditLog } from "../ops/audit.js";
import type { Config } from "../ops/config.js";
import type { Logger } from "../ops/logging.js";
import type { Metrics } from "../ops/metrics.js";
import type { BundleStatus } from "../policy/bundle-source.js";
import type { DataDocumentStatus } from "../policy/data-document.js";
import type { Evaluator } from "../policy/evaluator.js";
import type { TimeoutLimiter } from "./rate-limit.js";

export interface AppContext {
  config: Config;
  evaluator: Evaluator;
  tokens: TokenVerifier;
  metrics: Metrics;
  logger: Logger;
  bundleStatus(): BundleStatus;
  /** The data documents beside the bundle (relationships, clients), by name. */
  dataStatus?(): Record<string, DataDocumentStatus>;
  shuttingDown(): boolean;
  version: string;
  /** Where audit obligations are written; without it, a decision that must be audited is refused. */
  audit?: AuditLog;
}

/** What the API handlers share: the service context and the per-client timeout rate limit. */
export interface ApiContext extends AppContext {
  limiter: TimeoutLimiter;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function sendError(res: Response, err: HttpError): void {
  res.status(err.status).json({ code: err.code, message: err.message });
}

/** Maps body-parser and other errors to client-safe messages: never a stack trace. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { type?: unknown; status?: unknown; message?: unknown; limit?: unknown };
  switch (e?.type) {
    case "entity.parse.failed":
      return new HttpError(400, "invalid_parameter", `request body is not valid JSON: ${String(e.message)}`);
    case "entity.too.large":
      return new HttpError(
        413,
        "request_too_large",
        `request body exceeds the ${String(e.limit)}-byte limit`,
      );
    case "encoding.unsupported":
    case "charset.unsupported":
      return new HttpError(415, "unsupported_media_type", String(e.message));
    case "request.aborted":
      return new HttpError(400, "invalid_parameter", "request aborted by the client");
  }
  if (typeof e?.status === "number" && e.status >= 400 && e.status < 500) {
    return new HttpError(e.status, "invalid_parameter", String(e.message ?? "bad request"));
  }
  return new HttpError(500, "internal_error", "internal error");
}

/** Carries out a decision's audit obligations: the decision itself, or the fail-closed deny that replaces it. */
export function carryOutAudit(ctx: AppContext, decision: Decision, decisionId: string): Promise<Decision> {
  return carryOutObligations(decision, ctx.audit, {
    decisionId,
    onError: (error) => {
      ctx.metrics.errors.inc({ kind: "audit" });
      ctx.logger.error(
        { decision_id: decisionId, code: error.code, error: error.message },
        "audit record could not be written: the decision is refused",
      );
    },
  });
}

export function bad(message: string): never {
  throw new HttpError(400, "invalid_parameter", message);
}
