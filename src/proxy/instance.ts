/**
 * Interactions on one resource, decided on the stored resource itself, never on the client's word:
 *  - read / vread: forwarded, then decided on the resource the server returned; a resource outside
 *    the token's reach is answered exactly like one that does not exist (404).
 *  - update / patch / delete: the stored resource is read first and decided on; the write is then
 *    sent with `If-Match: W/"<version read>"`, so nothing can change between the check and the write
 *    (the server's 412 becomes 409, or 412 when the client set its own precondition).
 *  - conditional update / patch / delete: the narrowed search is run first; one match becomes the
 *    instance write above, none is forwarded narrowed, several are refused (412, FHIR R4 3.1.0.8).
 *  - create (and If-None-Exist, narrowed): forwarded; what the server returns is checked.
 * A `Prefer: return=representation` body is released only if the token may read it.
 */
import { plainAllow, type Decision, type DecisionInput } from "../core/contract.js";
import { lastVersionBeforeDeletion } from "./deleted.js";
import {
  checkerOf,
  decisionRequest,
  forwardHeaders,
  jsonBody,
  planOptions,
  upstreamCall,
  upstreamFailure,
  versionOf,
  type Exchange,
  type ProxyRuntime,
} from "./exchange.js";
import { appendParams, queryValues, withQuery, withoutParams, type Interaction } from "./interaction.js";
import { planNarrowing } from "./narrowing.js";
import { ProxyError, denial, notFound, type ProxyAnswer } from "./outcome.js";
import { applyElements, elementsOf, isObject, releaseResource } from "./release.js";
import { refuseHiddenReferences } from "./references.js";
import { rewriteLocation } from "./rewrite.js";
import type { UpstreamResponse } from "./upstream.js";

type Read = Extract<Interaction, { kind: "read" }>;
type Write = Extract<Interaction, { kind: "update" | "patch" | "delete" }>;
type Conditional = Extract<Interaction, { kind: "conditional" }>;
type Create = Extract<Interaction, { kind: "create" }>;

/** Response headers of a resource answer that are passed to the client. */
function resourceHeaders(rt: ProxyRuntime, res: UpstreamResponse): Record<string, string> {
  const h: Record<string, string> = {};
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const etag = one(res.headers.etag);
  if (etag) h.etag = etag;
  const lastModified = one(res.headers["last-modified"]);
  if (lastModified) h["last-modified"] = lastModified;
  const location = rewriteLocation(res.headers.location, rt.urls);
  if (location) h.location = location;
  const contentLocation = rewriteLocation(res.headers["content-location"], rt.urls);
  if (contentLocation) h["content-location"] = contentLocation;
  return h;
}

export async function handleRead(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Read,
  decision: Decision,
): Promise<ProxyAnswer> {
  const path = i.version ? `${i.type}/${i.id}/_history/${i.version}` : `${i.type}/${i.id}`;
  const query = withoutParams(ex.target.query, ["_format", "_elements"]);
  // Conditional read headers are evaluated here, after the check: a 304 from the server would
  // tell a client that a resource it may not see exists.
  const res = await upstreamCall(
    rt,
    ex,
    "GET",
    withQuery(path, query),
    forwardHeaders(ex, ["accept-language"]),
  );
  if (res.status === 404 || res.status === 410) {
    if (res.status === 410 && plainAllow(decision)) {
      const f = upstreamFailure(res);
      if (!(f instanceof ProxyError)) return { status: 410, headers: {}, body: f.body };
    }
    return notFound();
  }
  if (res.status !== 200) {
    const f = upstreamFailure(res);
    if (f instanceof ProxyError) throw f;
    return { status: f.status, headers: {}, body: f.body };
  }
  const resource = res.json;
  if (!isObject(resource) || resource.resourceType !== i.type || resource.id !== i.id) {
    throw new ProxyError(502, "exception", "the FHIR server answered a read with another resource");
  }
  const released = await releaseResource(
    checkerOf(rt, ex),
    resource,
    decisionRequest(ex),
    decisionRequest(ex),
  );
  if (!released.ok) return released.answer;
  const headers = resourceHeaders(rt, res);
  if (notModified(ex, headers))
    return { status: 304, headers: pick(headers, ["etag", "last-modified"]), body: undefined };
  const elements = elementsOf(queryValues(ex.target.query, "_elements"));
  return {
    status: 200,
    headers,
    body: elements.length ? applyElements(released.value, elements) : released.value,
  };
}

