/**
 * Searches, history, operations and their later pages. The decision's narrowing becomes one
 * upstream search (narrowing.ts); every page the server answers is filtered by the policy
 * (release.ts); paging links become signed cursors that only this token's subject/client/patient
 * can follow, and every page is decided and filtered again; `total` is given only when it is
 * exact for what the client can see (the whole result on one page) and removed otherwise.
 */
import type { Decision, DecisionInput } from "../core/contract.js";
import { bindingOf, narrowFingerprint } from "./cursor.js";
import {
  checkerOf,
  decisionRequest,
  forwardHeaders,
  planOptions,
  policyHeaders,
  upstreamCall,
  upstreamFailure,
  type Exchange,
  type ProxyRuntime,
} from "./exchange.js";
import {
  appendParams,
  classify,
  queryValues,
  targetOf,
  withQuery,
  withoutParams,
  type Interaction,
} from "./interaction.js";
import { planNarrowing, type Plan } from "./narrowing.js";
import { ProxyError, denial, notFound, operationOutcome, type ProxyAnswer } from "./outcome.js";
import { applyElements, elementsOf, isBundle, isObject, releaseBundle, releaseResource } from "./release.js";
import { rewriteBundle, type PageBinding } from "./rewrite.js";
import type { UpstreamResponse } from "./upstream.js";

/** Parameters that only shape the representation: the proxy applies or refuses them itself. */
const PROXY_HANDLED = ["_format", "_elements"];

type SearchLike = Extract<Interaction, { kind: "search" | "compartment-search" | "history" | "operation" }>;

export function isSearchLike(i: Interaction): i is SearchLike {
  return (
    i.kind === "search" || i.kind === "compartment-search" || i.kind === "history" || i.kind === "operation"
  );
}

/** Where a search-like interaction goes upstream (its path relative to the base) and how it is narrowed. */
export interface SearchRoute {
  path: string;
  plan: Plan;
}

/**
 * The upstream path and narrowing plan for a search-like interaction and its decision. A
 * compartment search (`Patient/123/Observation`) on a server that does not announce compartment
 * search (HAPI JPA answers it 400) becomes a search on the type narrowed to that patient's
 * compartment, with the compartment's parameters as the policy knows them.
 */
export async function searchRoute(
  rt: ProxyRuntime,
  i: SearchLike,
  decision: Decision,
  path: string,
): Promise<SearchRoute> {
  const narrow = decision.decision === "filter" && Array.isArray(decision.narrow) ? decision.narrow : [];
  // History and operations take no search parameters: their answers are filtered instead.
  if (i.kind === "history" || i.kind === "operation") {
    return {
      path,
      plan:
        narrow.length > 0 ? { kind: "response-filter", params: [], alternatives: narrow } : { kind: "as-is" },
    };
  }
  if (i.kind === "compartment-search") {
    if (i.compartment.type === "Patient" && !serverSearchesCompartments(rt)) {
      const compartment = await rt.decider.compartmentNarrowing(i.type, i.compartment.id);
      if (compartment !== undefined) {
        const combined = narrow.length > 0 ? andAlternatives(narrow, compartment) : compartment;
        return { path: i.type, plan: planNarrowing(combined, i.type, planOptions(rt, "search")) };
      }
    }
    // Already confined by the server; a narrowing on top cannot take the compartment form again.
    if (narrow.length === 0) return { path, plan: { kind: "as-is" } };
    const plan = planNarrowing(narrow, undefined, planOptions(rt, "search"));
    return { path, plan };
  }
  if (narrow.length === 0) return { path, plan: { kind: "as-is" } };
  const plan = planNarrowing(narrow, i.type, planOptions(rt, "search"));
  if (plan.kind === "compartment" && i.type !== undefined)
    return { path: `Patient/${plan.compartment.id}/${i.type}${i.post ? "/_search" : ""}`, plan };
  if (plan.kind === "compartment")
    return { path, plan: planNarrowing(narrow, undefined, planOptions(rt, "search")) };
  return { path, plan };
}

function serverSearchesCompartments(rt: ProxyRuntime): boolean {
  switch (rt.config.narrowing.strategy) {
    case "compartment":
      return true;
    case "auto":
      return rt.capabilities.current()?.compartments.has("Patient") ?? false;
    default:
      return false;
  }
}

