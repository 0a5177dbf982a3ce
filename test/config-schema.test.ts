/**
 * schemas/config.schema.json: complete (a title, a description and closed fields everywhere), true
 * to the embedded default and to the policy. The policy's settings are read by the Rego in
 * policies/; this test extracts every setting path the Rego reads, with its fallback, and holds the
 * schema's `policy` section to exactly those paths and defaults, so the two cannot drift.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { DATA_DOCUMENT_NAMES } from "../src/ops/config.js";
import { CONFIG_SCHEMA_PATH, editDistance, suggest } from "../src/ops/config-schema.js";
import { DEFAULT_CONFIG_YAML } from "../src/ops/default-config.js";
import { REPO } from "./helpers/fixtures.js";

type Schema = Record<string, unknown>;

const schema = JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")) as Schema;
const defs = schema.$defs as Record<string, Schema>;

function resolveRef(node: Schema): Schema {
  return typeof node.$ref === "string" ? resolveRef(defs[node.$ref.replace("#/$defs/", "")]!) : node;
}

function propertiesOf(node: Schema): Record<string, Schema> {
  return (resolveRef(node).properties as Record<string, Schema> | undefined) ?? {};
}

/** Every schema object in the document, with where it is. */
function* walk(node: unknown, at: string): Generator<[string, Schema]> {
  if (typeof node !== "object" || node === null) return;
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) yield* walk(n, `${at}/${i}`);
    return;
  }
  yield [at, node as Schema];
  for (const [k, v] of Object.entries(node)) {
    if (k === "default" || k === "examples" || k === "enum" || k === "const") continue;
    yield* walk(v, `${at}/${k}`);
  }
}

describe("the config schema", () => {
  it("is a strict draft 2020-12 schema that ajv compiles", () => {
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(() => new Ajv2020({ strict: true, allowUnionTypes: true }).compile(schema)).not.toThrow();
  });

  it("gives every field a title and a description, and closes every mapping", () => {
    const missing: string[] = [];
    for (const [at, node] of walk(schema, "#")) {
      for (const [name, prop] of Object.entries((node.properties as Record<string, Schema>) ?? {})) {
        // `if`/`then` branches only name fields declared beside them.
        if (at.includes("/then") || at.includes("/if")) continue;
        if (typeof prop.title !== "string" || typeof prop.description !== "string") {
          missing.push(`${at}/properties/${name}: title and description`);
        }
      }
      const isObject = node.type === "object" || (Array.isArray(node.type) && node.type.includes("object"));
      if (isObject && node.additionalProperties === undefined) missing.push(`${at}: additionalProperties`);
    }
    expect(missing).toEqual([]);
  });

  it("validates the embedded default config as written", () => {
    const validate = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true }).compile(schema);
    const ok = validate(parseYaml(DEFAULT_CONFIG_YAML));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it("names exactly the data documents the service loads", () => {
    expect(Object.keys(propertiesOf((schema.properties as Record<string, Schema>).data!))).toEqual([
      ...DATA_DOCUMENT_NAMES,
    ]);
  });
});

// --- what the Rego reads --------------------------------------------------------------------

const COMPUTED = Symbol("computed in Rego");

interface SettingRead {
  path: string;
  fallback: unknown;
  where: string;
}

function regoFiles(dir = join(REPO, "policies")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? regoFiles(join(dir, e.name))
      : e.name.endsWith(".rego") && !e.name.endsWith("_test.rego")
        ? [join(dir, e.name)]
        : [],
  );
}

/** The expression starting at `from`, up to the `)`, `,` or end of line that closes it. */
function expressionAt(text: string, from: number, stopAtNewline: boolean): string {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) {
      if (depth === 0) return text.slice(from, i).trim();
      depth--;
    } else if (depth === 0 && (c === "," || (stopAtNewline && c === "\n"))) return text.slice(from, i).trim();
  }
  return text.slice(from).trim();
}

/** A Rego literal (or a rule holding one) as JSON; COMPUTED when it is not a literal. */
function literal(expr: string, text: string): unknown {
  const rule = /^[a-z_][a-z0-9_]*$/.test(expr) ? new RegExp(`^${expr}\\s*:=\\s*`, "m").exec(text) : null;
  const source = rule ? expressionAt(text, rule.index + rule[0].length, true) : expr;
  try {
    return JSON.parse(source.replace(/,(\s*[\]}])/g, "$1"));
  } catch {
    return COMPUTED;
  }
}