function notModified(ex: Exchange, headers: Record<string, string>): boolean {
  const inm = ex.headers["if-none-match"];
  if (inm !== undefined && headers.etag !== undefined) {
    const strip = (t: string) => t.trim().replace(/^W\//, "");
    const current = strip(headers.etag);
    return inm.split(",").some((t) => t.trim() === "*" || strip(t) === current);
  }
  const ims = ex.headers["if-modified-since"];
  if (ims !== undefined && headers["last-modified"] !== undefined) {
    const since = Date.parse(ims);
    const modified = Date.parse(headers["last-modified"]);
    return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
  }
  return false;
}

function pick(h: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => names.includes(k)));
}

/** Update, patch or delete of Type/id: read the stored resource, decide on it, write that version only. */
export async function handleWrite(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Write,
  decision: Decision,
): Promise<ProxyAnswer> {
  const stored = await upstreamCall(rt, ex, "GET", `${i.type}/${i.id}`);
  if (stored.status === 404 || stored.status === 410) {
    // Nothing stored: a delete or patch has nothing to do for this token; an update creates the
    // resource (update-as-create), decided again on its body now that nothing stored can stand in
    // the way (contract 1.2: resource_absent), or, for a deleted id, on its last version
    // (deleted.ts).
    if (i.kind !== "update") return notFound();
    // A deleted id is decided on its last version: recreating it writes into its history.
    const creating =
      stored.status === 410
        ? await rt.decider.decide(ex.claims, decisionRequest(ex), {
            resource: await lastVersionBeforeDeletion(rt, ex, i.type, i.id),
            requestId: ex.client.requestId,
          })
        : await rt.decider.decide(ex.claims, decisionRequest(ex), {
            resourceAbsent: true,
            requestId: ex.client.requestId,
          });
    if (creating.decision === "deny") return denial(creating);
    if (!plainAllow(creating)) {
      throw new ProxyError(
        405,
        "not-supported",
        `${i.type}/${i.id} does not exist, and the policy permits creating it with PUT only in a narrowed form: create it with POST`,
      );
    }
    return forwardWrite(rt, ex, i, undefined);
  }
  if (stored.status !== 200) {
    const f = upstreamFailure(stored);
    if (f instanceof ProxyError) throw f;
    return { status: f.status, headers: {}, body: f.body };
  }
  const resource = stored.json;
  if (!isObject(resource) || resource.resourceType !== i.type || resource.id !== i.id)
    throw new ProxyError(502, "exception", "the FHIR server answered a read with another resource");
  const checked = await rt.decider.decide(ex.claims, decisionRequest(ex), {
    resource,
    requestId: ex.client.requestId,
  });
  if (checked.decision === "deny") return denial(checked);
  if (checked.decision !== "allow") {
    throw new ProxyError(
      403,
      "forbidden",
      "the policy permits this write only in a narrowed form the proxy cannot apply to one resource",
    );
  }
  const version = versionOf(resource, stored.headers.etag);
  if (version === undefined) {
    throw new ProxyError(
      502,
      "exception",
      "the FHIR server gave the stored resource no version, so the write cannot be pinned to what was checked",
    );
  }
  const clientMatch = ex.headers["if-match"];
  if (clientMatch !== undefined && !etagMatches(clientMatch, version)) {
    throw new ProxyError(
      412,
      "conflict",
      `the resource is at version ${version}, not the one If-Match names`,
    );
  }
  const lastUpdated = (resource.meta as { lastUpdated?: unknown } | undefined)?.lastUpdated;
  return forwardWrite(rt, ex, i, version, typeof lastUpdated === "string" ? lastUpdated : undefined);
}

