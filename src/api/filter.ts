/**
 * Applies a decision's `drop` list to a FHIR response. The policy decides what to release; this
 * only removes what it says and makes sure the result does not leak what was removed: a searchset
 * Bundle's `total` counts what remains, and paging links (which would let a client walk past the
 * filter) are removed once anything was dropped. A dropped single resource becomes a 404.
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
 * index -1 or the resource's own ref for a single resource). Pure: the input is not modified.
 * A decision that is not allow/filter releases nothing.
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

  if (!isBundle(response)) {
    const ref = refOf(response);
    const dropped = dropIndexes.has(-1) || (ref !== undefined && dropRefs.has(ref));
    if (dropped)
      return { status: 404, response: notFound(`${ref ?? "the resource"} is not available`), dropped: 1 };
    return { status: 200, response, dropped: 0 };
  }

  const entries = Array.isArray(response.entry) ? response.entry : [];
  const kept: BundleEntry[] = [];
  entries.forEach((entry, i) => {
    const ref = refOf(entry?.resource);
    if (dropIndexes.has(i) || (ref !== undefined && dropRefs.has(ref))) return;
    kept.push(entry);
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
