/**
 * A small, deterministic in-process FHIR R4 JSON server for the proxy's tests. It behaves like HAPI
 * JPA where the proxy depends on it: versions and ETags, If-Match (412), read/vread/history,
 * searches on a few parameters with `_count` paging through `?_getpages=<id>&_getpagesoffset=<n>`
 * links, `_include`/`_revinclude`, `_filter` (a subset of the grammar: `eq`, `and`, `or`,
 * parentheses; off unless enabled), compartment search (off unless enabled), `$everything`,
 * conditional update/delete, batch and transaction (atomic), and a CapabilityStatement saying which
 * of those are on. Every request is logged for assertions. Not a FHIR server: only what tests need.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { listen, type Listening } from "./servers.js";

export type Res = { resourceType: string; id: string; meta?: Record<string, unknown>; [k: string]: unknown };

export interface FakeOptions {
  /** Accept `_filter` and announce it in the CapabilityStatement. */
  filter?: boolean;
  /** Serve Patient/[id]/[type] and announce the Patient compartment. */
  compartment?: boolean;
  /** Default page size. */
  pageSize?: number;
  /** Answer everything with this instead (status, content type, body) — for failure tests. */
  override?: (req: LoggedRequest) => { status: number; type: string; body: string } | undefined;
  /** Delay every answer (ms). */
  delayMs?: number;
  /** Like HAPI 8.8 once did: a first page of an ORed `_filter` search comes without its `next` link. */
  filterQuirk?: boolean;
  /** Honour If-Match on DELETE (HAPI 8.8 ignores it; so does this server unless set). */
  deleteIfMatch?: boolean;
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

interface Version {
  resource: Res | null; // null: deleted
  versionId: number;
  lastUpdated: string;
  method: string;
}

const PARAMS: Record<string, Record<string, { path: string; kind: "reference" | "token" | "string" }>> = {
  Observation: {
    patient: { path: "subject", kind: "reference" },
    subject: { path: "subject", kind: "reference" },
    performer: { path: "performer", kind: "reference" },
    encounter: { path: "encounter", kind: "reference" },
    code: { path: "code", kind: "token" },
    category: { path: "category", kind: "token" },
    status: { path: "status", kind: "token" },
  },
  Encounter: {
    patient: { path: "subject", kind: "reference" },
    subject: { path: "subject", kind: "reference" },
    status: { path: "status", kind: "token" },
  },
  Condition: {
    patient: { path: "subject", kind: "reference" },
    subject: { path: "subject", kind: "reference" },
    code: { path: "code", kind: "token" },
  },
  Communication: {
    patient: { path: "subject", kind: "reference" },
    subject: { path: "subject", kind: "reference" },
    sender: { path: "sender", kind: "reference" },
    recipient: { path: "recipient", kind: "reference" },
  },
  Provenance: {
    patient: { path: "target", kind: "reference" },
    target: { path: "target", kind: "reference" },
  },
  Patient: {
    name: { path: "name", kind: "string" },
    link: { path: "link.other", kind: "reference" },
  },
  Practitioner: { name: { path: "name", kind: "string" } },
  Organization: { name: { path: "name", kind: "string" } },
};

const RESULT_PARAMS = new Set([
  "_offset",
  "_count",
  "_include",
  "_revinclude",
  "_sort",
  "_total",
  "_summary",
  "_elements",
  "_pretty",
  "_format",
]);

/** Compartment parameters (R4 CompartmentDefinition patient, for the types above). */
const COMPARTMENT: Record<string, string[]> = {
  Observation: ["subject", "performer"],
  Encounter: ["subject"],
  Condition: ["subject"],
  Communication: ["subject", "sender", "recipient"],
  Provenance: ["patient"],
};

export class FakeFhir {
  readonly log: LoggedRequest[] = [];
  private readonly store = new Map<string, Version[]>();
  private readonly searches = new Map<string, { matches: Res[]; includes: string; revincludes: string }>();
  private clock = Date.parse("2026-01-01T00:00:00Z");

