/**
 * Who is asking: the access token verified into claims (or a token failure with the 401 challenge
 * to send), shared by the decision API and the Data API so both trust callers the same way.
 */
import { TokenError } from "../auth/tokens.js";
import { hostDenial, type Decision } from "../core/contract.js";
import { describeError } from "../core/errors.js";
import type { AppContext } from "./context.js";
import { invalidTokenChallenge, missingTokenChallenge } from "./headers.js";

export type Authenticated =
  { ok: true; claims: Record<string, unknown> } | { ok: false; error: TokenError; challenge: string };

/** Verifies `token`; a failure is counted by reason and comes with its WWW-Authenticate value. */
export async function authenticate(ctx: AppContext, token: string | undefined): Promise<Authenticated> {
  try {
    return { ok: true, claims: (await ctx.tokens.verify(token)).claims };
  } catch (err) {
    const error =
      err instanceof TokenError ? err : new TokenError("token-signature-invalid", describeError(err));
    ctx.metrics.tokenFailures.inc({ reason: error.reason });
    const challenge =
      error.reason === "token-missing" ? missingTokenChallenge() : invalidTokenChallenge(error.message);
    return { ok: false, error, challenge };
  }
}

/** The 401 deny for a token failure, with an OperationOutcome. */
export function tokenDenial(err: TokenError): Decision {
  return hostDenial(err.reason, err.message, 401, err.reason === "token-missing" ? "login" : "security");
}

/** The time a decision is made at: the caller's `now` only when the config trusts it. */
export function decisionTime(ctx: AppContext, callerNow: unknown): string {
  return ctx.config.tokens.trustForwardedNow && typeof callerNow === "string"
    ? callerNow
    : new Date().toISOString();
}
