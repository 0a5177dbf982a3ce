/**
 * The config's JSON Schema (schemas/config.schema.json, draft 2020-12) checked with ajv, and the
 * mapping of every ajv error to `file:line:col: field: problem` at the YAML node it concerns.
 * Validation fills in the schema's defaults, so the schema is the one statement of them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { LineCounter, isMap, isPair, isScalar, type Document } from "yaml";
import { PACKAGE_ROOT } from "./default-config.js";
import { PRIVATE_JWK_MEMBERS } from "./config-checks.js";

export const CONFIG_SCHEMA_PATH = join(PACKAGE_ROOT, "schemas", "config.schema.json");

export interface ConfigIssue {
  /** Dotted path of the field, e.g. `tokens.issuers[0].audience`. */
  field: string;
  message: string;
  line?: number;
  col?: number;
}

export type Path = (string | number)[];
type Schema = Record<string, unknown>;

/** Collects issues, each placed at the YAML node of its path (or of its key), else the nearest ancestor. */
export class Issues {
  readonly list: ConfigIssue[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  add(path: Path, message: string, atKey = false): void {
    this.list.push({ field: formatPath(path), message, ...this.position(path, atKey) });
  }

  /** Whether an issue was already reported at `path` or inside it. */
  reported(path: Path): boolean {
    const field = formatPath(path);
    return this.list.some(
      (i) => i.field === field || i.field.startsWith(`${field}.`) || i.field.startsWith(`${field}[`),
    );
  }

  /** The issues in document order (stable for issues at one place). */
  sorted(): ConfigIssue[] {
    const key = (i: ConfigIssue) => (i.line ?? 0) * 1e6 + (i.col ?? 0);
    return [...this.list].sort((a, b) => key(a) - key(b));
  }

  private position(path: Path, atKey: boolean): { line?: number; col?: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      let offset: number | undefined;
      if (atKey && n === path.length && n > 0) {
        const parent = sub.length > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find(
            (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(sub[sub.length - 1]),
          );
          const key = pair?.key;
          if (isScalar(key) && key.range) offset = key.range[0];
        }
      } else {
        const node = sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true);
        const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
        if (range) offset = range[0];
      }
      if (offset !== undefined) return this.lines.linePos(offset);
    }
    return {};
  }
}

type MessageFn = (value: unknown, schema: Schema) => string;

interface Compiled {
  schema: Schema;
  validate: ValidateFunction;
  /** Custom messages by schema object (ajv reports the very object that failed, as `parentSchema`). */
  messages: Map<unknown, MessageFn>;
}

let compiled: Compiled | undefined;

/** The parsed schema document. */
export function configSchema(): Schema {
  return compile().schema;
}

function compile(): Compiled {
  if (!compiled) {
    const schema = JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")) as Schema;
    const ajv = new Ajv2020({
      allErrors: true,
      strict: true,
      verbose: true,
      allowUnionTypes: true,
      useDefaults: true,
    });
    const messages = new Map<unknown, MessageFn>();
    for (const [pointer, message] of Object.entries(NODE_MESSAGES)) {
      const node = pointer
        .split("/")
        .slice(1)
        .reduce<Schema>((n, key) => n[key] as Schema, schema);
      // A node's anyOf branches fail for it: they get its message too.
      for (const n of [node, ...((node.anyOf as Schema[] | undefined) ?? [])]) messages.set(n, message);
    }
    compiled = { schema, validate: ajv.compile(schema), messages };
  }
  return compiled;
}

/** Validates `value` in place (filling in defaults) and adds one issue per problem. */
export function checkSchema(value: unknown, issues: Issues): void {
  const { validate, messages } = compile();
  if (validate(value)) return;
  const found = (validate.errors ?? []).flatMap((e) => describeError(e, value, messages) ?? []);
  // A missing field that an unknown key beside it is a typo of is reported once, at the typo.
  const typos = new Set(
    found.flatMap((f) => (f.meant ? [[...f.path.slice(0, -1), f.meant].join("\u0000")] : [])),
  );
  const seen = new Set<string>();
  for (const f of found) {
    const id = `${f.path.join("\u0000")}\u0001${f.message}`;
    if (seen.has(id) || (f.message.startsWith("required") && typos.has(f.path.join("\u0000")))) continue;
    seen.add(id);
    issues.add(f.path, f.message, f.atKey);
  }
}

