/**
 * Batch and transaction Bundles, decided entry by entry (the policy's `entries`) and carried out
 * like the single interactions:
 *  - update / patch / delete by id: the stored resource is read and decided on first, and the entry
 *    gets `ifMatch` with the version read;
 *  - searches and conditional entries get the narrowing (one upstream search, as in search.ts);
 *  - reads and everything the server returns are checked before release.
 * A transaction with any refused entry is refused whole: nothing is forwarded. A batch forwards
 * only its permitted entries and answers the refused ones with their OperationOutcome, in the
 * original order (the batch-response is rebuilt).
 */
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import { plainAllow, type Decision, type DecisionInput } from "../core/contract.js";
import { bindingOf, narrowFingerprint } from "./cursor.js";
import {
  checkerOf,
  jsonBody,
  upstreamCall,
  upstreamFailure,
  versionOf,
  type Exchange,
  type ProxyRuntime,
} from "./exchange.js";
import { lastVersionBeforeDeletion } from "./deleted.js";
import { narrowedCondition, refuseIdInConditionalCreate } from "./instance.js";
import {
  appendParams,
  classify,
  queryValues,
  serverPagingParam,
  targetOf,
  withQuery,
  withoutParams,
  type Interaction,
} from "./interaction.js";
import { ProxyError, denial, notFound, type ProxyAnswer } from "./outcome.js";
import { applyElements, elementsOf, isBundle, isObject, releaseBundle, releaseResource } from "./release.js";
import { refuseHiddenReferences } from "./references.js";
import { rewriteBundle } from "./rewrite.js";
import { searchRoute, withWarning } from "./search.js";
import { serverOutcome } from "./server-outcome.js";

type Json = Record<string, unknown>;

/** What to check in the server's answer to a forwarded entry. */
type Check =
  | { kind: "read"; request: DecisionInput["request"] }
  | {
      kind: "collection";
      request: DecisionInput["request"];
      decision: Decision;
      elements: string[];
      /** Alternatives the primary-parameter fallback left out (said in a warning). */
      omitted: Record<string, string>[];
    }
  | { kind: "written"; request: DecisionInput["request"] }
  /** A delete pinned to the version checked: still there afterwards means it changed in between. */
  | { kind: "deleted"; request: DecisionInput["request"]; key: string };

type Prepared = { forward: Json; check: Check } | { refused: ProxyAnswer };

export async function handleBatch(rt: ProxyRuntime, ex: Exchange, decision: Decision): Promise<ProxyAnswer> {
  const bundle = ex.body;
  if (!isBundle(bundle) || (bundle.type !== "batch" && bundle.type !== "transaction")) {
    throw new ProxyError(400, "invalid", "POST to the base needs a batch or transaction Bundle");
  }
  const transaction = bundle.type === "transaction";
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as unknown[]) : [];
  const decisions = Array.isArray(decision.entries) ? decision.entries : [];
  if (decisions.length !== entries.length) {
    throw new ProxyError(500, "exception", "the policy did not decide every entry of the Bundle");
  }
  const prepared: Prepared[] = [];
  for (let i = 0; i < entries.length; i++) {
    prepared.push(await prepare(rt, ex, entries[i], decisions[i]!));
    const p = prepared[i]!;
    if (transaction && "refused" in p) {
      // Atomic: one refused entry refuses the transaction, and nothing is sent.
      return p.refused;
    }
  }
  const forwarded = prepared.flatMap((p, i) => ("forward" in p ? [{ index: i, ...p }] : []));
  const responses: (Json | undefined)[] = new Array<Json | undefined>(entries.length);
  let upstreamBundle: Json = {};
  if (forwarded.length > 0) {
    const outgoing = { ...bundle, entry: forwarded.map((f) => f.forward) };
    const res = await upstreamCall(
      rt,
      ex,
      "POST",
      "",
      {
        "content-type": "application/fhir+json",
        ...(ex.headers.prefer ? { prefer: ex.headers.prefer } : {}),
      },
      jsonBody(outgoing),
    );
    // HAPI answers a failed ifMatch with 409, the specification with 412.
    if ((res.status === 412 || res.status === 409) && transaction) {
      throw new ProxyError(
        409,
        "conflict",
        "a resource changed while the proxy was checking this transaction; retry",
      );
    }
    if (res.status !== 200) {
      const f = upstreamFailure(res);
      if (f instanceof ProxyError) throw f;
      return { status: f.status, headers: {}, body: f.body };
    }
    if (!isBundle(res.json) || !Array.isArray(res.json.entry) || res.json.entry.length !== forwarded.length) {
      throw new ProxyError(502, "exception", "the FHIR server's batch-response does not answer every entry");
    }
    upstreamBundle = res.json;
    const answered = res.json.entry as unknown[];
    for (let j = 0; j < forwarded.length; j++) {
      const f = forwarded[j]!;
      responses[f.index] = await checkAnswer(rt, ex, f.check, answered[j]);
    }
  }
  for (let i = 0; i < entries.length; i++) {
    const p = prepared[i]!;
    if ("refused" in p) responses[i] = refusedEntry(p.refused);
  }
  // The server's own links and entries are not passed on: its entries are rebuilt above.
  const rest: Json = { ...upstreamBundle };
  delete rest.link;
  delete rest.entry;
  if (rest.id !== undefined) rest.id = randomUUID();
  return {
    status: 200,
    headers: {},
    body: {
      resourceType: "Bundle",
      ...rest,
      type: transaction ? "transaction-response" : "batch-response",
      entry: responses,
    },
  };
}

