/**
 * A minimal FHIR R4 JSON client for the end-to-end tests: one GET, and a search that follows every
 * `next` link and records what each page said. No retries, no caching: tests see what the server did.
 */

export interface BundleLink {
  relation: string;
  url: string;
}
export interface BundleEntry {
  fullUrl?: string;
  resource: { resourceType: string; id: string; [k: string]: unknown };
  search?: { mode?: string };
}
export interface Bundle {
  resourceType: "Bundle";
  type: string;
  total?: number;
  link?: BundleLink[];
  entry?: BundleEntry[];
}
export interface OperationOutcome {
  resourceType: "OperationOutcome";
  issue: { severity: string; code: string; diagnostics?: string }[];
}
export interface FhirResponse<T = unknown> {
  status: number;
  body: T;
}

export const FHIR_JSON = "application/fhir+json";

export async function fhirGet<T = Bundle | OperationOutcome>(
  url: string,
  timeoutMs = 60_000,
): Promise<FhirResponse<T>> {
  const res = await fetch(url, { headers: { accept: FHIR_JSON }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body: body as T };
}

export const keyOf = (e: BundleEntry): string => `${e.resource.resourceType}/${e.resource.id}`;
export const nextLink = (b: Bundle): string | undefined => b.link?.find((l) => l.relation === "next")?.url;

export interface PageInfo {
  url: string;
  total: number | undefined;
  match: string[];
  include: string[];
  relations: string[];
  next: string | undefined;
}
export interface SearchResult {
  pages: PageInfo[];
  /** `search.mode = match` entries of every page, in order (duplicates kept). */
  match: string[];
  /** `search.mode = include` entries of every page, in order (duplicates kept). */
  include: string[];
}

/** GET `<base>/<path>` and every `next` page; throws on anything but a 200 searchset Bundle. */
export async function searchAll(base: string, path: string, maxPages = 200): Promise<SearchResult> {
  const out: SearchResult = { pages: [], match: [], include: [] };
  let url: string | undefined = `${base}/${path}`;
  while (url) {
    if (out.pages.length >= maxPages) throw new Error(`${path}: more than ${maxPages} pages`);
    const r: FhirResponse<Bundle | OperationOutcome> = await fhirGet(url);
    if (r.status !== 200 || r.body.resourceType !== "Bundle" || r.body.type !== "searchset") {
      throw new Error(`GET ${url}: HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    }
    const b: Bundle = r.body;
    const entries = b.entry ?? [];
    const page: PageInfo = {
      url,
      total: b.total,
      match: entries.filter((e) => (e.search?.mode ?? "match") === "match").map(keyOf),
      include: entries.filter((e) => e.search?.mode === "include").map(keyOf),
      relations: (b.link ?? []).map((l) => l.relation),
      next: nextLink(b),
    };
    out.pages.push(page);
    out.match.push(...page.match);
    out.include.push(...page.include);
    url = page.next;
  }
  return out;
}