// --- ajv errors → messages ---------------------------------------------------------------

const ALLOWED = (values: unknown): string => (values as unknown[]).join(", ");

/** Messages for schema nodes whose generic message would say less, by the node's JSON pointer. */
const NODE_MESSAGES: Record<string, MessageFn> = {
  "#/$defs/size": (v) => `must be a size such as 1048576, "512kb" or "1mb", got ${describe(v)}`,
  "#/$defs/algorithm": (v, s) =>
    v === "none" || (typeof v === "string" && /^HS/i.test(v))
      ? `${String(v)} is never accepted (unsigned or shared-secret tokens); allowed: ${ALLOWED(s.enum)}`
      : `unsupported algorithm ${describe(v)}; allowed: ${ALLOWED(s.enum)}`,
  "#/$defs/issuer/properties/audience": (v) =>
    `must be the audience (a string or a non-empty list of strings) your tokens carry in \`aud\`, got ${describe(v)}`,
  "#/properties/tokens/properties/issuers": () => "must be a non-empty list of trusted token issuers",
  "#/properties/server/properties/listen": () => 'must be "host:port" or a port number',
  "#/properties/server/properties/fhir_base_path": () => 'must start with "/", e.g. "/fhir"',
  "#/properties/gateway/properties/enforcing/items/properties/key_env": () =>
    "must name an environment variable (A-Z, 0-9, _)",
  "#/properties/policy/properties/operations/propertyNames": () =>
    'operation names start with "$", e.g. "$export"',
};

/** Extra words for a missing required field. */
const REQUIRED_HINTS: Record<string, string> = {
  audience: "the audience (a string or a list of strings) your tokens carry in `aud`",
};

interface Found {
  path: Path;
  message: string;
  atKey?: boolean;
  /** For an unknown key: the allowed key it is probably a typo of. */
  meant?: string;
}

function describeError(
  error: ErrorObject,
  root: unknown,
  messages: Map<unknown, MessageFn>,
): Found | undefined {
  const path = toPath(error.instancePath, root);
  const schema = (error.parentSchema ?? {}) as Schema;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required": {
      const name = String(params.missingProperty);
      const hint = REQUIRED_HINTS[name];
      return { path: [...path, name], message: hint ? `required: ${hint}` : "required" };
    }
    case "additionalProperties": {
      const name = String(params.additionalProperty);
      return { path: [...path, name], ...unknownField(name, schema), atKey: true };
    }
    case "propertyNames": // reported by the keyword inside it, with the name
    case "if": // reported by the keywords of its `then`
      return undefined;
  }
  const custom = messages.get(error.parentSchema)?.(error.data, schema);
  if (error.propertyName !== undefined) {
    const message = custom ?? `invalid name ${describe(error.propertyName)}`;
    return { path: [...path, error.propertyName], message, atKey: true };
  }
  if (custom) return { path, message: custom };
  if (error.keyword === "anyOf" || error.keyword === "oneOf") return undefined; // its branches speak
  return { path, message: genericMessage(error.keyword, params, schema, error.data) };
}

function genericMessage(
  keyword: string,
  params: Record<string, unknown>,
  schema: Schema,
  value: unknown,
): string {
  const got = `, got ${describe(value)}`;
  switch (keyword) {
    case "type":
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "minLength":
      return `must be ${expected(schema)}${got}`;
    case "enum": {
      const options = schema.enum as unknown[];
      return options.length === 2
        ? `must be ${JSON.stringify(options[0])} or ${JSON.stringify(options[1])}${got}`
        : `must be one of ${options.join(", ")}`;
    }
    case "const":
      return `must be ${JSON.stringify(schema.const)}${got}`;
    case "minItems":
      return params.limit === 1
        ? "must be a non-empty list"
        : `must have at least ${String(params.limit)} items`;
    case "uniqueItems":
      return `must not list the same value twice (items ${String(params.j)} and ${String(params.i)})`;
    case "minProperties": {
      const names = Object.keys((schema.properties as Schema | undefined) ?? {});
      return names.length ? `must give at least one of ${names.join(", ")}` : "must not be empty";
    }
    case "pattern":
      return `must match ${String(params.pattern)}${got}`;
    default:
      return `is invalid (${keyword})${got}`;
  }
}