  private constructor(
    readonly http: Listening,
    readonly options: FakeOptions,
  ) {}

  static async start(options: FakeOptions = {}): Promise<FakeFhir> {
    let self: FakeFhir | undefined;
    const http = await listen((req, res) => void self!.handle(req, res));
    self = new FakeFhir(http, options);
    return self;
  }

  get base(): string {
    return `${this.http.url}/fhir`;
  }

  close(): Promise<void> {
    return this.http.close();
  }

  /** Stores resources as they are (a new version each), as an admin would, not through the API. */
  seed(...resources: Res[]): void {
    for (const r of resources) this.write(r, "PUT");
  }

  /** The current version of Type/id (undefined when absent or deleted). */
  current(key: string): Res | undefined {
    const versions = this.store.get(key);
    return versions?.[versions.length - 1]?.resource ?? undefined;
  }

  /** Requests whose method and URL path (without the base) match. */
  requests(method?: string): LoggedRequest[] {
    return this.log.filter((r) => method === undefined || r.method === method);
  }

  private write(r: Res, method: string): Res {
    const key = `${r.resourceType}/${r.id}`;
    const versions = this.store.get(key) ?? [];
    this.clock += 1000;
    const versionId = versions.length + 1;
    const lastUpdated = new Date(this.clock).toISOString();
    const stored = { ...r, meta: { ...(r.meta ?? {}), versionId: String(versionId), lastUpdated } };
    versions.push({ resource: stored, versionId, lastUpdated, method });
    this.store.set(key, versions);
    return stored;
  }

