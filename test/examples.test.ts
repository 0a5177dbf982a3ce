/**
 * The sample configs in examples/: each names the schema for editors on its first line, validates
 * against it, and passes `smart-authz check-config` as shipped (sources behind URLs are not
 * fetched). demo.yaml is the embedded default as a file. A new example is picked up by itself.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { main, type CliIO } from "../src/cli.js";
import { EMBEDDED_ORIGIN, loadConfig } from "../src/ops/config.js";
import { CONFIG_SCHEMA_PATH } from "../src/ops/config-schema.js";
import { REPO } from "./helpers/fixtures.js";

const EXAMPLES = join(REPO, "examples");
const BUNDLE = join(REPO, "build/bundle.tar.gz");
const built = existsSync(BUNDLE);
if (!built)
  console.warn(`examples: ${BUNDLE} is missing; run \`make build\` to check the examples that use it`);

/** What an example needs from the environment to pass (secrets never live in the file). */
const ENV: Record<string, NodeJS.ProcessEnv> = {
  "gateway.yaml": { SMART_AUTHZ_GATEWAY_KEY_API_GATEWAY: "k".repeat(32) },
};

const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

function usesBuiltBundle(file: string): boolean {
  const config = loadConfig(join(EXAMPLES, file), ENV[file] ?? {});
  return config.bundle.source.kind === "file" && config.bundle.source.path === BUNDLE;
}

describe("examples/", () => {
  it("has the samples the docs point at", () => {
    expect(examples).toEqual(expect.arrayContaining(["demo.yaml", "gateway.yaml", "production.yaml"]));
  });

  const validate = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true }).compile(
    JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")) as object,
  );

  for (const file of examples) {
    it(`${file} names the schema on its first line and validates against it`, () => {
      const text = readFileSync(join(EXAMPLES, file), "utf8");
      const first = text.split("\n")[0]!;
      const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(m, first).not.toBeNull();
      expect(resolve(EXAMPLES, m![1]!)).toBe(CONFIG_SCHEMA_PATH);
      validate(parseYaml(text));
      expect(validate.errors ?? []).toEqual([]);
    });

    it.skipIf(!built && usesBuiltBundle(file))(`${file} passes check-config`, async () => {
      let stdout = "";
      let stderr = "";
      const io: CliIO = {
        stdout: (t) => (stdout += t),
        stderr: (t) => (stderr += t),
        stdin: () => "",
        env: ENV[file] ?? {},
      };
      const code = await main(["check-config", join(EXAMPLES, file)], io);
      expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
      expect(stdout).toMatch(new RegExp(`^${join(EXAMPLES, file)}: OK`));
    });
  }

  it("demo.yaml is the embedded default config as a file", () => {
    const file = join(EXAMPLES, "demo.yaml");
    expect({ ...loadConfig(file, {}), origin: EMBEDDED_ORIGIN }).toEqual(loadConfig(undefined, {}));
  });
});

describe("the config examples in the docs", () => {
  const validate = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true }).compile(
    JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")) as object,
  );
  const minimal = {
    tokens: { issuers: [{ issuer: "a", audience: "b", jwks_uri: "https://a/j" }] },
    bundle: { source: "b" },
  };
  const blocks = (doc: string): string[] =>
    [...readFileSync(join(REPO, doc), "utf8").matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it("docs/sidecar.md's full config validates against the schema", () => {
    const full = blocks("docs/sidecar.md").filter(
      (b) => b.startsWith("# yaml-language-server") && b.includes("\ntokens:"),
    );
    expect(full).toHaveLength(1);
    validate(parseYaml(full[0]!));
    expect(validate.errors ?? []).toEqual([]);
  });

  it("every policy: example in docs/security-labels.md validates against the schema", () => {
    const policies = blocks("docs/security-labels.md").filter((b) => b.startsWith("policy:"));
    expect(policies.length).toBeGreaterThanOrEqual(3);
    for (const block of policies) {
      validate({ ...minimal, ...(parseYaml(block) as object) });
      expect(validate.errors ?? [], block).toEqual([]);
    }
  });
});
