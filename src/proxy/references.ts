/**
 * References in what a client writes are an existence oracle unless the proxy checks them first:
 * a FHIR server validates every local reference of a create or update (HAPI: 400 "Resource
 * Observation/x not found" when it does not exist, 201 when it does), so a patient could learn
 * which of another patient's records exist by writing references to them. Before a write is
 * forwarded, every local reference to a patient's data (Patient and the types of the Patient
 * compartment, as the policy knows them) must name a resource the token's context may read — the
 * compartment and the security labels, decided by the policy on the stored resource. A reference
 * that names a missing record and one that names a hidden record get the same refusal. Conditional
 * references (`Observation?code=…`) to such types are refused: their matches are the same oracle.
 * References to other types (Practitioner, Organization, …) are left to the server: they hold no
 * patient's data.
 */
import type { Decider, Claims } from "./decide.js";
import { upstreamCall, type Exchange, type ProxyRuntime } from "./exchange.js";
import { ProxyError } from "./outcome.js";
import { isObject } from "./release.js";
import type { UrlMap } from "./rewrite.js";

const LOCAL = /^([A-Z][A-Za-z]{1,63})\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const CONDITIONAL = /^([A-Z][A-Za-z]{1,63})\?/;

/** Every `reference` string in a JSON value (a resource, a JSON Patch, a Parameters patch). */
export function referencesIn(value: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const v of node) walk(v);
    else if (isObject(node)) {
      for (const [k, v] of Object.entries(node)) {
        if (k === "reference" && typeof v === "string") out.push(v);
        else walk(v);
      }
    }
  };
  walk(value);
  return out;
}

export type LocalReference =
  | { kind: "instance"; type: string; id: string; text: string }
  | { kind: "conditional"; type: string; text: string };

/** The reference as one to this server's resource (relative, or absolute on its or the proxy's base), or undefined. */
export function localReference(reference: string, urls: UrlMap): LocalReference | undefined {
  let rel = reference;
  for (const base of [urls.upstreamBase, urls.publicBase]) {
    if (base !== "" && reference.startsWith(`${base}/`)) rel = reference.slice(base.length + 1);
  }
  const m = LOCAL.exec(rel);
  if (m) return { kind: "instance", type: m[1]!, id: m[2]!, text: reference };
  const c = CONDITIONAL.exec(rel);
  if (c) return { kind: "conditional", type: c[1]!, text: reference };
  return undefined;
}

/** The token's claims asking only "may this context read it": the same context, every type, read. */
export function readerClaims(claims: Claims): Claims {
  const scope = typeof claims.scope === "string" ? claims.scope : "";
  const context =
    /(^|\s)patient\//.test(scope) && typeof claims.patient === "string"
      ? "patient"
      : /(^|\s)user\//.test(scope)
        ? "user"
        : "system";
  return { ...claims, scope: `${context}/*.rs` };
}

/** Whether `type` holds patients' data: Patient, or a type of the Patient compartment (asked of the policy, remembered). */
class PatientTypes {
  private readonly known = new Map<string, boolean>();
  constructor(private readonly decider: Decider) {}
  async has(type: string): Promise<boolean> {
    const hit = this.known.get(type);
    if (hit !== undefined) return hit;
    const yes = (await this.decider.compartmentNarrowing(type, "reference-check")) !== undefined;
    this.known.set(type, yes);
    return yes;
  }
}

const patientTypes = new WeakMap<Decider, PatientTypes>();

/** Refuses (400) a write whose body references a patient's record the token's context may not read, or that does not exist. */
export async function refuseHiddenReferences(rt: ProxyRuntime, ex: Exchange, body: unknown): Promise<void> {
  if (body === undefined) return;
  let types = patientTypes.get(rt.decider);
  if (!types) patientTypes.set(rt.decider, (types = new PatientTypes(rt.decider)));
  const seen = new Set<string>();
  for (const text of referencesIn(body)) {
    const ref = localReference(text, rt.urls);
    if (ref === undefined || seen.has(ref.text)) continue;
    seen.add(ref.text);
    if (!(await types.has(ref.type))) continue;
    if (ref.kind === "conditional") {
      throw new ProxyError(
        400,
        "invalid",
        `the conditional reference ${JSON.stringify(ref.text)} is not accepted through the proxy: reference ${ref.type} resources by id`,
      );
    }
    if (!(await readable(rt, ex, ref.type, ref.id))) {
      throw new ProxyError(
        400,
        "invalid",
        `the reference ${JSON.stringify(ref.text)} does not name a resource this token may reference (it does not exist, or the token may not read it)`,
      );
    }
  }
}

async function readable(rt: ProxyRuntime, ex: Exchange, type: string, id: string): Promise<boolean> {
  const res = await upstreamCall(rt, ex, "GET", `${type}/${id}`);
  if (res.status !== 200) return false;
  const resource = res.json;
  if (!isObject(resource) || resource.resourceType !== type || resource.id !== id) return false;
  const d = await rt.decider.decide(
    readerClaims(ex.claims),
    { method: "GET", url: `${type}/${id}` },
    { resource, requestId: ex.client.requestId },
  );
  return d.decision === "allow";
}