/** Both narrowings must hold: every pair of alternatives that agree on shared parameters, merged. */
function andAlternatives(a: unknown[], b: Record<string, string>[]): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const x of a) {
    if (typeof x !== "object" || x === null) continue;
    for (const y of b) {
      const merged: Record<string, string> = { ...(x as Record<string, string>) };
      let compatible = true;
      for (const [k, v] of Object.entries(y)) {
        if (merged[k] !== undefined && merged[k] !== v) compatible = false;
        merged[k] = v;
      }
      if (compatible) out.push(merged);
    }
  }
  return out;
}

export async function handleSearch(
  rt: ProxyRuntime,
  ex: Exchange,
  i: SearchLike,
  decision: Decision,
): Promise<ProxyAnswer> {
  const request = decisionRequest(ex);
  if (
    queryValues(ex.target.query, "_summary").includes("count") ||
    formValues(ex, "_summary").includes("count")
  ) {
    throw new ProxyError(
      400,
      "not-supported",
      "_summary=count is not supported through the proxy: the server's count would include records this token may not see",
    );
  }
  const route = await searchRoute(rt, i, decision, ex.target.path);
  const plan = route.plan;
  if (plan.kind === "refuse")
    throw new ProxyError(plan.status, plan.status >= 500 ? "exception" : "forbidden", plan.message);
  const elements = elementsOf([...queryValues(ex.target.query, "_elements"), ...formValues(ex, "_elements")]);

  const path = route.path;
  let query = withoutParams(ex.target.query, PROXY_HANDLED);
  if (plan.kind !== "as-is") query = appendParams(query, plan.params);

  const method = ex.method === "HEAD" ? "GET" : ex.method;
  let body: Buffer | undefined;
  const headers = forwardHeaders(ex, ["prefer", "accept-language"]);
  if (method === "POST") {
    if (typeof ex.body === "string") {
      body = Buffer.from(withoutParams(ex.body, PROXY_HANDLED), "utf8");
      headers["content-type"] = "application/x-www-form-urlencoded";
    } else if (ex.rawBody !== undefined && ex.body !== undefined) {
      body = Buffer.from(JSON.stringify(ex.body), "utf8");
      headers["content-type"] = "application/fhir+json";
    }
  }
  const upstreamTarget = withQuery(path, query);
  const res = await upstreamCall(rt, ex, method, upstreamTarget, headers, body);
  const binding: PageBinding = {
    ...(plan.kind === "params" && plan.form === "filter" && method === "GET"
      ? { search: upstreamTarget }
      : {}),
    request: {
      method: request.method,
      url: request.url,
      ...(typeof ex.body === "string" ? { body: ex.body } : {}),
    },
    binding: bindingOf(ex.claims),
    narrow: narrowFingerprint(decision.narrow),
  };
  return releasePage(rt, ex, {
    request,
    interaction: i,
    decision,
    plan,
    res,
    elements,
    binding,
    selfUrl: rt.urls.publicUrl(request.url),
    pageTarget: upstreamTarget,
  });
}

