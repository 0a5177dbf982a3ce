/**
 * Bounds on a FHIR request, checked before it is evaluated: the URL's length, the number of search
 * parameters and how often one name repeats. The policy's cost grows with each of them (and faster
 * than linearly with some), so a request beyond them is refused with 400 instead of occupying a
 * policy worker until its deadline. Every query string the policy parses counts: the URL's, a POST
 * _search form body, If-None-Exist, and the same for every entry of a batch or transaction.
 */
import { hostDenial, type Decision } from "../core/contract.js";
import type { LimitsConfig } from "../ops/config.js";

export type RequestBounds = Pick<LimitsConfig, "maxUrlBytes" | "maxParameters" | "maxParameterRepeats">;

export interface BoundsViolation {
  code: "url-too-long" | "too-many-parameters" | "parameter-repeated-too-often";
  message: string;
}

/**
 * The first bound `request` (a contract `request`, possibly unvalidated) exceeds, or undefined.
 * Anything that is not shaped like a request is left to the policy to refuse.
 */
export function checkRequestBounds(request: unknown, bounds: RequestBounds): BoundsViolation | undefined {
  if (!isObject(request)) return undefined;
  const top = checkOne(request, bounds, "the request", true);
  if (top) return top;
  const body = request.body;
  if (!isObject(body) || body.resourceType !== "Bundle" || !Array.isArray(body.entry)) return undefined;
  for (const [i, entry] of body.entry.entries()) {
    if (!isObject(entry) || !isObject(entry.request)) continue;
    const r = entry.request;
    const asRequest = {
      method: r.method,
      url: r.url,
      headers: typeof r.ifNoneExist === "string" ? { "if-none-exist": r.ifNoneExist } : {},
    };
    const violation = checkOne(asRequest, bounds, `batch entry ${i}`, false);
    if (violation) return violation;
  }
  return undefined;
}

/** The deny a bounds violation becomes: status 400 with an OperationOutcome. */
export function boundsDenial(violation: BoundsViolation): Decision {
  const issueCode = violation.code === "url-too-long" ? "too-long" : "too-costly";
  return hostDenial(violation.code, violation.message, 400, issueCode);
}

function checkOne(
  request: Record<string, unknown>,
  bounds: RequestBounds,
  what: string,
  withBody: boolean,
): BoundsViolation | undefined {
  if (typeof request.url !== "string") return undefined;
  const url = request.url;
  const urlBytes = Buffer.byteLength(url, "utf8");
  if (urlBytes > bounds.maxUrlBytes) {
    return {
      code: "url-too-long",
      message: `the URL of ${what} is ${urlBytes} bytes, over the limit of ${bounds.maxUrlBytes} (limits.max_url_bytes)`,
    };
  }
  const q = url.indexOf("?");
  const names = q === -1 ? [] : queryNames(url.slice(q + 1));
  if (withBody && isPostSearch(request.method, url)) names.push(...bodyNames(request.body));
  const violation = countNames(names, bounds, what);
  if (violation) return violation;
  for (const value of headerValues(request.headers, "if-none-exist")) {
    const bytes = Buffer.byteLength(value, "utf8");
    if (bytes > bounds.maxUrlBytes) {
      return {
        code: "url-too-long",
        message: `the If-None-Exist search of ${what} is ${bytes} bytes, over the limit of ${bounds.maxUrlBytes} (limits.max_url_bytes)`,
      };
    }
    const search = value.includes("?") ? value.slice(value.indexOf("?") + 1) : value;
    const inner = countNames(queryNames(search), bounds, `the If-None-Exist search of ${what}`);
    if (inner) return inner;
  }
  return undefined;
}

function countNames(names: string[], bounds: RequestBounds, what: string): BoundsViolation | undefined {
  if (names.length > bounds.maxParameters) {
    return {
      code: "too-many-parameters",
      message: `${what} has ${names.length} search parameters, over the limit of ${bounds.maxParameters} (limits.max_parameters)`,
    };
  }
  const counts = new Map<string, number>();
  for (const name of names) {
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    if (n > bounds.maxParameterRepeats) {
      return {
        code: "parameter-repeated-too-often",
        message: `${what} repeats the parameter ${JSON.stringify(name)} more than ${bounds.maxParameterRepeats} times (limits.max_parameter_repeats)`,
      };
    }
  }
  return undefined;
}

/** The parameter names of a query string (form encoding: `+` is a space), decoded where possible. */
function queryNames(query: string): string[] {
  const names: string[] = [];
  for (const item of query.split("&")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    names.push(decode(eq === -1 ? item : item.slice(0, eq)));
  }
  return names;
}

/** The parameter names of a POST _search body: form text, or a JSON object of name -> value(s). */
function bodyNames(body: unknown): string[] {
  if (typeof body === "string") return queryNames(body);
  if (!isObject(body) || body.resourceType !== undefined) return [];
  return Object.entries(body).flatMap(([name, value]) =>
    Array.isArray(value) ? value.map(() => name) : [name],
  );
}

function isPostSearch(method: unknown, url: string): boolean {
  const path = url.split("?", 1)[0]!;
  return typeof method === "string" && method.toUpperCase() === "POST" && /(^|\/)_search$/.test(path);
}

function headerValues(headers: unknown, name: string): string[] {
  if (!isObject(headers)) return [];
  const v = headers[name];
  if (typeof v === "string") return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function decode(text: string): string {
  const plus = text.replace(/\+/g, " ");
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
