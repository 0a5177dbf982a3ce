/**
 * What the proxy must do with a FHIR REST request: the interaction its method and path name
 * (FHIR R4 http.html), so the right handler carries out the policy's decision. The policy decides
 * on the same raw method and URL; this only picks the way to carry it out, and anything it does not
 * recognise is refused rather than forwarded.
 *
 * Also the query helpers every handler shares: the raw query is kept as the client sent it (what
 * the policy saw is what the server gets), parameters are only removed by name or appended encoded.
 */

export type Level = "system" | "type" | "instance";

export type Interaction =
  | { kind: "capabilities"; which: "metadata" | "smart-configuration" }
  | { kind: "page" }
  | { kind: "batch" }
  | { kind: "search"; level: "system" | "type"; type?: string; post: boolean }
  | { kind: "compartment-search"; compartment: { type: string; id: string }; type: string }
  | { kind: "history"; level: Level; type?: string; id?: string }
  | { kind: "read"; type: string; id: string; version?: string }
  | { kind: "create"; type: string }
  | { kind: "update" | "patch" | "delete"; type: string; id: string }
  | { kind: "conditional"; method: "PUT" | "PATCH" | "DELETE"; type: string }
  | { kind: "operation"; level: Level; type?: string; id?: string; name: string }
  | { kind: "unsupported"; message: string };

/** The reserved path the proxy serves paging cursors on: `<base>/_page?cursor=…`. */
export const PAGE_PATH = "_page";

const TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const OPERATION = /^\$[A-Za-z][A-Za-z0-9-]*$/;

/** A request target relative to the FHIR base: raw path and raw query, and the decoded path segments. */
export interface Target {
  /** The raw path relative to the base ("" for the base), as the client sent it. */
  path: string;
  /** The raw query without "?", as the client sent it ("" when none). */
  query: string;
  /** The path segments, percent-decoded. */
  segments: string[];
}

/** The target of `rawUrl` (path + query) under `basePath`; undefined when it is not under the base or not decodable. */
export function targetOf(rawUrl: string, basePath: string): Target | { error: string } | undefined {
  const q = rawUrl.indexOf("?");
  const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = q === -1 ? "" : rawUrl.slice(q + 1);
  if (rawUrl.includes("#")) return { error: "the request URL contains a fragment" };
  let path: string;
  if (rawPath === basePath || rawPath === `${basePath}/`) path = "";
  else if (rawPath.startsWith(`${basePath}/`)) path = rawPath.slice(basePath.length + 1);
  else return undefined;
  const segments: string[] = [];
  if (path !== "") {
    for (const raw of path.split("/")) {
      let s: string;
      try {
        s = decodeURIComponent(raw);
      } catch {
        return { error: "the request path has a badly percent-encoded segment" };
      }
      if (s === "" || s === "." || s === ".." || s.includes("/") || /[\x00-\x1f\x7f]/.test(s))
        return { error: "the request path has an empty, '.', '..' or control-character segment" };
      segments.push(s);
    }
  }
  return { path, query, segments };
}