/** Every `policy:` setting path the Rego reads, with the fallback it uses when the setting is absent. */
function settingReads(): SettingRead[] {
  const reads: SettingRead[] = [];
  for (const file of regoFiles()) {
    const text = readFileSync(file, "utf8");
    const where = relative(REPO, file);
    const pathOf = (list: string): string | undefined => {
      const parts = list.split(",").map((p) => p.trim());
      return parts.every((p) => /^"[^"]+"$/.test(p))
        ? parts.map((p) => JSON.parse(p) as string).join(".")
        : undefined;
    };
    // setting(["a", "b"], fallback), array_setting(...), number_setting(...), enabled(["a"]), object.get(cfg, [...], fallback)
    const calls = /\b(\w*setting|enabled|object\.get\(\s*(?:cfg|data\.config)\s*,)\s*\(?\s*\[([^\]]*)\]/g;
    for (const m of text.matchAll(calls)) {
      const path = pathOf(m[2]!);
      if (!path) continue;
      if (m[1] === "enabled") {
        reads.push({ path, fallback: false, where });
        continue;
      }
      const rest = text.slice(m.index + m[0].length);
      const comma = /^\s*,/.exec(rest);
      const fallback = comma ? literal(expressionAt(rest, comma[0].length, false), text) : COMPUTED;
      reads.push({ path, fallback, where });
    }
    // cfg.a.b and data.config.a.b
    for (const m of text.matchAll(/\b(?:cfg|data\.config)((?:\.[a-z_][a-z0-9_]*)+)/g)) {
      reads.push({ path: m[1]!.slice(1), fallback: COMPUTED, where });
    }
  }
  return reads;
}

const policySchema = (schema.properties as Record<string, Schema>).policy!;

function schemaNode(path: string): Schema | undefined {
  let node: Schema | undefined = policySchema;
  for (const part of path.split(".")) node = node ? propertiesOf(node)[part] : undefined;
  return node;
}

describe("the policy section of the schema and the Rego that reads it", () => {
  const reads = settingReads();
  const paths = new Set(reads.map((r) => r.path));

  it("finds the settings the Rego reads (the extraction itself works)", () => {
    expect(paths).toContain("deny.hidden_status");
    expect(paths).toContain("labels.sensitivity");
    expect(paths).toContain("btg.trust_category_header");
    expect(paths).toContain("patient.shared_types");
    expect(paths).toContain("outcome.required_scope_extension_url");
    expect(reads.find((r) => r.path === "labels.sensitivity")?.fallback).toContain("SPI");
  });

  it("describes every setting the Rego reads, with the Rego's default", () => {
    const problems: string[] = [];
    for (const read of reads) {
      const node = schemaNode(read.path);
      if (!node) {
        problems.push(
          `${read.where} reads policy.${read.path}, which schemas/config.schema.json does not describe: add it under properties.policy (type, default, title, description)`,
        );
        continue;
      }
      if (read.fallback === COMPUTED) continue;
      if (JSON.stringify(node.default) !== JSON.stringify(read.fallback)) {
        problems.push(
          `policy.${read.path}: the schema's default ${JSON.stringify(node.default)} is not the Rego's ${JSON.stringify(read.fallback)} (${read.where})`,
        );
      }
    }
    expect(problems).toEqual([]);
  });

  it("describes no setting the Rego does not read", () => {
    const orphans: string[] = [];
    const visit = (node: Schema, at: string[]): void => {
      for (const [name, child] of Object.entries(propertiesOf(node))) {
        const path = [...at, name];
        if (paths.has(path.join("."))) continue;
        if (Object.keys(propertiesOf(child)).length > 0) visit(child, path);
        else orphans.push(`policy.${path.join(".")} is in the schema but no Rego in policies/ reads it`);
      }
    };
    visit(policySchema, []);
    expect(orphans).toEqual([]);
  });

  it("gives patient.shared_types the default the policy computes from the FHIR R4 data", () => {
    const fhir = JSON.parse(readFileSync(join(REPO, "policies/fhir/r4/data.json"), "utf8")) as {
      resource_types: Record<
        string,
        { security_category?: string; patient_compartment?: boolean; references_patient?: boolean }
      >;
    };
    const computed = Object.entries(fhir.resource_types)
      .filter(
        ([, i]) =>
          ["business", "anonymous"].includes(i.security_category ?? "") &&
          !i.patient_compartment &&
          !i.references_patient,
      )
      .map(([t]) => t)
      .sort();
    expect(schemaNode("patient.shared_types")?.default).toEqual(computed);
  });

  it("knows the selector keys and confidentiality codes the policy knows", () => {
    const label = readFileSync(join(REPO, "policies/label/who.rego"), "utf8");
    const keys = /^selector_keys\s*:=\s*\{([^}]*)\}/m.exec(label)![1]!;
    expect(Object.keys(propertiesOf(defs.selector!)).sort()).toEqual(
      keys
        .split(",")
        .map((k) => JSON.parse(k.trim()) as string)
        .sort(),
    );
    const terminology = JSON.parse(readFileSync(join(REPO, "policies/terminology/data.json"), "utf8")) as {
      confidentiality: { codes: string[] };
    };
    expect(defs.confidentiality!.enum).toEqual(terminology.confidentiality.codes);
  });
});

describe("suggestions for unknown fields", () => {
  it("suggests the allowed key within a small edit distance, never a far one", () => {
    expect(editDistance("eligibel", "eligible")).toBe(1);
    expect(suggest("issuer", ["issuers", "clock_tolerance_seconds"])).toBe("issuers");
    expect(suggest("sourse", ["source", "timeout_ms"])).toBe("source");
    expect(suggest("role", ["roles", "users"])).toBe("roles");
    expect(suggest("Tokens", ["tokens"])).toBe("tokens");
    expect(suggest("d", ["e", "x", "y", "n"])).toBeUndefined();
    expect(suggest("frobnicate", ["issuers", "source"])).toBeUndefined();
  });
});
