/**
 * Nothing the FHIR server answers reaches the client before the policy has checked it: a single
 * resource is decided as a read of that resource (stored-resource checks, security labels), a Bundle
 * is sent to the policy as `response` and what it drops is removed (src/api/filter.ts), resources
 * embedded in a Parameters answer are checked the same way. Entries the policy cannot check (a
 * history entry without a resource, a resource that is not an object) are not released unless the
 * request was allowed outright.
 */
import { plainAllow, type Decision, type DecisionInput } from "../core/contract.js";
import { applyFilter } from "../api/filter.js";
import { type Claims, type Decider } from "./decide.js";
import { ProxyError, denial, notFound, type ProxyAnswer } from "./outcome.js";

export interface Checker {
  decider: Decider;
  claims: Claims;
  requestId: string;
}

type Json = Record<string, unknown>;

export type Released<T> = { ok: true; value: T; dropped: number } | { ok: false; answer: ProxyAnswer };

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isBundle(v: unknown): v is Json & { resourceType: "Bundle" } {
  return isObject(v) && v.resourceType === "Bundle";
}

/**
 * A Bundle the server answered to `request` (searchset, history, $everything, collection), with
 * what the policy drops removed. `decision` is the request's own decision: entries without a
 * resource are kept only when it was a plain allow. Links and total are left to the caller.
 */
export async function releaseBundle(
  checker: Checker,
  request: DecisionInput["request"],
  bundle: Json,
  decision: Decision,
): Promise<Released<Json>> {
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) {
    throw new ProxyError(502, "exception", "the FHIR server answered a Bundle whose entry is not a list");
  }
  const entries = (bundle.entry ?? []) as unknown[];
  const keepUnchecked = plainAllow(decision);
  const checkable = entries.filter(
    (e) => isObject(e) && (isObject(e.resource) || (e.resource === undefined && keepUnchecked)),
  );
  const preDropped = entries.length - checkable.length;
  const prepared: Json = { ...bundle };
  if (bundle.entry !== undefined) prepared.entry = checkable;
  if (checkable.length === 0) return { ok: true, value: prepared, dropped: preDropped };
  const d = await checker.decider.decide(checker.claims, request, {
    response: prepared,
    requestId: checker.requestId,
  });
  if (d.decision === "deny") return { ok: false, answer: denial(d) };
  const filtered = applyFilter(d, prepared);
  if (filtered.status !== 200 || !isBundle(filtered.response)) return { ok: false, answer: notFound() };
  // applyFilter removes paging links once anything is dropped (a gateway could otherwise page past
  // the filter). The proxy filters every page it serves, so the links stay: the caller turns them
  // into cursors. Removing them here would lose every later page.
  const value: Json = { ...filtered.response };
  if (bundle.link !== undefined) value.link = bundle.link;
  return { ok: true, value, dropped: preDropped + filtered.dropped };
}

/**
 * A single resource the server answered. A resource with a type and id is decided as a read of it
 * (`readRequest`, default `GET <type>/<id>`) with the resource as the stored one; an
 * OperationOutcome is released; a Parameters answer has its embedded resources checked; anything
 * else is sent as `response` to `request`.
 */
export async function releaseResource(
  checker: Checker,
  resource: unknown,
  request: DecisionInput["request"],
  readRequest?: DecisionInput["request"],
): Promise<Released<unknown>> {
  if (!isObject(resource) || typeof resource.resourceType !== "string") {
    throw new ProxyError(502, "exception", "the FHIR server answered something that is not a FHIR resource");
  }
  if (resource.resourceType === "OperationOutcome") return { ok: true, value: resource, dropped: 0 };
  if (resource.resourceType === "Parameters") return releaseParameters(checker, request, resource);
  if (resource.resourceType === "Bundle") {
    const d = await checker.decider.decide(checker.claims, request, { requestId: checker.requestId });
    if (d.decision === "deny") return { ok: false, answer: denial(d) };
    return releaseBundle(checker, request, resource, d);
  }
  if (typeof resource.id === "string") {
    const read = readRequest ?? { method: "GET", url: `${resource.resourceType}/${resource.id}` };
    const d = await checker.decider.decide(checker.claims, read, { resource, requestId: checker.requestId });
    if (d.decision === "allow") return { ok: true, value: resource, dropped: 0 };
    return { ok: false, answer: d.decision === "deny" ? denial(d) : notFound() };
  }
  const d = await checker.decider.decide(checker.claims, request, {
    response: resource,
    requestId: checker.requestId,
  });
  if (d.decision === "deny") return { ok: false, answer: denial(d) };
  const filtered = applyFilter(d, resource);
  return filtered.status === 200
    ? { ok: true, value: resource, dropped: 0 }
    : { ok: false, answer: notFound() };
}