/** GET <base>/_page?cursor=…: a later page of a search this token started. */
export async function handlePage(rt: ProxyRuntime, ex: Exchange): Promise<ProxyAnswer> {
  const cursors = queryValues(ex.target.query, "cursor");
  if (cursors.length !== 1)
    throw new ProxyError(400, "invalid", "a paging request needs exactly one cursor parameter");
  const payload = rt.cursors.open(cursors[0]!, bindingOf(ex.claims));
  if ("reason" in payload) {
    const status = payload.reason === "expired" ? 410 : payload.reason === "other-token" ? 403 : 400;
    throw new ProxyError(
      status,
      status === 403 ? "forbidden" : status === 410 ? "processing" : "invalid",
      payload.message,
    );
  }
  const original = targetOf(`/${payload.request.url}`, "");
  if (!original || "error" in original)
    throw new ProxyError(400, "invalid", "the paging cursor is malformed");
  const interaction = classify(payload.request.method, original.segments, original.query !== "");
  if (!isSearchLike(interaction)) throw new ProxyError(400, "invalid", "the paging cursor is malformed");
  const request: DecisionInput["request"] = {
    method: payload.request.method,
    url: payload.request.url,
    headers: policyHeaders(ex.headers),
  };
  if (payload.request.body !== undefined) request.body = payload.request.body;
  // Decided again: the token may have lost rights since the first page.
  const decision = await rt.decider.decide(ex.claims, request, { requestId: ex.client.requestId });
  if (decision.decision === "deny") return denial(decision);
  if (narrowFingerprint(decision.narrow) !== payload.narrow) {
    throw new ProxyError(
      403,
      "forbidden",
      "this token's access to the search has changed since it started: run the search again",
    );
  }
  const { plan } = await searchRoute(rt, interaction, decision, original.path);
  if (plan.kind === "refuse")
    throw new ProxyError(plan.status, plan.status >= 500 ? "exception" : "forbidden", plan.message);
  const res = await upstreamCall(rt, ex, "GET", payload.page, forwardHeaders(ex, ["accept-language"]));
  const elements = elementsOf([
    ...queryValues(original.query, "_elements"),
    ...(typeof payload.request.body === "string" ? queryValues(payload.request.body, "_elements") : []),
  ]);
  return releasePage(rt, ex, {
    request,
    interaction,
    decision,
    plan,
    res,
    elements,
    binding: {
      request: payload.request,
      binding: payload.binding,
      narrow: payload.narrow,
      ...(payload.search !== undefined ? { search: payload.search } : {}),
    },
    selfUrl: rt.urls.publicUrl(withQuery(ex.target.path, ex.target.query)),
    pageTarget: payload.page,
  });
}

interface PageContext {
  request: DecisionInput["request"];
  interaction: SearchLike;
  decision: Decision;
  plan: Plan;
  res: UpstreamResponse;
  elements: string[];
  binding: PageBinding;
  selfUrl: string;
  /** The server address this page was read from (relative to its base). */
  pageTarget: string;
}

async function releasePage(rt: ProxyRuntime, ex: Exchange, p: PageContext): Promise<ProxyAnswer> {
  const { res } = p;
  if (res.status >= 300) {
    if (res.status === 404 || res.status === 410) {
      if (p.interaction.kind === "history" && p.interaction.level === "instance") return notFound();
    }
    const f = upstreamFailure(res);
    if (f instanceof ProxyError) throw f;
    return { status: f.status, headers: {}, body: f.body };
  }
  const checker = checkerOf(rt, ex);
  if (!isBundle(res.json)) {
    // An operation may answer a single resource (or nothing).
    if (res.json === undefined) return { status: res.status, headers: {}, body: undefined };
    const released = await releaseResource(checker, res.json, p.request);
    if (!released.ok) return released.answer;
    return {
      status: res.status,
      headers: {},
      body: p.elements.length ? applyElements(released.value, p.elements) : released.value,
    };
  }
  const upstreamBundle = res.json;
  const upstreamEntries = Array.isArray(upstreamBundle.entry) ? upstreamBundle.entry.length : 0;
  const released = await releaseBundle(checker, p.request, upstreamBundle, p.decision);
  if (!released.ok) return released.answer;
  let bundle = released.value;
  // An instance's history of which nothing may be seen is a resource that is not there for this token.
  if (p.interaction.kind === "history" && p.interaction.level === "instance" && upstreamEntries > 0) {
    if (!Array.isArray(bundle.entry) || bundle.entry.length === 0) return notFound();
  }
  if (p.elements.length > 0 && Array.isArray(bundle.entry)) {
    bundle = {
      ...bundle,
      entry: (bundle.entry as unknown[]).map((e) =>
        isObject(e) && isMatch(e) ? { ...e, resource: applyElements(e.resource, p.elements) } : e,
      ),
    };
  }
  if (p.binding.search !== undefined) bundle = await withCheckedEnd(rt, ex, bundle, upstreamBundle, p);
  bundle = rewriteBundle(bundle, rt.urls, { signer: rt.cursors, binding: p.binding, selfUrl: p.selfUrl });
  bundle = withTotal(bundle, upstreamBundle);
  if (p.plan.kind === "primary") bundle = withWarning(bundle, p.plan.omitted);
  return { status: 200, headers: {}, body: bundle };
}

/**
 * HAPI 8.8 has been seen to answer an ORed `_filter` search with a full first page and no `next`
 * link although more results exist (docs/proxy.md). A full page without `next` is therefore not
 * taken as the end: the proxy asks for one entry past it, and if there is one, adds a `next` link
 * of its own that continues by offset (`_offset`, which HAPI supports; the client never sees it).
 */