function etagMatches(header: string, version: string): boolean {
  return header.split(",").some((t) => {
    const v = t.trim();
    return v === "*" || v.replace(/^W\//, "") === `"${version}"`;
  });
}

async function forwardWrite(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Write,
  version: string | undefined,
  lastUpdated?: string,
): Promise<ProxyAnswer> {
  const headers = forwardHeaders(ex, ["prefer", "accept-language"]);
  if (version !== undefined) headers["if-match"] = `W/"${version}"`;
  let body: Buffer | undefined;
  let target = `${i.type}/${i.id}`;
  if (i.kind !== "delete") {
    if (ex.body === undefined) throw new ProxyError(400, "invalid", `${i.kind} needs a body`);
    await refuseHiddenReferences(rt, ex, ex.body);
    body = jsonBody(ex.body);
    headers["content-type"] =
      i.kind === "patch" && Array.isArray(ex.body) ? "application/json-patch+json" : "application/fhir+json";
  } else if (lastUpdated !== undefined) {
    // Servers may ignore If-Match on DELETE (HAPI 8.8 does): the delete is made conditional on the
    // id and the exact lastUpdated of the version checked, so a newer version is never deleted.
    target = withQuery(
      i.type,
      appendParams("", [
        ["_id", i.id],
        ["_lastUpdated", `eq${lastUpdated}`],
      ]),
    );
  }
  const res = await upstreamCall(rt, ex, ex.method, target, headers, body);
  const conflict = () =>
    new ProxyError(
      ex.headers["if-match"] !== undefined ? 412 : 409,
      "conflict",
      "the resource changed while the proxy was checking this write; read it again and retry",
    );
  if (version !== undefined && (res.status === 412 || res.status === 409)) throw conflict();
  if (i.kind === "delete" && lastUpdated !== undefined && res.status < 300) {
    const after = await upstreamCall(rt, ex, "GET", `${i.type}/${i.id}`);
    if (after.status === 200) throw conflict();
  }
  return writeAnswer(rt, ex, res);
}

/** What a write's answer may show: its status, rewritten Location, and a body the token may read. */
async function writeAnswer(rt: ProxyRuntime, ex: Exchange, res: UpstreamResponse): Promise<ProxyAnswer> {
  if (res.status >= 300) {
    const f = upstreamFailure(res);
    if (f instanceof ProxyError) throw f;
    return { status: f.status, headers: {}, body: f.body };
  }
  const headers = resourceHeaders(rt, res);
  if (res.json === undefined) return { status: res.status, headers, body: undefined };
  const released = await releaseResource(checkerOf(rt, ex), res.json, decisionRequest(ex));
  if (!released.ok) {
    // The write happened; only its representation is withheld.
    return { status: res.status, headers, body: undefined };
  }
  return { status: res.status, headers, body: released.value };
}

export async function handleCreate(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Create,
  decision: Decision,
): Promise<ProxyAnswer> {
  if (ex.body === undefined) throw new ProxyError(400, "invalid", "create needs a resource body");
  const headers = forwardHeaders(ex, ["prefer", "accept-language"]);
  headers["content-type"] = "application/fhir+json";
  const ifNoneExist = ex.headers["if-none-exist"];
  if (ifNoneExist !== undefined) {
    headers["if-none-exist"] = narrowedCondition(
      rt,
      ifNoneExist.replace(/^[A-Za-z]+\?/, ""),
      i.type,
      decision,
    );
  } else if (decision.decision !== "allow") {
    throw new ProxyError(
      403,
      "forbidden",
      "the policy permits this create only in a narrowed form, which needs If-None-Exist",
    );
  }
  await refuseHiddenReferences(rt, ex, ex.body);
  const res = await upstreamCall(rt, ex, "POST", i.type, headers, jsonBody(ex.body));
  return writeAnswer(rt, ex, res);
}

/** A search condition (query string) with the decision's narrowing ANDed in, or a refusal. */
export function narrowedCondition(
  rt: ProxyRuntime,
  condition: string,
  type: string,
  decision: Decision,
): string {
  if (decision.decision !== "filter") return condition;
  const plan = planNarrowing(decision.narrow, type, planOptions(rt, "write"));
  switch (plan.kind) {
    case "as-is":
      return condition;
    case "params":
    case "primary":
      return appendParams(condition, plan.params);
    case "compartment":
      // A condition is a query on the type; the compartment form does not exist for it.
      return conditionWithoutCompartment(rt, condition, type, decision);
    case "response-filter":
    case "refuse":
      throw new ProxyError(
        plan.kind === "refuse" ? plan.status : 403,
        "forbidden",
        plan.kind === "refuse" ? plan.message : "cannot narrow",
      );
  }
}

function conditionWithoutCompartment(
  rt: ProxyRuntime,
  condition: string,
  type: string,
  decision: Decision,
): string {
  const options = { ...planOptions(rt, "write"), strategy: "single" as const };
  const plan = planNarrowing(decision.narrow, type, options);
  if (plan.kind === "params" || plan.kind === "primary") return appendParams(condition, plan.params);
  throw new ProxyError(
    403,
    "forbidden",
    plan.kind === "refuse" ? plan.message : "this conditional write cannot be narrowed",
  );
}

/** PUT/PATCH/DELETE Type?criteria: search first (narrowed), then write the one match by id. */
export async function handleConditional(
  rt: ProxyRuntime,
  ex: Exchange,
  i: Conditional,
  decision: Decision,
): Promise<ProxyAnswer> {
  const condition = narrowedCondition(rt, withoutParams(ex.target.query, ["_format"]), i.type, decision);
  const search = await upstreamCall(
    rt,
    ex,
    "GET",
    withQuery(i.type, appendParams(condition, [["_count", "2"]])),
  );
  if (search.status !== 200 || !isObject(search.json) || search.json.resourceType !== "Bundle") {
    const f = upstreamFailure(search);
    if (f instanceof ProxyError) throw f;
    return { status: f.status, headers: {}, body: f.body };
  }
  const matches = (Array.isArray(search.json.entry) ? search.json.entry : []).filter(
    (e: unknown) =>
      isObject(e) &&
      isObject(e.resource) &&
      (!isObject(e.search) || e.search.mode === undefined || e.search.mode === "match"),
  ) as { resource: Record<string, unknown> }[];
  if (matches.length > 1 || hasNext(search.json)) {
    throw new ProxyError(
      412,
      "conflict",
      "the condition matches more than one resource; make it more selective",
    );
  }
  if (matches.length === 0) {
    // Nothing matches: the server creates (update) or does nothing (delete, patch answers 404).
    if (i.method === "PUT") refuseIdInConditionalCreate(ex.body);
    const headers = forwardHeaders(ex, ["prefer", "accept-language"]);
    let body: Buffer | undefined;
    if (i.method !== "DELETE") {
      if (ex.body === undefined)
        throw new ProxyError(400, "invalid", "a conditional update or patch needs a body");
      await refuseHiddenReferences(rt, ex, ex.body);
      body = jsonBody(ex.body);
      headers["content-type"] =
        i.method === "PATCH" && Array.isArray(ex.body)
          ? "application/json-patch+json"
          : "application/fhir+json";
    }
    const res = await upstreamCall(rt, ex, i.method, withQuery(i.type, condition), headers, body);
    return writeAnswer(rt, ex, res);
  }
  const match = matches[0]!.resource;
  if (typeof match.id !== "string" || match.resourceType !== i.type)
    throw new ProxyError(
      502,
      "exception",
      "the FHIR server answered the condition with a malformed resource",
    );
  const kind = i.method === "PUT" ? "update" : i.method === "PATCH" ? "patch" : "delete";
  const asInstance: Exchange = {
    ...ex,
    target: { path: `${i.type}/${match.id}`, query: "", segments: [i.type, match.id] },
    interaction: { kind, type: i.type, id: match.id },
    body: kind === "update" && isObject(ex.body) ? { ...ex.body, id: match.id } : ex.body,
  };
  const instanceRequest: DecisionInput["request"] = decisionRequest(asInstance);
  const instanceDecision = await rt.decider.decide(ex.claims, instanceRequest, {
    requestId: ex.client.requestId,
  });
  if (instanceDecision.decision === "deny") return denial(instanceDecision);
  return handleWrite(rt, asInstance, { kind, type: i.type, id: match.id }, instanceDecision);
}

/**
 * A conditional update whose (narrowed) condition matches nothing is a create. R4 answers 409 when
 * the body names an existing id, but HAPI 8.8 updates that resource — whoever's it is, unchecked. The
 * proxy refuses any id there, the same way whether or not it exists (no existence oracle).
 */
export function refuseIdInConditionalCreate(body: unknown): void {
  if (isObject(body) && body.id !== undefined) {
    throw new ProxyError(
      400,
      "invalid",
      "a conditional update through the proxy must not name an id in its body: when nothing matches it creates a new resource, and an id would name another one",
    );
  }
}

function hasNext(bundle: Record<string, unknown>): boolean {
  return Array.isArray(bundle.link) && bundle.link.some((l) => isObject(l) && l.relation === "next");
}
