/**
 * What a gateway that only looks at the status code may be told. NGINX `auth_request` and Envoy
 * `ext_authz` forward the request on any 2xx, so in gateway mode a 2xx is given only to a decision
 * such a gateway carries out completely by forwarding: an `allow` that asks for nothing more.
 *
 * A `filter` (narrowing or response filtering) and an `allow` with a `filter-response` obligation
 * are answered 2xx only to a gateway declared in `gateway.enforcing` that proved itself with its
 * key: it promised to apply `narrow` and to send every response through /v1/filter. Everything else
 * is refused with 403 and a reason saying what would be needed. Whatever the caller, a decision
 * that needed the stored resource, and a batch or transaction with a refused entry, are refused:
 * a gateway cannot re-check a stored resource or remove entries from a batch on its way.
 */
import { timingSafeEqual } from "node:crypto";
import type { GatewayConfig } from "../ops/config.js";
import { decidedWithoutStoredResource, hostDenial, plainAllow, type Decision } from "../core/contract.js";

export const GATEWAY_KEY_HEADER = "x-smart-authz-gateway-key";

/** The declared enforcing gateway whose key the caller presented, if any. */
export function enforcingGateway(
  config: GatewayConfig,
  presentedKey: string | undefined,
): string | undefined {
  if (presentedKey === undefined || presentedKey === "") return undefined;
  const presented = Buffer.from(presentedKey);
  for (const gateway of config.enforcing) {
    const key = Buffer.from(gateway.key);
    if (key.length === presented.length && timingSafeEqual(key, presented)) return gateway.name;
  }
  return undefined;
}

/**
 * The decision a gateway-mode caller receives: the policy's own when the caller can carry it out,
 * otherwise a 403 deny that names why.
 */
export function gatewayDecision(decision: Decision, enforcing: boolean): Decision {
  if (decision.decision === "deny") return decision;
  if (needsStoredResource(decision)) {
    return refusal(
      "gateway-needs-stored-resource",
      "this interaction can only be decided on the stored resource, which a gateway does not supply: " +
        "put `smart-authz proxy` in front of the FHIR server, or ask /v1/decision with `resource`",
    );
  }
  if (hasRefusedEntry(decision)) {
    return refusal(
      "gateway-batch-entry-refused",
      "at least one entry of this batch or transaction is refused, and a gateway cannot remove it: " +
        "send the permitted entries on their own, or use `smart-authz proxy`",
    );
  }
  if (!enforcing && needsEnforcement(decision)) {
    return refusal(
      "gateway-cannot-enforce",
      decision.decision === "filter"
        ? "the request is permitted only narrowed or with its response filtered, which this gateway did not declare it applies " +
            "(gateway.enforcing); use `smart-authz proxy`, or narrow the request yourself"
        : "the response must be filtered (security labels, included resources), which this gateway did not declare it does " +
            "(gateway.enforcing); use `smart-authz proxy`",
    );
  }
  return decision;
}

function needsStoredResource(decision: Decision): boolean {
  return decidedWithoutStoredResource(decision) || (decision.entries ?? []).some(needsStoredResource);
}

function hasRefusedEntry(decision: Decision): boolean {
  return (decision.entries ?? []).some((e) => e.decision === "deny" || hasRefusedEntry(e));
}

function needsEnforcement(decision: Decision): boolean {
  return !plainAllow(decision) || (decision.entries ?? []).some(needsEnforcement);
}

function refusal(code: string, message: string): Decision {
  return hostDenial(code, message, 403, "forbidden");
}