/** The status code of an entry's `response.status` ("409 Conflict"), when it has one. */
function statusOf(line: unknown): number | undefined {
  const m = typeof line === "string" ? /^(\d{3})\b/.exec(line) : null;
  return m ? Number(m[1]) : undefined;
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ""}`.trim();
}

function refusedEntry(answer: ProxyAnswer): Json {
  return { response: { status: statusLine(answer.status), outcome: answer.body } };
}

async function prepare(
  rt: ProxyRuntime,
  ex: Exchange,
  entry: unknown,
  decision: Decision,
): Promise<Prepared> {
  if (decision.decision === "deny") return { refused: denial(decision) };
  if (
    !isObject(entry) ||
    !isObject(entry.request) ||
    typeof entry.request.method !== "string" ||
    typeof entry.request.url !== "string"
  )
    return {
      refused: new ProxyError(400, "invalid", "a batch entry needs request.method and request.url").answer(),
    };
  const method = entry.request.method.toUpperCase();
  const url = entry.request.url.replace(/^\//, "");
  const target = targetOf(`/${url}`, "");
  if (!target || "error" in target)
    return {
      refused: new ProxyError(
        400,
        "invalid",
        target?.error ?? "the entry URL is not relative to the base",
      ).answer(),
    };
  const paging = serverPagingParam(target.query);
  if (paging !== undefined)
    return {
      refused: new ProxyError(
        400,
        "invalid",
        `${paging} is not accepted: follow the paging links the proxy gives`,
      ).answer(),
    };
  const interaction: Interaction = classify(method, target.segments, target.query !== "");
  const request: DecisionInput["request"] = { method, url };
  if (typeof entry.request.ifNoneExist === "string")
    request.headers = { "if-none-exist": entry.request.ifNoneExist };
  if (entry.resource !== undefined) request.body = entry.resource;
  const forward = (requestPatch: Json, check: Check): Prepared => ({
    forward: { ...entry, request: { ...(entry.request as Json), ...requestPatch } },
    check,
  });
  try {
    if (["create", "update", "patch", "conditional"].includes(interaction.kind))
      await refuseHiddenReferences(rt, ex, entry.resource);
    switch (interaction.kind) {
      case "read":
        return forward(
          { url: withQuery(target.path, withoutParams(target.query, ["_format"])) },
          { kind: "read", request },
        );
      case "search":
      case "compartment-search":
      case "history":
      case "operation": {
        if (queryValues(target.query, "_summary").includes("count"))
          throw new ProxyError(400, "not-supported", "_summary=count is not supported through the proxy");
        const { plan, path } = await searchRoute(rt, interaction, decision, target.path);
        if (plan.kind === "refuse") throw new ProxyError(plan.status, "forbidden", plan.message);
        let query = withoutParams(target.query, ["_format", "_elements"]);
        if (plan.kind !== "as-is") query = appendParams(query, plan.params);
        const elements = elementsOf(queryValues(target.query, "_elements"));
        return forward(
          { url: withQuery(path, query) },
          {
            kind: "collection",
            request,
            decision,
            elements,
            omitted: plan.kind === "primary" ? plan.omitted : [],
          },
        );
      }
      case "create": {
        const patch: Json = {};
        if (typeof entry.request.ifNoneExist === "string")
          patch.ifNoneExist = narrowedCondition(rt, entry.request.ifNoneExist, interaction.type, decision);
        else if (decision.decision !== "allow")
          throw new ProxyError(
            403,
            "forbidden",
            "this create is permitted only narrowed, which needs ifNoneExist",
          );
        return forward(patch, { kind: "written", request });
      }
      case "update":
      case "patch":
      case "delete":
        return await prepareInstanceWrite(rt, ex, entry, interaction, request, decision, forward);
      case "conditional": {
        // The server decides match or no match itself here: a body id could overwrite any record.
        if (interaction.method === "PUT") refuseIdInConditionalCreate(entry.resource);
        const condition = narrowedCondition(
          rt,
          withoutParams(target.query, ["_format"]),
          interaction.type,
          decision,
        );
        return forward({ url: withQuery(interaction.type, condition) }, { kind: "written", request });
      }
      default:
        throw new ProxyError(
          400,
          "not-supported",
          `this entry (${method} ${url}) is not carried out in a batch by the proxy`,
        );
    }
  } catch (err) {
    if (err instanceof ProxyError) return { refused: err.answer() };
    throw err;
  }
}

async function prepareInstanceWrite(
  rt: ProxyRuntime,
  ex: Exchange,
  entry: Json,
  i: Extract<Interaction, { kind: "update" | "patch" | "delete" }>,
  request: DecisionInput["request"],
  decision: Decision,
  forward: (patch: Json, check: Check) => Prepared,
): Promise<Prepared> {
  const stored = await upstreamCall(rt, ex, "GET", `${i.type}/${i.id}`);
  if (stored.status === 404 || stored.status === 410) {
    if (i.kind !== "update") return { refused: notFound() };
    // A deleted id is decided on its last version (deleted.ts).
    const creating =
      stored.status === 410
        ? await rt.decider.decide(ex.claims, request, {
            resource: await lastVersionBeforeDeletion(rt, ex, i.type, i.id),
            requestId: ex.client.requestId,
          })
        : await rt.decider.decide(ex.claims, request, {
            resourceAbsent: true,
            requestId: ex.client.requestId,
          });
    if (creating.decision === "deny") return { refused: denial(creating) };
    if (plainAllow(creating)) return forward({}, { kind: "written", request });
    throw new ProxyError(405, "not-supported", `${i.type}/${i.id} does not exist; create it with POST`);
  }
  if (
    stored.status !== 200 ||
    !isObject(stored.json) ||
    stored.json.resourceType !== i.type ||
    stored.json.id !== i.id
  ) {
    throw new ProxyError(502, "exception", `the stored ${i.type}/${i.id} could not be read for the check`);
  }
  const checked = await rt.decider.decide(ex.claims, request, {
    resource: stored.json,
    requestId: ex.client.requestId,
  });
  if (checked.decision === "deny") return { refused: denial(checked) };
  if (checked.decision !== "allow")
    throw new ProxyError(
      403,
      "forbidden",
      "this write is permitted only in a narrowed form the proxy cannot apply",
    );
  const version = versionOf(stored.json, stored.headers.etag);
  if (version === undefined)
    throw new ProxyError(502, "exception", "the stored resource has no version to pin the write to");
  const own = (entry.request as Json).ifMatch;
  if (typeof own === "string" && own.replace(/^W\//, "") !== `"${version}"`)
    throw new ProxyError(
      412,
      "conflict",
      `${i.type}/${i.id} is at version ${version}, not the one ifMatch names`,
    );
  const lastUpdated = isObject(stored.json.meta) ? stored.json.meta.lastUpdated : undefined;
  if (i.kind === "delete" && typeof lastUpdated === "string") {
    // As for a single delete (instance.ts): servers may ignore ifMatch on DELETE, so the entry
    // deletes only the version checked (id and exact lastUpdated); the answer is verified afterwards.
    const url = withQuery(
      i.type,
      appendParams("", [
        ["_id", i.id],
        ["_lastUpdated", `eq${lastUpdated}`],
      ]),
    );
    return forward(
      { url, ifMatch: `W/"${version}"` },
      { kind: "deleted", request, key: `${i.type}/${i.id}` },
    );
  }
  return forward({ ifMatch: `W/"${version}"` }, { kind: "written", request });
}

/** The server's answer to one forwarded entry, released only as far as the policy allows. */
async function checkAnswer(rt: ProxyRuntime, ex: Exchange, check: Check, answered: unknown): Promise<Json> {
  if (!isObject(answered))
    throw new ProxyError(502, "exception", "the FHIR server's batch-response has a malformed entry");
  const out: Json = { ...answered };
  if (isObject(answered.response)) {
    const response: Json = { ...answered.response };
    if (typeof response.location === "string") response.location = rt.urls.toPublic(response.location);
    if (isObject(response.outcome))
      response.outcome = serverOutcome(response.outcome, statusOf(response.status));
    out.response = response;
  }
  if (typeof answered.fullUrl === "string") out.fullUrl = rt.urls.toPublic(answered.fullUrl);
  const checker = checkerOf(rt, ex);
  if (check.kind === "deleted") {
    const after = await upstreamCall(rt, ex, "GET", check.key);
    if (after.status === 200) {
      return refusedEntry(
        new ProxyError(
          409,
          "conflict",
          `${check.key} changed while the proxy was checking this delete; it was not deleted`,
        ).answer(),
      );
    }
    delete out.resource;
    return out;
  }
  if (answered.resource === undefined) {
    // A read that found nothing is answered like a hidden one.
    if (check.kind === "read") return refusedEntry(notFound());
    return out;
  }
  switch (check.kind) {
    case "read": {
      const released = await releaseResource(checker, answered.resource, check.request, check.request);
      return released.ok ? out : refusedEntry(notFound());
    }
    case "written": {
      const released = await releaseResource(checker, answered.resource, check.request);
      if (!released.ok) delete out.resource;
      return out;
    }
    case "collection": {
      if (!isBundle(answered.resource)) {
        const released = await releaseResource(checker, answered.resource, check.request);
        return released.ok ? out : refusedEntry(released.answer);
      }
      const released = await releaseBundle(checker, check.request, answered.resource, check.decision);
      if (!released.ok) return refusedEntry(released.answer);
      let nested = released.value;
      if (check.elements.length > 0 && Array.isArray(nested.entry)) {
        nested = {
          ...nested,
          entry: (nested.entry as unknown[]).map((e) =>
            isObject(e) && (!isObject(e.search) || (e.search.mode ?? "match") === "match")
              ? { ...e, resource: applyElements(e.resource, check.elements) }
              : e,
          ),
        };
      }
      nested = rewriteBundle(nested, rt.urls, {
        signer: rt.cursors,
        binding: {
          request: { method: check.request.method, url: check.request.url },
          binding: bindingOf(ex.claims),
          narrow: narrowFingerprint(check.decision.narrow),
        },
        selfUrl: rt.urls.publicUrl(check.request.url),
      });
      delete nested.total;
      if (check.omitted.length > 0) nested = withWarning(nested, check.omitted);
      out.resource = nested;
      return out;
    }
  }
}
