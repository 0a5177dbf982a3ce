/**
 * docs/contract.md is the reference for the input and decision documents. These tests keep it in
 * step with what the code and openapi.yaml say: the version, the fields, and every reason code the
 * policy or the host can produce (test/vectors.test.ts also checks every code the vectors produce).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CONTRACT_VERSION } from "../src/core/contract.js";
import { readContract } from "./helpers/contract.js";
import { REPO } from "./helpers/fixtures.js";

type Json = Record<string, unknown>;

const contract = readContract();
const openapi = parse(readFileSync(join(REPO, "openapi.yaml"), "utf8")) as Json;
const schemas = (openapi.components as Json).schemas as Record<string, Json>;
const props = (schema: Json) => Object.keys((schema.properties ?? {}) as Json).sort();

function files(dir: string, keep: (f: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), keep) : keep(e.name) ? [join(dir, e.name)] : [],
  );
}

const regoSources = files(
  join(REPO, "policies"),
  (f) => f.endsWith(".rego") && !f.endsWith("_test.rego"),
).map((f) => ({ file: relative(REPO, f), text: readFileSync(f, "utf8") }));
const hostSources = files(join(REPO, "src"), (f) => f.endsWith(".ts")).map((f) => ({
  file: relative(REPO, f),
  text: readFileSync(f, "utf8"),
}));

function matches(sources: { text: string }[], patterns: RegExp[]): Set<string> {
  const out = new Set<string>();
  for (const { text } of sources) for (const p of patterns) for (const m of text.matchAll(p)) out.add(m[1]!);
  return out;
}

/** Codes the policy writes into reasons or drop entries. */
const policyCodes = matches(regoSources, [
  /deny\([^"\n]*?,\s*"([a-z][a-z0-9-]*)"/g,
  /hidden\(c,\s*"([a-z][a-z0-9-]*)"\)/g,
  /patch_guard\([^\n]*,\s*"([a-z][a-z0-9-]*)"\)/g,
  /"reason":\s*"([a-z][a-z0-9-]*)"/g,
  /"code":\s*"([a-z][a-z0-9]*-[a-z0-9-]+)"/g,
]);

/** Codes the host writes: token failures, fail-closed denies, pool errors, gateway-mode refusals. */
const hostCodes = (() => {
  const codes = matches(hostSources, [
    /failClosed\(\s*"([a-z][a-z0-9-]*)"/g,
    /new PoolError\(\s*"([a-z][a-z0-9-]*)"/g,
    /refusal\(\s*"([a-z][a-z0-9-]*)"/g,
  ]);
  const tokens = hostSources.find((s) => s.file === join("src", "auth", "tokens.ts"))!.text;
  const union = /export type TokenReason =([^;]+);/.exec(tokens)![1]!;
  for (const m of union.matchAll(/"([a-z][a-z0-9-]*)"/g)) codes.add(m[1]!);
  return codes;
})();

describe("docs/contract.md", () => {
  it("states a version whose major is the one the policy and the host report, and logs it", () => {
    expect(String(contract.version.major)).toBe(CONTRACT_VERSION);
    const rego = readFileSync(join(REPO, "policies", "api", "api.rego"), "utf8");
    expect(/contract_version := "(\d+)"/.exec(rego)?.[1]).toBe(CONTRACT_VERSION);
    expect(contract.changeLog[0]?.name).toBe(`${contract.version.major}.${contract.version.minor}`);
    const info = openapi.info as Json;
    expect(info.description).toContain(`decision contract, v${contract.version.major}`);
    expect(schemas.Decision!.description).toContain(`(v${contract.version.major})`);
  });

  it("lists the input fields openapi.yaml accepts (the HTTP body has `token` in place of verified claims)", () => {
    const top = contract.inputFields.filter((r) => !r.name.includes(".")).map((r) => r.name);
    const request = contract.inputFields
      .filter((r) => r.name.startsWith("request."))
      .map((r) => r.name.slice(8));
    expect([...top, "token"].sort()).toEqual(props(schemas.DecisionRequest!));
    expect(request.sort()).toEqual(props(schemas.FhirRequest!));
    const required = contract.inputFields.filter((r) => r.cells[1] === "yes").map((r) => r.name);
    for (const field of schemas.FhirRequest!.required as string[])
      expect(required).toContain(`request.${field}`);
  });

  it("lists exactly the decision fields of openapi.yaml's Decision schema", () => {
    expect(contract.decisionFields.map((r) => r.name).sort()).toEqual(props(schemas.Decision!));
    const decision = contract.decisionFields.find((r) => r.name === "decision")!;
    const values = [...decision.cells[2]!.matchAll(/`([a-z]+)`/g)].map((m) => m[1]).sort();
    const decisionProps = schemas.Decision!.properties as Record<string, Json>;
    expect(values).toEqual([...(decisionProps.decision!.enum as string[])].sort());
    // What a deny must carry (openapi: if decision = deny then required) is documented as present on deny.
    const denyRequired = ((schemas.Decision!.then as Json).required as string[]).filter(
      (f) => f !== "decision",
    );
    for (const field of denyRequired) {
      const row = contract.decisionFields.find((r) => r.name === field)!;
      expect(row.cells[1], field).toMatch(/deny|always/);
    }
    const drop = (decisionProps.drop!.items as Json).properties as Json;
    expect(contract.decisionFields.find((r) => r.name === "drop")!.cells[2]).toContain(
      `{${Object.keys(drop).join(", ")}}`,
    );
    const reason = schemas.Reason!.required as string[];
    expect(contract.decisionFields.find((r) => r.name === "reasons")!.cells[2]).toContain(
      `{${reason.join(", ")}}`,
    );
  });

  it("lists every reason code the policy and the host produce, each once, with where it comes from", () => {
    const documented = contract.reasonCodes.map((r) => r.name);
    expect(documented.length).toBeGreaterThan(40);
    expect(new Set(documented).size, "a code is listed twice").toBe(documented.length);
    expect(
      [...policyCodes].filter((c) => !documented.includes(c)),
      "policy codes missing from the doc",
    ).toEqual([]);
    expect(
      [...hostCodes].filter((c) => !documented.includes(c)),
      "host codes missing from the doc",
    ).toEqual([]);
    for (const row of contract.reasonCodes) {
      const from = row.cells[1]!.split(/,\s*/);
      const literal = `"${row.name}"`;
      if (from.includes("P"))
        expect(
          regoSources.some((s) => s.text.includes(literal)),
          `${row.name} is documented as a policy code but no policy file has it`,
        ).toBe(true);
      if (from.includes("H"))
        expect(
          hostSources.some((s) => s.text.includes(literal)),
          `${row.name} is documented as a host code but no host file has it`,
        ).toBe(true);
      expect(
        from.every((f) => f === "P" || f === "H"),
        row.name,
      ).toBe(true);
    }
  });
});