/** The interaction `method` performs on `segments` (with or without a query). */
export function classify(method: string, segments: string[], hasQuery: boolean): Interaction {
  const m = method === "HEAD" ? "GET" : method;
  const [a, b, c, d] = segments;
  const n = segments.length;
  const unsupported = (message: string): Interaction => ({ kind: "unsupported", message });
  if (n === 0) {
    if (m === "GET") return { kind: "search", level: "system", post: false };
    if (m === "POST") return { kind: "batch" };
    return unsupported(`${method} on the FHIR base is not a FHIR interaction`);
  }
  if (n === 1 && a === "metadata") {
    return m === "GET" ? { kind: "capabilities", which: "metadata" } : unsupported("metadata is read-only");
  }
  if (n === 2 && a === ".well-known" && b === "smart-configuration") {
    return m === "GET"
      ? { kind: "capabilities", which: "smart-configuration" }
      : unsupported("the SMART configuration is read-only");
  }
  if (n === 1 && a === PAGE_PATH) {
    return m === "GET" ? { kind: "page" } : unsupported("paging links are followed with GET");
  }
  if (n === 1 && a === "_history") {
    return m === "GET" ? { kind: "history", level: "system" } : unsupported("history is read-only");
  }
  if (n === 1 && OPERATION.test(a!)) return { kind: "operation", level: "system", name: a! };
  if (!TYPE.test(a!)) return unsupported(`${JSON.stringify(a)} is not a FHIR resource type`);
  const type = a!;
  if (n === 1) {
    switch (m) {
      case "GET":
        return { kind: "search", level: "type", type, post: false };
      case "POST":
        return { kind: "create", type };
      case "PUT":
      case "PATCH":
      case "DELETE":
        return hasQuery
          ? { kind: "conditional", method: m, type }
          : unsupported(`${method} ${type} needs an id or search parameters`);
      default:
        return unsupported(`${method} is not a FHIR interaction`);
    }
  }
  if (b === "_search") {
    return n === 2 && m === "POST"
      ? { kind: "search", level: "type", type, post: true }
      : unsupported("_search is POSTed to [type]/_search");
  }
  if (b === "_history") {
    return n === 2 && m === "GET"
      ? { kind: "history", level: "type", type }
      : unsupported("type history is read with GET");
  }
  if (OPERATION.test(b!)) {
    return n === 2
      ? { kind: "operation", level: "type", type, name: b! }
      : unsupported("malformed operation path");
  }
  if (!ID.test(b!)) return unsupported(`${JSON.stringify(b)} is not a FHIR id`);
  const id = b!;
  if (n === 2) {
    switch (m) {
      case "GET":
        return { kind: "read", type, id };
      case "PUT":
        return { kind: "update", type, id };
      case "PATCH":
        return { kind: "patch", type, id };
      case "DELETE":
        return { kind: "delete", type, id };
      default:
        return unsupported(`${method} ${type}/${id} is not a FHIR interaction`);
    }
  }
  if (c === "_history") {
    if (m !== "GET") return unsupported("history is read with GET");
    if (n === 3) return { kind: "history", level: "instance", type, id };
    if (n === 4 && ID.test(d!)) return { kind: "read", type, id, version: d! };
    return unsupported("malformed history path");
  }
  if (OPERATION.test(c!)) {
    return n === 3
      ? { kind: "operation", level: "instance", type, id, name: c! }
      : unsupported("malformed operation path");
  }
  if (n === 3 && TYPE.test(c!) && m === "GET") {
    return { kind: "compartment-search", compartment: { type, id }, type: c! };
  }
  return unsupported("this path is not a FHIR interaction the proxy carries out");
}

// --- Query strings ------------------------------------------------------------------------

/** One raw `name=value` item of a query string, with its decoded name. */
interface QueryItem {
  raw: string;
  name: string;
  value: string;
}

export function queryItems(query: string): QueryItem[] {
  if (query === "") return [];
  return query
    .split("&")
    .filter((raw) => raw !== "")
    .map((raw) => {
      const i = raw.indexOf("=");
      const rawName = i === -1 ? raw : raw.slice(0, i);
      const rawValue = i === -1 ? "" : raw.slice(i + 1);
      return { raw, name: safeDecode(rawName), value: safeDecode(rawValue) };
    });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

/** The decoded values of every parameter named `name` (exact name, modifiers included). */
export function queryValues(query: string, name: string): string[] {
  return queryItems(query)
    .filter((i) => i.name === name)
    .map((i) => i.value);
}

/** The query without the parameters whose decoded name is in `names`; the rest stay byte for byte. */
export function withoutParams(query: string, names: readonly string[]): string {
  return queryItems(query)
    .filter((i) => !names.includes(i.name))
    .map((i) => i.raw)
    .join("&");
}

/**
 * Server paging parameters (HAPI's `_getpages`, `_getpagesoffset`, `_bundletype`, offset paging):
 * a client pages with the proxy's cursors only, whatever the policy does with unknown parameters,
 * so it can never address another search's stored result pages.
 */
const SERVER_PAGING_PARAMS = new Set([
  "_getpages",
  "_getpagesoffset",
  "_bundletype",
  "_offset",
  "_pageId",
  "_page_id",
]);

/** The first server paging parameter in a query, if any. */
export function serverPagingParam(query: string): string | undefined {
  return queryItems(query).find((i) => SERVER_PAGING_PARAMS.has(i.name))?.name;
}

/** Appends `params` (encoded) to a raw query string. */
export function appendParams(query: string, params: readonly (readonly [string, string])[]): string {
  const added = params.map(([k, v]) => `${encodeParam(k)}=${encodeParam(v)}`);
  return [query, ...added].filter((s) => s !== "").join("&");
}

/** Percent-encodes a query name or value; `|`, `:` and `/` stay readable (they mean the same either way). */
export function encodeParam(s: string): string {
  return encodeURIComponent(s).replace(/%7C/gi, "|").replace(/%3A/gi, ":").replace(/%2F/gi, "/");
}

/** Joins a path relative to the base with a query. */
export function withQuery(path: string, query: string): string {
  return query === "" ? path : `${path}?${query}`;
}
