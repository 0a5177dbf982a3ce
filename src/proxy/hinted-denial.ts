/**
 * A deny that names a scope (required_scopes) for an instance interaction the policy decided
 * without the stored resource says so (reason stored-resource-not-supplied): the scope helps only
 * if the stored resource is within the token's reach. Before the hint reaches the client, the
 * proxy reads the stored resource and decides again on it, so a client asking for another
 * patient's record, a labelled one or one that does not exist gets the same 404 and no hint
 * (issue 15: a hint never misleads and never reveals that a resource exists).
 */
import { decidedWithoutStoredResource, type Decision } from "../core/contract.js";
import {
  type Exchange,
  type ProxyRuntime,
  decisionRequest,
  upstreamCall,
  upstreamFailure,
} from "./exchange.js";
import type { Interaction } from "./interaction.js";
import { ProxyError, denial, notFound, type ProxyAnswer } from "./outcome.js";
import { isObject } from "./release.js";

type Instance =
  | Extract<Interaction, { kind: "read" | "update" | "patch" | "delete" }>
  | { kind: "history"; level: "instance"; type: string; id: string };

/** True for a hinted deny the policy could not check against the stored resource. */
export function hintNeedsStoredResource(decision: Decision, i: Interaction): i is Instance {
  return (
    isInstance(i) && (decision.required_scopes?.length ?? 0) > 0 && decidedWithoutStoredResource(decision)
  );
}

function isInstance(i: Interaction): boolean {
  if (["read", "update", "patch", "delete"].includes(i.kind)) return true;
  return i.kind === "history" && i.level === "instance" && i.type !== undefined && i.id !== undefined;
}

/** The answer for such a deny: decided again on the stored resource, or 404 when there is none. */
export async function denialOnStoredResource(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Instance,
): Promise<ProxyAnswer> {
  const version = i.kind === "read" ? i.version : undefined;
  const path = version ? `${i.type}/${i.id}/_history/${version}` : `${i.type}/${i.id}`;
  const stored = await upstreamCall(rt, ex, "GET", path);
  if (stored.status === 404 || stored.status === 410) return notFound();
  if (stored.status !== 200) {
    const f = upstreamFailure(stored);
    if (f instanceof ProxyError) throw f;
    return notFound();
  }
  const resource = stored.json;
  if (!isObject(resource) || resource.resourceType !== i.type || resource.id !== i.id)
    throw new ProxyError(502, "exception", "the FHIR server answered a read with another resource");
  const decision = await rt.decider.decide(ex.claims, decisionRequest(ex), {
    resource,
    requestId: ex.client.requestId,
  });
  // The scope is missing either way: whatever the policy says with the stored resource, the
  // request is refused, with a hint only when the scope would work on this very resource.
  if (decision.decision !== "deny") {
    throw new ProxyError(
      502,
      "exception",
      "the policy allowed on the stored resource what it refused without it",
    );
  }
  return denial(decision);
}
