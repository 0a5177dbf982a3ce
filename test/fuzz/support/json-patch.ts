/**
 * RFC 6902 JSON Patch applied the way a FHIR server would (RFC 6901 pointers, "-" appends, the
 * empty pointer is the whole document), plus FHIR compartment membership read from the result.
 * Used to judge the policy's patch guard by what a patch DOES, not by how it is spelled.
 */
import { linkPaths } from "./fhir-data.js";

export interface PatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

class PatchError extends Error {}

function parsePointer(p: string): string[] {
  if (p === "") return [];
  if (!p.startsWith("/")) throw new PatchError(`bad pointer ${p}`);
  return p
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

const clone = <T>(x: T): T => structuredClone(x);

function parentOf(doc: unknown, tokens: string[]): { parent: unknown; key: string } {
  let node = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(node)) {
      const i = Number(t);
      if (!/^\d+$/.test(t) || i >= node.length) throw new PatchError(`no index ${t}`);
      node = node[i];
    } else if (typeof node === "object" && node !== null && Object.prototype.hasOwnProperty.call(node, t)) {
      node = (node as Record<string, unknown>)[t];
    } else throw new PatchError(`no member ${t}`);
  }
  return { parent: node, key: tokens[tokens.length - 1]! };
}

function get(doc: unknown, path: string): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return doc;
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    if (!/^\d+$/.test(key) || Number(key) >= parent.length) throw new PatchError(`no index ${key}`);
    return parent[Number(key)];
  }
  if (typeof parent !== "object" || parent === null || !Object.prototype.hasOwnProperty.call(parent, key)) {
    throw new PatchError(`no member ${key}`);
  }
  return (parent as Record<string, unknown>)[key];
}

function add(doc: unknown, path: string, value: unknown): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return clone(value);
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    if (key === "-") parent.push(clone(value));
    else {
      const i = Number(key);
      if (!/^\d+$/.test(key) || i > parent.length) throw new PatchError(`bad index ${key}`);
      parent.splice(i, 0, clone(value));
    }
  } else if (typeof parent === "object" && parent !== null) {
    (parent as Record<string, unknown>)[key] = clone(value);
  } else throw new PatchError("parent is not a container");
  return doc;
}

function remove(doc: unknown, path: string): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) throw new PatchError("cannot remove the root");
  get(doc, path);
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete (parent as Record<string, unknown>)[key];
  return doc;
}

/** The patched document, or undefined when a server would reject the patch. */
export function applyJsonPatch(document: unknown, ops: PatchOp[]): unknown {
  let doc = clone(document);
  try {
    for (const o of ops) {
      switch (o.op) {
        case "add":
          doc = add(doc, o.path, o.value);
          break;
        case "remove":
          doc = remove(doc, o.path);
          break;
        case "replace":
          get(doc, o.path);
          doc =
            parsePointer(o.path).length === 0 ? clone(o.value) : add(remove(doc, o.path), o.path, o.value);
          break;
        case "move": {
          if (o.from === undefined || o.from === "" || o.path.startsWith(`${o.from}/`)) return undefined;
          const v = clone(get(doc, o.from));
          doc = add(remove(doc, o.from), o.path, v);
          break;
        }
        case "copy":
          doc = add(doc, o.path, get(doc, o.from ?? ""));
          break;
        case "test":
          if (JSON.stringify(get(doc, o.path)) !== JSON.stringify(o.value)) return undefined;
          break;
        default:
          return undefined;
      }
    }
  } catch (err) {
    if (err instanceof PatchError) return undefined;
    throw err;
  }
  return doc;
}

/**
 * FHIR: a reference string names this server's Patient/<id> (relative or versioned; with the
 * default policy config no absolute base is this server's, so another server's Patient/<id> is
 * another person).
 */
export function namesPatient(ref: unknown, id: string): boolean {
  if (typeof ref !== "string") return false;
  const m = /^Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(ref);
  return !!m && m[1] === id;
}

function valuesAt(node: unknown, path: string[]): unknown[] {
  let nodes = [node];
  for (const key of path) {
    nodes = nodes.flatMap((n) => {
      if (typeof n !== "object" || n === null || Array.isArray(n)) return [];
      const v = (n as Record<string, unknown>)[key];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    });
  }
  return nodes;
}

/** The resource belongs to patient id's compartment (R4 Patient compartment; Patient by its id). */
export function inCompartment(resource: unknown, id: string): boolean {
  if (typeof resource !== "object" || resource === null || Array.isArray(resource)) return false;
  const r = resource as Record<string, unknown>;
  if (r.resourceType === "Patient") return r.id === id;
  if (typeof r.resourceType !== "string") return false;
  return linkPaths(r.resourceType).some((p) =>
    valuesAt(r, p).some(
      (v) =>
        typeof v === "object" && v !== null && namesPatient((v as { reference?: unknown }).reference, id),
    ),
  );
}