async function withCheckedEnd(
  rt: ProxyRuntime,
  ex: Exchange,
  bundle: Record<string, unknown>,
  upstream: Record<string, unknown>,
  p: PageContext,
): Promise<Record<string, unknown>> {
  const links = Array.isArray(upstream.link) ? (upstream.link as unknown[]) : [];
  if (links.some((l) => isObject(l) && l.relation === "next")) return bundle;
  const pageQuery = p.pageTarget.includes("?") ? p.pageTarget.slice(p.pageTarget.indexOf("?") + 1) : "";
  const size = Number(queryValues(pageQuery, "_count")[0]);
  const entries = Array.isArray(upstream.entry) ? (upstream.entry as unknown[]) : [];
  const matches = entries.filter((e) => isObject(e) && isMatch(e)).length;
  if (!Number.isInteger(size) || size <= 0 || matches !== size) return bundle;
  const offset =
    Number(queryValues(pageQuery, "_getpagesoffset")[0] ?? queryValues(pageQuery, "_offset")[0] ?? 0) || 0;
  const search = p.binding.search!;
  const q = search.indexOf("?");
  const path = q === -1 ? search : search.slice(0, q);
  const base = withoutParams(q === -1 ? "" : search.slice(q + 1), ["_count", "_offset"]);
  const probe = await upstreamCall(
    rt,
    ex,
    "GET",
    withQuery(
      path,
      appendParams(base, [
        ["_count", "1"],
        ["_offset", String(offset + size)],
      ]),
    ),
  );
  const more =
    probe.status === 200 &&
    isBundle(probe.json) &&
    Array.isArray(probe.json.entry) &&
    (probe.json.entry as unknown[]).some((e) => isObject(e) && isMatch(e));
  if (!more) return bundle;
  rt.logger.warn(
    { request_id: ex.client.requestId },
    "the FHIR server omitted a next link on a full page; continuing by offset",
  );
  const next = rt.upstream.urlOf(
    withQuery(
      path,
      appendParams(base, [
        ["_count", String(size)],
        ["_offset", String(offset + size)],
      ]),
    ),
  ).href;
  const own = Array.isArray(bundle.link) ? (bundle.link as unknown[]) : [];
  return { ...bundle, link: [...own, { relation: "next", url: next }] };
}

function isMatch(e: Record<string, unknown>): boolean {
  const mode = isObject(e.search) ? e.search.mode : undefined;
  return mode === undefined || mode === "match";
}

/**
 * `total` only when it is exact for what this client can see: the server's answer was the whole
 * result on one page (no next, no previous page), so the entries kept here are all there is.
 * Otherwise the server's total would count records the policy dropped, and it is removed.
 */
function withTotal(
  bundle: Record<string, unknown>,
  upstream: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...bundle };
  delete out.total;
  if (upstream.total === undefined) return out;
  const links = Array.isArray(upstream.link) ? (upstream.link as unknown[]) : [];
  const paged = links.some((l) => isObject(l) && ["next", "previous", "prev"].includes(String(l.relation)));
  if (paged) return out;
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as Record<string, unknown>[]) : [];
  out.total =
    bundle.type === "searchset" ? entries.filter((e) => isObject(e) && isMatch(e)).length : entries.length;
  return out;
}

/** The primary-parameter fallback says what it left out, as a search outcome entry (FHIR R4 3.1.1.4.4). */
export function withWarning(
  bundle: Record<string, unknown>,
  omitted: Record<string, string>[],
): Record<string, unknown> {
  const what = omitted
    .map((a) =>
      Object.entries(a)
        .map(([k, v]) => `${k}=${v}`)
        .join("&"),
    )
    .join(" or ");
  const outcome = operationOutcome(
    "processing",
    `results are incomplete: the FHIR server cannot search alternatives in one request, so records linked only by ${what} are not included`,
    "warning",
  );
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as unknown[]) : [];
  return { ...bundle, entry: [...entries, { resource: outcome, search: { mode: "outcome" } }] };
}

function formValues(ex: Exchange, name: string): string[] {
  return typeof ex.body === "string" ? queryValues(ex.body, name) : [];
}
