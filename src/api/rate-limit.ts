/**
 * A rate limit on the callers whose requests run into the policy's evaluation deadline. Each
 * timeout costs the worker that ran it (it is terminated and replaced) and delays everyone queued
 * behind it, so a client that keeps sending such requests could starve the pool. Every client has
 * a token bucket: `burst` timeouts, one more every `refillMs`. While its bucket is empty the client
 * is refused at once (429 with Retry-After, a fail-closed deny) without being evaluated.
 *
 * A client is the token's issuer, client and subject when the caller is known, else the remote
 * address: one user of a shared app does not lock out the others.
 */
import { hostDenial, type Decision } from "../core/contract.js";

export interface TimeoutBudget {
  /** Timeouts a client may cause before it is refused; 0 turns the limit off. */
  burst: number;
  /** One timeout is forgiven every this many milliseconds. */
  refillMs: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TimeoutLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly budget: TimeoutBudget,
    private readonly now: () => number = Date.now,
    /** Clients remembered at most; full buckets are forgotten first, then the oldest. */
    private readonly maxClients = 10_000,
  ) {}

  /** Milliseconds until `key` may be evaluated again; 0 when it may now. */
  retryAfterMs(key: string): number {
    if (this.budget.burst <= 0) return 0;
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    const tokens = this.refilled(bucket);
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) * this.budget.refillMs);
  }

  /** Counts one evaluation timeout against `key`. */
  recordTimeout(key: string): void {
    if (this.budget.burst <= 0) return;
    const bucket = this.buckets.get(key);
    const tokens = bucket ? this.refilled(bucket) : this.budget.burst;
    this.buckets.delete(key);
    if (this.buckets.size >= this.maxClients) this.evict();
    this.buckets.set(key, { tokens: Math.max(0, tokens - 1), at: this.now() });
  }

  get size(): number {
    return this.buckets.size;
  }

  private refilled(bucket: Bucket): number {
    const elapsed = Math.max(0, this.now() - bucket.at);
    return Math.min(this.budget.burst, bucket.tokens + elapsed / this.budget.refillMs);
  }

  private evict(): void {
    for (const [key, bucket] of this.buckets) {
      if (this.refilled(bucket) >= this.budget.burst) this.buckets.delete(key);
    }
    while (this.buckets.size >= this.maxClients) {
      const oldest = this.buckets.keys().next();
      if (oldest.done) break;
      this.buckets.delete(oldest.value);
    }
  }
}

/** The client a request is counted against. */
export function clientKey(
  claims: Record<string, unknown> | undefined,
  remoteAddress: string | undefined,
): string {
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  if (claims && (typeof claims.sub === "string" || typeof claims.client_id === "string")) {
    return JSON.stringify(["token", text(claims.iss), text(claims.client_id), text(claims.sub)]);
  }
  return JSON.stringify(["address", remoteAddress ?? ""]);
}

/** The fail-closed deny a rate-limited client receives. */
export function rateLimitDenial(retryAfterMs: number): Decision {
  const seconds = retryAfterSeconds(retryAfterMs);
  const message =
    `too many of this client's requests ran into the policy's evaluation deadline; ` +
    `retry in ${seconds} s (limits.policy_timeouts)`;
  return hostDenial("rate-limited", message, 429, "throttled");
}

/** Retry-After in whole seconds, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** True when a decision is the pool's fail-closed deny for an evaluation past its deadline. */
export function isPolicyTimeout(decision: Decision): boolean {
  return decision.decision === "deny" && decision.reasons?.some((r) => r.code === "policy-timeout") === true;
}