function expected(schema: Schema): string {
  const types = ([] as unknown[]).concat(schema.type ?? []).filter((t) => t !== "null");
  if (types.length === 1) {
    const t = types[0];
    if (t === "object") return "a mapping";
    if (t === "array") return "a list";
    if (t === "boolean") return "true or false";
    if (t === "string") return schema.minLength ? "a non-empty string" : "a string";
    if (t === "number" || t === "integer") {
      const kind = t === "integer" ? "a whole number" : "a number";
      const min = schema.minimum as number | undefined;
      const max = schema.maximum as number | undefined;
      if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
      if (min !== undefined) return `${kind} of at least ${min}`;
      return kind;
    }
  }
  return types.join(" or ");
}

// --- unknown fields: "did you mean" --------------------------------------------------------

function unknownField(name: string, schema: Schema): { message: string; meant?: string } {
  if (schema === (configSchema().$defs as Schema).jwk && PRIVATE_JWK_MEMBERS.has(name)) {
    return { message: "private key material: a config holds only public keys" };
  }
  const allowed = Object.keys((schema.properties as Schema | undefined) ?? {});
  const meant = suggest(name, allowed);
  if (meant) return { message: `unknown field; did you mean ${JSON.stringify(meant)}?`, meant };
  const elsewhere = settingPaths().get(name);
  const where = elsewhere ? ` (${JSON.stringify(name)} is a field of ${elsewhere.join(", ")})` : "";
  return { message: `unknown field; expected one of ${allowed.join(", ")}${where}` };
}

/** The allowed key nearest to `name`, when it is close enough to be a typo. */
export function suggest(name: string, allowed: string[]): string | undefined {
  const limit = Math.floor((name.length + 1) / 4);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= limit || bestDistance === 0 ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

let fieldIndex: Map<string, string[]> | undefined;

/** Every field name in the schema → the dotted paths of the mappings that have it. */
function settingPaths(): Map<string, string[]> {
  if (fieldIndex) return fieldIndex;
  const root = configSchema();
  const index = new Map<string, string[]>();
  const visit = (node: unknown, at: string, depth: number): void => {
    if (typeof node !== "object" || node === null || depth > 12) return;
    const s = node as Schema;
    if (typeof s.$ref === "string") {
      visit((root.$defs as Schema)[s.$ref.replace("#/$defs/", "")], at, depth + 1);
    }
    for (const [name, child] of Object.entries((s.properties as Schema | undefined) ?? {})) {
      if (at) index.set(name, [...(index.get(name) ?? []), at]);
      visit(child, at ? `${at}.${name}` : name, depth + 1);
    }
    if (s.items) visit(s.items, `${at}[]`, depth + 1);
    if (typeof s.additionalProperties === "object") visit(s.additionalProperties, `${at}.*`, depth + 1);
  };
  visit(root, "", 0);
  fieldIndex = index;
  return index;
}

// --- paths and values ------------------------------------------------------------------------

/** A JSON pointer as a path, with array indexes as numbers (so they print as `[0]`). */
function toPath(pointer: string, root: unknown): Path {
  const path: Path = [];
  let node = root;
  for (const raw of pointer.split("/").slice(1)) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node)) {
      path.push(Number(segment));
      node = node[Number(segment)];
    } else {
      path.push(segment);
      node = (node as Record<string, unknown> | undefined)?.[segment];
    }
  }
  return path;
}

export function formatPath(path: Path): string {
  if (path.length === 0) return "(root)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${typeof value} ${String(value)}`;
}
