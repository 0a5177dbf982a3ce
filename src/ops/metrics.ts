/**
 * Prometheus metrics on a registry of our own (never prom-client's global one), so that several
 * services can live in one process (tests) and nothing leaks between them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  decisions: Counter<"endpoint" | "outcome">;
  latency: Histogram<"endpoint">;
  tokenFailures: Counter<"reason">;
  errors: Counter<"kind">;
  bundleInfo: Gauge<"revision">;
  bundleActivations: Counter;
  bundleFailures: Counter;
  bundleLoadedAt: Gauge;
  inFlight: Gauge;
  policyTimeouts: Counter;
  rateLimited: Counter<"endpoint">;
  /** The enforcing proxy: requests answered, by interaction and status class (2xx, 4xx, …). */
  proxyRequests: Counter<"interaction" | "status">;
  /** The enforcing proxy: time the FHIR server took per request, by outcome (the status class, or the failure). */
  upstreamDuration: Histogram<"outcome">;
  /** Marks `revision` as the active one (the info gauge carries exactly one series). */
  setRevision(revision: string): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: "smart_authz_" });
  const decisions = new Counter({
    name: "smart_authz_decisions_total",
    help: "Decisions made, by endpoint and outcome (allow, deny, filter, or a token failure as deny).",
    labelNames: ["endpoint", "outcome"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "smart_authz_decision_duration_seconds",
    help: "Time to answer a decision request, token verification and policy evaluation included.",
    labelNames: ["endpoint"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const tokenFailures = new Counter({
    name: "smart_authz_token_failures_total",
    help: "Access tokens rejected, by reason.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: "smart_authz_errors_total",
    help: "Errors by kind: bad_request, not_found, policy_error, audit, internal.",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const bundleInfo = new Gauge({
    name: "smart_authz_bundle_info",
    help: "The active policy bundle: 1 for its revision.",
    labelNames: ["revision"] as const,
    registers: [registry],
  });
  const bundleActivations = new Counter({
    name: "smart_authz_bundle_activations_total",
    help: "Policy bundles activated.",
    registers: [registry],
  });
  const bundleFailures = new Counter({
    name: "smart_authz_bundle_failures_total",
    help: "Policy bundles rejected (download, signature, load); the last good bundle kept serving.",
    registers: [registry],
  });
  const bundleLoadedAt = new Gauge({
    name: "smart_authz_bundle_loaded_timestamp_seconds",
    help: "When the active bundle was activated (Unix time).",
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: "smart_authz_http_requests_in_flight",
    help: "HTTP requests being handled.",
    registers: [registry],
  });
  const policyTimeouts = new Counter({
    name: "smart_authz_policy_timeouts_total",
    help: "Evaluations stopped at their deadline (the worker was replaced; the caller got a policy-timeout deny).",
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: "smart_authz_rate_limited_total",
    help: "Requests refused with 429 because their client ran into the evaluation deadline too often.",
    labelNames: ["endpoint"] as const,
    registers: [registry],
  });
  const proxyRequests = new Counter({
    name: "smart_authz_proxy_requests_total",
    help: "Requests the enforcing proxy answered, by FHIR interaction and status class.",
    labelNames: ["interaction", "status"] as const,
    registers: [registry],
  });
  const upstreamDuration = new Histogram({
    name: "smart_authz_proxy_upstream_duration_seconds",
    help: "Time the FHIR server behind the proxy took to answer, by outcome (status class, timeout, too-large, unreachable, not-json, invalid-json).",
    labelNames: ["outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return {
    registry,
    proxyRequests,
    upstreamDuration,
    decisions,
    latency,
    tokenFailures,
    errors,
    bundleInfo,
    bundleActivations,
    bundleFailures,
    bundleLoadedAt,
    inFlight,
    policyTimeouts,
    rateLimited,
    setRevision(revision: string) {
      bundleInfo.reset();
      bundleInfo.set({ revision }, 1);
      bundleLoadedAt.set(Date.now() / 1000);
    },
  };
}
