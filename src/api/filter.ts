/**
 * Applies a decision's `keep`/`drop` lists to a FHIR response. The policy decides what to release;
 * this releases only what it lists in `keep` and does not drop, and makes sure the result does not
 * leak what was removed: a searchset Bundle's `total` counts what remains, and paging links (which
 * would let a client walk past the filter) are removed once anything was removed. A single resource
 * that is not released becomes a 404.
 */
import type { Decision } from "../core/contract.js";

export interface FilterResult {
  /** The HTTP status the FHIR client should see: 200, or 404 for a dropped single resource. */
  status: number;
  /** The response to send: the filtered resource/Bundle, or an OperationOutcome. */
  response: unknown;
  /** How many resources were removed. */
  dropped: number;
}

interface BundleEntry {
  resource?: { resourceType?: unknown; id?: unknown };
  search?: { mode?: unknown };
  [key: string]: unknown;
}

interface FhirBundle {
  resourceType: "Bundle";
  type?: unknown;
  total?: unknown;
  link?: { relation?: unknown }[];
  entry?: BundleEntry[];
  [key: string]: unknown;
}

/**
 * Filters `response` by `decision.drop` (entries by `index` into `response.entry`, or by `ref`;
 * index -1 or the resource's own ref for a single resource) and `decision.keep`: an entry is
 * released only when its ref (`Type/id`, or `entry[i]` for an entry without a resource or id;
 * `entry[-1]` for a single resource without one) is listed in `keep` and it is not dropped, so an
 * entry the policy did not check is never released. Pure: the input is not modified. A decision
 * that is not allow/filter releases nothing.
 */
export function applyFilter(decision: Decision, response: unknown): FilterResult {
  if (decision.decision !== "allow" && decision.decision !== "filter") {
    const status = typeof decision.status === "number" ? decision.status : 403;
    return { status, response: decision.outcome ?? notFound("access denied"), dropped: 0 };
  }
  const drops = Array.isArray(decision.drop) ? decision.drop : [];
  const dropIndexes = new Set<number>();
  const dropRefs = new Set<string>();
  for (const d of drops as unknown[]) {
    if (typeof d !== "object" || d === null) continue;
    const { index, ref } = d as { index?: unknown; ref?: unknown };
    if (typeof index === "number" && Number.isInteger(index)) dropIndexes.add(index);
    else if (typeof ref === "string") dropRefs.add(ref);
  }
  const keep = new Set(
    Array.isArray(decision.keep) ? (decision.keep as unknown[]).filter((k) => typeof k === "string") : [],
  );
  const released = (resource: unknown, index: number): boolean => {
    const ref = refOf(resource);
    if (dropIndexes.has(index) || (ref !== undefined && dropRefs.has(ref))) return false;
    return keep.has(ref ?? `entry[${index}]`);
  };

  if (!isBundle(response)) {
    if (!released(response, -1))
      return {
        status: 404,
        response: notFound(`${refOf(response) ?? "the resource"} is not available`),
        dropped: 1,
      };
    return { status: 200, response, dropped: 0 };
  }

  if (response.entry != null && !Array.isArray(response.entry)) {
    const diagnostics = "the response Bundle's entry is not a list, so its entries cannot be checked";
    return {
      status: 500,
      response: {
        resourceType: "OperationOutcome",
        issue: [{ severity: "error", code: "exception", diagnostics }],
      },
      dropped: 0,
    };
  }
  const entries = response.entry ?? [];
  const kept: BundleEntry[] = [];
  entries.forEach((entry, i) => {
    if (released(entry?.resource, i)) kept.push(entry);
  });
  const dropped = entries.length - kept.length;
  if (dropped === 0 && decision.decision === "allow") return { status: 200, response, dropped: 0 };

  const out: FhirBundle = { ...response };
  if (Array.isArray(response.entry)) out.entry = kept;
  if (response.total !== undefined) {
    out.total =
      response.type === "searchset"
        ? kept.filter((e) => e?.search?.mode === undefined || e.search.mode === "match").length
        : kept.length;
  }
  if (dropped > 0 && Array.isArray(response.link)) {
    out.link = response.link.filter((l) => l?.relation === "self");
    if (out.link.length === 0) delete out.link;
  }
  return { status: 200, response: out, dropped };
}

function isBundle(value: unknown): value is FhirBundle {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { resourceType?: unknown }).resourceType === "Bundle"
  );
}

function refOf(resource: unknown): string | undefined {
  if (typeof resource !== "object" || resource === null) return undefined;
  const { resourceType, id } = resource as { resourceType?: unknown; id?: unknown };
  return typeof resourceType === "string" && typeof id === "string" ? `${resourceType}/${id}` : undefined;
}

function notFound(diagnostics: string): Record<string, unknown> {
  return {
    resourceType: "OperationOutcome",
    issue: [{ severity: "error", code: "not-found", diagnostics }],
  };
}
