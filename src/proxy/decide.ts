/**
 * The proxy's one way to ask the policy: the same evaluator (worker pool) as the sidecar API, the
 * audit obligations written before anything is released (a decision that cannot be audited is
 * replaced by a deny), one decision log line and the decision metrics per call.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Decision, DecisionInput } from "../core/contract.js";
import { logDecision } from "../ops/logging.js";
import { carryOutAudit, type AppContext } from "../api/context.js";
import { TimeoutLimiter, clientKey, isPolicyTimeout } from "../api/rate-limit.js";

export type Claims = Record<string, unknown>;

export interface DecideExtras {
  resource?: unknown;
  /** The stored resource was read and the server has none (404/410): an update then creates it. */
  resourceAbsent?: boolean;
  response?: unknown;
  /** The request id the proxy answers with (X-Request-Id): ties the decision log to the request log. */
  requestId?: string;
}

export class Decider {
  /** The per-client budget of evaluations that run into the policy's deadline (limits.policy_timeouts). */
  readonly limiter: TimeoutLimiter;

  constructor(private readonly ctx: AppContext) {
    this.limiter = new TimeoutLimiter(ctx.config.limits.policyTimeouts);
  }

  async decide(
    claims: Claims,
    request: DecisionInput["request"],
    extras: DecideExtras = {},
  ): Promise<Decision> {
    const started = performance.now();
    const decisionId = randomUUID();
    const input: DecisionInput = { claims, request, now: new Date().toISOString() };
    if (extras.resource !== undefined) input.resource = extras.resource;
    if (extras.resourceAbsent === true) input.resource_absent = true;
    if (extras.response !== undefined) input.response = extras.response;
    const evaluated = await this.ctx.evaluator.decide(input);
    if (isPolicyTimeout(evaluated.decision)) this.limiter.recordTimeout(clientKey(claims, undefined));
    const decision = await carryOutAudit(this.ctx, evaluated.decision, decisionId);
    const latencyMs = performance.now() - started;
    this.ctx.metrics.decisions.inc({ endpoint: "proxy", outcome: decision.decision });
    this.ctx.metrics.latency.observe({ endpoint: "proxy" }, latencyMs / 1000);
    if (decision.decision === "deny" && decision.reasons?.some((r) => r?.code === "policy-error"))
      this.ctx.metrics.errors.inc({ kind: "policy_error" });
    logDecision(this.ctx.logger, this.ctx.config.logging, {
      decisionId,
      endpoint: "proxy",
      revision: evaluated.revision,
      decision,
      latencyMs,
      method: request.method,
      url: request.url,
      claims,
      ...(extras.requestId !== undefined ? { requestId: extras.requestId } : {}),
    });
    return decision;
  }

  /**
   * The search parameters (ORed alternatives) that confine a search on `type` to Patient
   * `patientId`'s compartment, as the policy knows the compartment: the narrowing it gives a
   * patient/ search scope for that patient. A derivation only, never an authorization (so no
   * audit, no decision log); undefined when the policy gives none (a type outside the compartment).
   */
  async compartmentNarrowing(type: string, patientId: string): Promise<Record<string, string>[] | undefined> {
    const probe: DecisionInput = {
      claims: { scope: `patient/${type}.s`, patient: patientId },
      request: { method: "GET", url: type },
      now: new Date().toISOString(),
    };
    const { decision } = await this.ctx.evaluator.decide(probe);
    if (decision.decision !== "filter" || !Array.isArray(decision.narrow) || decision.narrow.length === 0)
      return undefined;
    return decision.narrow;
  }
}
