/**
 * Structured logs with pino. Decision logs carry the decision id, bundle revision, outcome,
 * status, reason codes and latency. Tokens, claims, FHIR resources and request URLs (which hold
 * patient identifiers) are PHI or secrets: they are masked unless `logging.unmask` is set.
 */
import { pino, type DestinationStream, type Logger } from "pino";
import type { LoggingConfig } from "./config.js";
import type { Decision } from "../core/contract.js";

export type { Logger } from "pino";

/** Paths pino censors in every log line, whatever the caller passes. */
export const REDACT_PATHS = [
  "token",
  "*.token",
  "claims",
  "*.claims",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  "headers",
  "*.headers",
  "body",
  "*.body",
  "resource",
  "*.resource",
  "response",
  "*.response",
  "input",
  "*.input",
  "url",
  "*.url",
];

export function createLogger(config: LoggingConfig, destination?: DestinationStream): Logger {
  const options = {
    level: config.level,
    base: { service: "smart-authz" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: config.unmask ? [] : { paths: REDACT_PATHS, censor: "[masked]" },
  };
  return destination ? pino(options, destination) : pino(options);
}

export interface DecisionLogEntry {
  decisionId: string;
  endpoint: string;
  revision: string | undefined;
  decision: Decision;
  latencyMs: number;
  method?: string;
  url?: string;
  claims?: Record<string, unknown>;
  tokenReason?: string;
  /** The caller's X-Request-Id (a gateway's), when it is a plain token: ties the log to the gateway's. */
  requestId?: string;
}

/** One line per decision. Without `unmask`, only non-identifying fields are written. */
export function logDecision(logger: Logger, config: LoggingConfig, entry: DecisionLogEntry): void {
  if (!config.decisions) return;
  const d = entry.decision;
  const line: Record<string, unknown> = {
    msg: "decision",
    decision_id: entry.decisionId,
    endpoint: entry.endpoint,
    revision: entry.revision,
    outcome: d.decision,
    status: d.status,
    reasons: Array.isArray(d.reasons) ? d.reasons.map((r) => r.code) : undefined,
    latency_ms: Math.round(entry.latencyMs * 1000) / 1000,
    method: entry.method,
    resource_type: entry.url !== undefined ? resourceType(entry.url) : undefined,
    token_reason: entry.tokenReason,
    obligations: Array.isArray(d.obligations) ? d.obligations.map((o) => o.type) : undefined,
    request_id: entry.requestId,
  };
  if (config.unmask) {
    line.unmasked = { url: entry.url, claims: entry.claims };
  } else if (entry.claims && typeof entry.claims.client_id === "string") {
    line.client_id = entry.claims.client_id;
  }
  logger.info(line);
}

/** The resource type (first path segment) of a relative FHIR URL: identifies no one. */
function resourceType(url: string): string {
  const first = url.split(/[/?#]/, 1)[0] ?? "";
  return /^[A-Z][A-Za-z]+$/.test(first) || /^\$[a-z-]+$/.test(first)
    ? first
    : first === ""
      ? "(base)"
      : "(other)";
}