/** A Parameters answer: parameters whose embedded resource the policy drops are removed. */
async function releaseParameters(
  checker: Checker,
  request: DecisionInput["request"],
  parameters: Json,
): Promise<Released<unknown>> {
  const embedded: Json[] = [];
  const collect = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const p of list) {
      if (!isObject(p)) continue;
      if (p.resource !== undefined) {
        if (!isObject(p.resource))
          throw new ProxyError(502, "exception", "a Parameters resource is malformed");
        embedded.push(p.resource);
      }
      collect(p.part);
    }
  };
  collect(parameters.parameter);
  if (embedded.length === 0) return { ok: true, value: parameters, dropped: 0 };
  const collection = {
    resourceType: "Bundle",
    type: "collection",
    entry: embedded.map((resource) => ({ resource })),
  };
  const d = await checker.decider.decide(checker.claims, request, {
    response: collection,
    requestId: checker.requestId,
  });
  if (d.decision === "deny") return { ok: false, answer: denial(d) };
  const dropped = new Set<Json>();
  for (const x of d.drop ?? []) {
    if (typeof x?.index === "number" && embedded[x.index]) dropped.add(embedded[x.index]!);
  }
  const prune = (list: unknown): unknown =>
    Array.isArray(list)
      ? list
          .filter((p) => !(isObject(p) && isObject(p.resource) && dropped.has(p.resource)))
          .map((p) => (isObject(p) && p.part !== undefined ? { ...p, part: prune(p.part) } : p))
      : list;
  return {
    ok: true,
    value: { ...parameters, parameter: prune(parameters.parameter) },
    dropped: dropped.size,
  };
}

// --- _elements --------------------------------------------------------------------------------

const SUBSETTED = { system: "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", code: "SUBSETTED" };

/**
 * `_elements` applied by the proxy after the policy has checked the whole resource (FHIR R4
 * search 3.1.1.5.9): the server never sees `_elements`, so it cannot strip the elements the policy
 * needs (compartment references, security labels). Keeps resourceType, id, meta and the named
 * top-level elements, and tags the resource SUBSETTED.
 */
export function applyElements(resource: unknown, elements: readonly string[]): unknown {
  if (!isObject(resource) || typeof resource.resourceType !== "string") return resource;
  const type = resource.resourceType;
  const names = new Set(elements.map((e) => (e.startsWith(`${type}.`) ? e.slice(type.length + 1) : e)));
  const out: Json = { resourceType: type };
  for (const [k, v] of Object.entries(resource)) {
    if (k === "resourceType") continue;
    if (k === "id" || k === "meta" || names.has(k)) out[k] = v;
  }
  const meta = isObject(out.meta) ? { ...out.meta } : {};
  const tags = Array.isArray(meta.tag) ? [...(meta.tag as unknown[])] : [];
  if (!tags.some((t) => isObject(t) && t.code === SUBSETTED.code && t.system === SUBSETTED.system))
    tags.push(SUBSETTED);
  out.meta = { ...meta, tag: tags };
  return out;
}

/** The `_elements` values of a query (comma-separated, any number of parameters). */
export function elementsOf(values: readonly string[]): string[] {
  return values
    .flatMap((v) => v.split(","))
    .map((e) => e.trim())
    .filter((e) => e !== "");
}