  private remove(key: string): void {
    const versions = this.store.get(key);
    if (!versions) return;
    this.clock += 1000;
    versions.push({
      resource: null,
      versionId: versions.length + 1,
      lastUpdated: new Date(this.clock).toISOString(),
      method: "DELETE",
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const logged: LoggedRequest = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    this.log.push(logged);
    if (this.options.delayMs) await new Promise((r) => setTimeout(r, this.options.delayMs));
    const override = this.options.override?.(logged);
    if (override) {
      res.writeHead(override.status, { "content-type": override.type }).end(override.body);
      return;
    }
    let answer: Answer;
    try {
      answer = this.route(logged);
    } catch (err) {
      answer = err instanceof FhirError ? err.answer() : oo(500, "exception", String(err));
    }
    const headers: Record<string, string> = { ...(answer.headers ?? {}) };
    if (answer.body !== undefined) headers["content-type"] = "application/fhir+json;charset=utf-8";
    res
      .writeHead(answer.status, headers)
      .end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
  }

  private route(req: LoggedRequest): Answer {
    const url = new URL(req.url, this.http.url);
    if (!url.pathname.startsWith("/fhir")) throw new FhirError(404, "not-found", "not under /fhir");
    const segments = url.pathname
      .slice("/fhir".length)
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent);
    const params = [...url.searchParams.entries()];
    const method = req.method;
    const form = String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
    const body = req.body === "" || form ? undefined : (JSON.parse(req.body) as unknown);
    const [a, b, c, d] = segments;
    if (segments.length === 0) {
      if (method === "GET" && url.searchParams.has("_getpages")) return this.page(url.searchParams);
      if (method === "POST") return this.batch(body as Res);
      throw new FhirError(400, "not-supported", "system search is not supported here");
    }
    if (a === "metadata") return { status: 200, body: this.capabilityStatement() };
    if (segments.length === 1) {
      if (method === "GET") return this.search(a!, params, undefined);
      if (method === "POST") {
        const ine = req.headers["if-none-exist"];
        return this.create(a!, body as Res, typeof ine === "string" ? ine : undefined, req.headers.prefer);
      }
      if (method === "PUT" || method === "DELETE" || method === "PATCH")
        return this.conditional(method, a!, params, body, req);
    }
    if (b === "_search" && method === "POST") {
      const form = new URLSearchParams(req.body);
      return this.search(a!, [...params, ...form.entries()], undefined);
    }
    if (b === "_history") return this.history(a!, undefined);
    if (segments.length === 2 && b) {
      const key = `${a}/${b}`;
      if (method === "GET") return this.read(key, undefined);
      if (method === "PUT") return this.update(key, body as Res, req);
      if (method === "DELETE") return this.delete(key, req);
      if (method === "PATCH") return this.patch(key, body, req);
    }
    if (c === "_history" && segments.length === 3) return this.history(a!, b);
    if (c === "_history" && d) return this.read(`${a}/${b}`, d);
    if (c === "$everything" && a === "Patient") return this.everything(b!, params);
    if (segments.length === 3 && a === "Patient" && c) {
      if (!this.options.compartment)
        throw new FhirError(
          400,
          "not-supported",
          `Invalid request: The FHIR endpoint on this server does not know how to handle GET operation[${a}/${b}/${c}]`,
        );
      return this.search(c, params, b);
    }
    throw new FhirError(400, "not-supported", `unknown path ${url.pathname}`);
  }

  private capabilityStatement(): Res {
    const filterParam = this.options.filter ? [{ name: "_filter", type: "string" }] : [];
    return {
      resourceType: "CapabilityStatement",
      id: "fake",
      status: "active",
      kind: "instance",
      fhirVersion: "4.0.1",
      format: ["json"],
      implementation: { description: "fake FHIR", url: this.base },
      rest: [
        {
          mode: "server",
          ...(this.options.compartment
            ? { compartment: ["http://hl7.org/fhir/CompartmentDefinition/patient"] }
            : {}),
          resource: Object.keys(PARAMS).map((type) => ({
            type,
            searchParam: [
              ...Object.keys(PARAMS[type]!).map((name) => ({ name, type: "reference" })),
              ...filterParam,
            ],
          })),
        },
      ],
    };
  }

  private read(key: string, version: string | undefined): Answer {
    const versions = this.store.get(key);
    if (!versions) throw new FhirError(404, "not-found", `Resource ${key} is not known`);
    const v = version === undefined ? versions[versions.length - 1]! : versions[Number(version) - 1];
    if (!v) throw new FhirError(404, "not-found", `Version ${version} of ${key} is not known`);
    if (!v.resource) throw new FhirError(410, "processing", `Resource was deleted at ${v.lastUpdated}`);
    return {
      status: 200,
      body: v.resource,
      headers: { etag: `W/"${v.versionId}"`, "last-modified": new Date(v.lastUpdated).toUTCString() },
    };
  }

  private ifMatch(key: string, req: LoggedRequest): void {
    const im = req.headers["if-match"];
    if (typeof im !== "string") return;
    const versions = this.store.get(key);
    const current = versions?.[versions.length - 1];
    if (!current || im.replace(/^W\//, "") !== `"${current.versionId}"`)
      throw new FhirError(412, "conflict", `version conflict for ${key}`);
  }

  private update(key: string, body: Res, req: LoggedRequest): Answer {
    this.ifMatch(key, req);
    const existed = this.current(key) !== undefined;
    const [type, id] = key.split("/");
    if (body?.resourceType !== type || body.id !== id)
      throw new FhirError(400, "invalid", "body does not match the URL");
    const stored = this.write(body, "PUT");
    return this.written(existed ? 200 : 201, stored, req.headers.prefer);
  }

  private patch(key: string, body: unknown, req: LoggedRequest): Answer {
    this.ifMatch(key, req);
    const current = this.current(key);
    if (!current) throw new FhirError(404, "not-found", `Resource ${key} is not known`);
    if (!Array.isArray(body)) throw new FhirError(400, "invalid", "only JSON Patch here");
    const next: Res = JSON.parse(JSON.stringify(current)) as Res;
    for (const op of body as { op: string; path: string; value?: unknown }[]) {
      const name = op.path.replace(/^\//, "").split("/")[0]!;
      if (op.op === "replace" || op.op === "add") next[name] = op.value;
      else if (op.op === "remove") delete next[name];
    }
    return this.written(200, this.write(next, "PATCH"), req.headers.prefer);
  }

  private delete(key: string, req: LoggedRequest): Answer {
    if (this.options.deleteIfMatch) this.ifMatch(key, req);
    if (!this.current(key)) return { status: 204 };
    this.remove(key);
    return {
      status: 200,
      body: {
        resourceType: "OperationOutcome",
        issue: [{ severity: "information", code: "informational", diagnostics: `deleted ${key}` }],
      },
    };
  }

  private create(type: string, body: Res, ifNoneExist: string | undefined, prefer: unknown): Answer {
    if (body?.resourceType !== type) throw new FhirError(400, "invalid", "body type does not match the URL");
    if (ifNoneExist !== undefined) {
      const matches = this.matches(type, [...new URLSearchParams(ifNoneExist).entries()], undefined);
      if (matches.length > 1) throw new FhirError(412, "duplicate", "multiple matches");
      if (matches.length === 1) return this.written(200, matches[0]!, prefer);
    }
    return this.written(201, this.write({ ...body, id: randomUUID() }, "POST"), prefer);
  }

  private conditional(
    method: string,
    type: string,
    params: [string, string][],
    body: unknown,
    req: LoggedRequest,
  ): Answer {
    const matches = this.matches(type, params, undefined);
    if (matches.length > 1) throw new FhirError(412, "duplicate", "multiple matches");
    if (method === "DELETE") {
      if (matches.length === 0) return { status: 204 };
      this.remove(`${type}/${matches[0]!.id}`);
      return { status: 204 };
    }
    if (method === "PUT") {
      if (matches.length === 0) {
        // As HAPI 8.8 does (seen against it): no match but the body names an existing id updates
        // that resource (R4 says 409), whoever it belongs to.
        const id = (body as Res).id;
        if (typeof id === "string" && this.current(`${type}/${id}`) !== undefined)
          return this.update(`${type}/${id}`, body as Res, req);
        return this.create(type, body as Res, undefined, req.headers.prefer);
      }
      return this.update(`${type}/${matches[0]!.id}`, { ...(body as Res), id: matches[0]!.id }, req);
    }
    if (matches.length === 0) throw new FhirError(404, "not-found", "no match");
    return this.patch(`${type}/${matches[0]!.id}`, body, req);
  }

  private written(status: number, resource: Res, prefer: unknown): Answer {
    const key = `${resource.resourceType}/${resource.id}`;
    const v = String((resource.meta as { versionId?: string }).versionId);
    const headers = { location: `${this.base}/${key}/_history/${v}`, etag: `W/"${v}"` };
    const minimal = typeof prefer === "string" && prefer.includes("return=minimal");
    return { status, headers, ...(minimal ? {} : { body: resource }) };
  }

  private history(type: string, id: string | undefined): Answer {
    const entries: unknown[] = [];
    for (const [key, versions] of this.store) {
      if (!key.startsWith(`${type}/`) || (id !== undefined && key !== `${type}/${id}`)) continue;
      for (const v of versions) {
        entries.push(
          v.resource
            ? {
                fullUrl: `${this.base}/${key}`,
                resource: v.resource,
                request: { method: v.method, url: key },
                response: { status: "200" },
              }
            : {
                fullUrl: `${this.base}/${key}`,
                request: { method: "DELETE", url: key },
                response: { status: "204" },
              },
        );
      }
    }
    if (id !== undefined && entries.length === 0)
      throw new FhirError(404, "not-found", `Resource ${type}/${id} is not known`);
    return {
      status: 200,
      body: {
        resourceType: "Bundle",
        type: "history",
        total: entries.length,
        link: [{ relation: "self", url: `${this.base}/${type}/_history` }],
        entry: entries.reverse(),
      },
    };
  }

  private everything(id: string, params: [string, string][]): Answer {
    const all = this.all();
    const ref = `Patient/${id}`;
    const matches = all.filter(
      (r) => (r.resourceType === "Patient" && r.id === id) || JSON.stringify(r).includes(`"${ref}"`),
    );
    return this.firstPage(matches, params, "", "");
  }

  private all(): Res[] {
    return [...this.store.values()].map((v) => v[v.length - 1]!.resource).filter((r): r is Res => r !== null);
  }

  private search(type: string, params: [string, string][], compartmentPatient: string | undefined): Answer {
    const matches = this.matches(type, params, compartmentPatient);
    const includes = params
      .filter(([k]) => k === "_include")
      .map(([, v]) => v)
      .join(",");
    const revincludes = params
      .filter(([k]) => k === "_revinclude")
      .map(([, v]) => v)
      .join(",");
    return this.firstPage(matches, params, includes, revincludes);
  }

  private firstPage(
    matches: Res[],
    params: [string, string][],
    includes: string,
    revincludes: string,
  ): Answer {
    const id = randomUUID();
    this.searches.set(id, { matches, includes, revincludes });
    const count = Number(params.find(([k]) => k === "_count")?.[1] ?? this.options.pageSize ?? 20);
    const offset = Number(params.find(([k]) => k === "_offset")?.[1] ?? 0);
    const subsetted = params.some(([k]) => k === "_summary" || k === "_elements");
    const answer = this.pageAnswer(id, offset, count, subsetted);
    const orFilter = params.some(([k, v]) => k === "_filter" && / or /.test(v));
    if (this.options.filterQuirk && orFilter && offset === 0) {
      const body = answer.body as { link: { relation: string }[] };
      body.link = body.link.filter((l) => l.relation !== "next");
    }
    return answer;
  }

  private page(q: URLSearchParams): Answer {
    const id = q.get("_getpages")!;
    if (!this.searches.has(id)) throw new FhirError(410, "processing", "search expired");
    return this.pageAnswer(id, Number(q.get("_getpagesoffset") ?? 0), Number(q.get("_count") ?? 20), false);
  }

  private pageAnswer(id: string, offset: number, count: number, subsetted: boolean): Answer {
    const s = this.searches.get(id)!;
    const slice = s.matches.slice(offset, offset + count);
    const link = [
      { relation: "self", url: `${this.base}?_getpages=${id}&_getpagesoffset=${offset}&_count=${count}` },
    ];
    if (offset + count < s.matches.length)
      link.push({
        relation: "next",
        url: `${this.base}?_getpages=${id}&_getpagesoffset=${offset + count}&_count=${count}&_bundletype=searchset`,
      });
    if (offset > 0)
      link.push({
        relation: "previous",
        url: `${this.base}?_getpages=${id}&_getpagesoffset=${Math.max(0, offset - count)}&_count=${count}&_bundletype=searchset`,
      });
    const included = new Map<string, Res>();
    for (const inc of s.includes.split(",").filter((x) => x !== "")) {
      const [, param] = inc.split(":");
      for (const r of slice) {
        const p = PARAMS[r.resourceType]?.[param!];
        for (const ref of p ? refsAt(r, p.path) : []) {
          const target = this.current(ref);
          if (target) included.set(ref, target);
        }
      }
    }
    for (const rev of s.revincludes.split(",").filter((x) => x !== "")) {
      const [type, param] = rev.split(":");
      const p = PARAMS[type!]?.[param!];
      for (const cand of this.all().filter((x) => x.resourceType === type)) {
        if (p && refsAt(cand, p.path).some((ref) => slice.some((m) => `${m.resourceType}/${m.id}` === ref)))
          included.set(`${cand.resourceType}/${cand.id}`, cand);
      }
    }
    const entry = [
      ...slice.map((r) => ({
        fullUrl: `${this.base}/${r.resourceType}/${r.id}`,
        resource: subsetted
          ? { resourceType: r.resourceType, id: r.id, meta: { tag: [{ code: "SUBSETTED" }] } }
          : r,
        search: { mode: "match" },
      })),
      ...[...included.values()].map((r) => ({
        fullUrl: `${this.base}/${r.resourceType}/${r.id}`,
        resource: r,
        search: { mode: "include" },
      })),
    ];
    return {
      status: 200,
      body: {
        resourceType: "Bundle",
        id: randomUUID(),
        type: "searchset",
        total: s.matches.length,
        link,
        entry,
      },
    };
  }

  /** The current resources of `type` matching every parameter (repeated parameters AND, commas OR). */
  matches(type: string, params: [string, string][], compartmentPatient: string | undefined): Res[] {
    const defs = PARAMS[type] ?? {};
    let out = this.all().filter((r) => r.resourceType === type);
    if (compartmentPatient !== undefined) {
      const ref = `Patient/${compartmentPatient}`;
      const paths = (COMPARTMENT[type] ?? []).map((p) => (p === "patient" ? "target" : p));
      out = out.filter((r) => paths.some((path) => refsAt(r, path).includes(ref)));
    }
    for (const [name, value] of params) {
      if (RESULT_PARAMS.has(name)) continue;
      if (name === "_filter") {
        if (!this.options.filter)
          throw new FhirError(400, "invalid", "_filter parameter is disabled on this server");
        const expr = parseFilter(value);
        out = out.filter((r) => evalFilter(expr, r, defs));
        continue;
      }
      if (name === "_lastUpdated") {
        if (!value.startsWith("eq")) throw new FhirError(400, "invalid", "only _lastUpdated=eq here");
        out = out.filter(
          (r) => (r.meta as { lastUpdated?: string } | undefined)?.lastUpdated === value.slice(2),
        );
        continue;
      }
      if (name === "_id") {
        const ids = value.split(",");
        out = out.filter((r) => ids.includes(r.id));
        continue;
      }
      const def = defs[name];
      if (!def)
        throw new FhirError(400, "invalid", `Unknown search parameter "${name}" for resource type "${type}"`);
      const alternatives = value.split(",");
      out = out.filter((r) => alternatives.some((v) => matchValue(r, def, v)));
    }
    return out.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }

  private batch(bundle: Res): Answer {
    if (bundle?.resourceType !== "Bundle" || (bundle.type !== "batch" && bundle.type !== "transaction"))
      throw new FhirError(400, "invalid", "not a batch or transaction");
    const entries = (bundle.entry ?? []) as {
      request: { method: string; url: string; ifMatch?: string; ifNoneExist?: string };
      resource?: Res;
    }[];
    const transaction = bundle.type === "transaction";
    const snapshot = transaction ? new Map([...this.store].map(([k, v]) => [k, [...v]])) : undefined;
    const out: unknown[] = [];
    for (const e of entries) {
      const headers: IncomingMessage["headers"] = {};
      if (e.request.ifMatch) headers["if-match"] = e.request.ifMatch;
      if (e.request.ifNoneExist) headers["if-none-exist"] = e.request.ifNoneExist;
      const req: LoggedRequest = {
        method: e.request.method,
        url: `/fhir/${e.request.url}`,
        headers,
        body: e.resource ? JSON.stringify(e.resource) : "",
      };
      let a: Answer;
      try {
        a = this.route(req);
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
        if (transaction && snapshot) {
          this.store.clear();
          for (const [k, v] of snapshot) this.store.set(k, v);
          throw err;
        }
        a = err.answer();
      }
      const response: Record<string, unknown> = { status: String(a.status) };
      if (a.headers?.location) response.location = a.headers.location;
      if (a.headers?.etag) response.etag = a.headers.etag;
      const isOutcome = (a.body as Res | undefined)?.resourceType === "OperationOutcome";
      if (isOutcome && a.status >= 400) response.outcome = a.body;
      out.push({ ...(a.body && !(isOutcome && a.status >= 400) ? { resource: a.body } : {}), response });
    }
    return {
      status: 200,
      body: {
        resourceType: "Bundle",
        id: randomUUID(),
        type: transaction ? "transaction-response" : "batch-response",
        link: [{ relation: "self", url: this.base }],
        entry: out,
      },
    };
  }
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  answer(): Answer {
    return oo(this.status, this.code, this.message);
  }
}

function oo(status: number, code: string, diagnostics: string): Answer {
  return {
    status,
    body: { resourceType: "OperationOutcome", issue: [{ severity: "error", code, diagnostics }] },
  };
}

/** References at a dotted path (arrays flattened), normalised to Type/id. */
function refsAt(r: Res, path: string): string[] {
  let values: unknown[] = [r];
  for (const part of path.split(".")) {
    values = values.flatMap((v) => {
      const x = (v as Record<string, unknown> | null)?.[part];
      return x === undefined ? [] : Array.isArray(x) ? x : [x];
    });
  }
  return values
    .map((v) => (v as { reference?: unknown })?.reference)
    .filter((x): x is string => typeof x === "string")
    .map((ref) => {
      const m = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]+)(\/_history\/[^/]+)?$/.exec(ref);
      return m ? m[1]! : ref;
    });
}

function matchValue(r: Res, def: { path: string; kind: string }, value: string): boolean {
  if (def.kind === "reference") {
    const want = value.includes("/") ? value.replace(/^.*?([A-Z][A-Za-z]+\/[^/]+)$/, "$1") : value;
    return refsAt(r, def.path).some((ref) => ref === want || ref.endsWith(`/${want}`));
  }
  const x = r[def.path];
  const items = Array.isArray(x) ? x : x === undefined ? [] : [x];
  if (def.kind === "string") {
    return items.some((n) => JSON.stringify(n).toLowerCase().includes(value.toLowerCase()));
  }
  const [system, code] = value.includes("|") ? value.split("|") : [undefined, value];
  return items.some((cc) => {
    if (typeof cc === "string") return cc === code;
    const codings = ((cc as { coding?: unknown[] }).coding ?? []) as { system?: string; code?: string }[];
    return codings.some(
      (c) => c.code === code && (system === undefined || system === "" || c.system === system),
    );
  });
}

// --- _filter (subset) ---------------------------------------------------------------------

type Filter = { op: "and" | "or"; left: Filter; right: Filter } | { param: string; value: string };

function parseFilter(text: string): Filter {
  const tokens: string[] = [];
  const re = /\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) tokens.push(m[1]!);
  if (tokens.join("").length !== text.replace(/\s+/g, "").length)
    throw new FhirError(400, "invalid", `bad _filter: ${text}`);
  let i = 0;
  const expr = (): Filter => {
    let left = and();
    while (tokens[i] === "or") {
      i++;
      left = { op: "or", left, right: and() };
    }
    return left;
  };
  const and = (): Filter => {
    let left = term();
    while (tokens[i] === "and") {
      i++;
      left = { op: "and", left, right: term() };
    }
    return left;
  };
  const term = (): Filter => {
    if (tokens[i] === "(") {
      i++;
      const e = expr();
      if (tokens[i++] !== ")") throw new FhirError(400, "invalid", "bad _filter: missing )");
      return e;
    }
    const param = tokens[i++];
    const op = tokens[i++];
    const raw = tokens[i++];
    if (!param || op !== "eq" || raw === undefined)
      throw new FhirError(400, "invalid", `bad _filter near ${param}`);
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    return { param, value };
  };
  const e = expr();
  if (i !== tokens.length) throw new FhirError(400, "invalid", "bad _filter: trailing input");
  return e;
}

function evalFilter(
  f: Filter,
  r: Res,
  defs: Record<string, { path: string; kind: "reference" | "token" | "string" }>,
): boolean {
  if ("op" in f)
    return f.op === "and"
      ? evalFilter(f.left, r, defs) && evalFilter(f.right, r, defs)
      : evalFilter(f.left, r, defs) || evalFilter(f.right, r, defs);
  if (f.param === "_id") return r.id === f.value;
  const def = defs[f.param];
  if (!def) throw new FhirError(400, "invalid", `unknown _filter parameter ${f.param}`);
  return matchValue(r, def, f.value);
}
