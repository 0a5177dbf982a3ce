/**
 * The sample configs in examples/: each names the schema for editors on its first line, validates
 * against it, and passes `smart-authz check-config` as shipped (sources behind URLs are not
 * fetched). demo.yaml is the embedded default as a file. A new example is picked up by itself.
 *
 * examples/nginx/ stays valid without a FHIR server: its sidecar config loads (FHIR base /fhir, not
 * declared as an enforcing gateway, loopback only), its template holds only the placeholders run.sh
 * fills, NGINX accepts the rendered configuration (when nginx is installed), and the headers only
 * the gateway may set are overwritten on both questions to the sidecar. The example itself runs
 * for real in test/e2e/nginx-gateway.e2e.ts (`make e2e`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { main, type CliIO } from "../src/cli.js";
import { EMBEDDED_ORIGIN, loadConfig } from "../src/ops/config.js";
import { CONFIG_SCHEMA_PATH } from "../src/ops/config-schema.js";
import { REPO, tempDir } from "./helpers/fixtures.js";

const EXAMPLES = join(REPO, "examples");
const BUNDLE = join(REPO, "build/bundle.tar.gz");
const built = existsSync(BUNDLE);
if (!built)
  console.warn(`examples: ${BUNDLE} is missing; run \`make build\` to check the examples that use it`);

/** What an example needs from the environment to pass (secrets never live in the file). */
const ENV: Record<string, NodeJS.ProcessEnv> = {
  "gateway.yaml": { SMART_AUTHZ_GATEWAY_KEY_API_GATEWAY: "k".repeat(32) },
};

const examples = readdirSync(EXAMPLES, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".yaml"))
  .sort();

function usesBuiltBundle(file: string): boolean {
  const config = loadConfig(join(EXAMPLES, file), ENV[file] ?? {});
  return config.bundle.source.kind === "file" && config.bundle.source.path === BUNDLE;
}

describe("examples/", () => {
  it("has the samples the docs point at", () => {
    expect(examples).toEqual(
      expect.arrayContaining([
        "demo.yaml",
        "gateway.yaml",
        "production.yaml",
        "proxy-demo.yaml",
        "nginx/smart-authz.yaml",
      ]),
    );
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
      expect(resolve(dirname(join(EXAMPLES, file)), m![1]!)).toBe(CONFIG_SCHEMA_PATH);
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

  it.skipIf(!built)(
    "proxy-demo.yaml (make demo) passes check-config with a proxy: section, and is what the demo runs",
    async () => {
      const file = join(EXAMPLES, "proxy-demo.yaml");
      let stdout = "";
      let stderr = "";
      const code = await main(["check-config", file], {
        stdout: (t) => (stdout += t),
        stderr: (t) => (stderr += t),
        stdin: () => "",
        env: {},
      });
      expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
      expect(stdout).toContain(`${file}: OK`);
      const config = loadConfig(file, {});
      expect(config.proxy).toMatchObject({ basePath: "/fhir", narrowing: { strategy: "auto" } });
      expect(config.bundle.source).toEqual({ kind: "file", path: BUNDLE });
      const script = readFileSync(join(REPO, "scripts/demo/run.sh"), "utf8");
      expect(script).toContain("CONFIG=examples/proxy-demo.yaml");
      expect(script).toMatch(/trap stop EXIT/);
    },
  );

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

const NGINX_EXAMPLE = join(REPO, "examples/nginx");
const template = readFileSync(join(NGINX_EXAMPLE, "nginx.conf.template"), "utf8");
const hasNginx = spawnSync("nginx", ["-v"], { stdio: "ignore" }).status === 0;

describe("examples/nginx", () => {
  it("smart-authz.yaml is a valid config for a status-only gateway in front of /fhir", () => {
    const config = loadConfig(join(NGINX_EXAMPLE, "smart-authz.yaml"), {});
    expect(config.server.fhirBasePath).toBe("/fhir");
    expect(config.server.host).toBe("127.0.0.1");
    expect(config.gateway.enforcing).toEqual([]);
    expect(config.tokens.trustForwardedClaims).toBe(false);
  });

  it("the template uses exactly the placeholders run.sh replaces", () => {
    const placeholders = new Set(template.match(/@[A-Z_]+@/g));
    expect([...placeholders].sort()).toEqual(["@FHIR@", "@LISTEN@", "@RUN_DIR@", "@SIDECAR@"]);
    const script = readFileSync(join(NGINX_EXAMPLE, "run.sh"), "utf8");
    for (const p of placeholders) expect(script).toContain(`s|${p}|`);
  });

  it("both questions to the sidecar overwrite the headers only the gateway may set", () => {
    const blocks = [
      /location = \/_smart_authz \{([\s\S]*?)\n {8}\}/.exec(template)?.[1],
      /location @refused \{([\s\S]*?)\n {8}\}/.exec(template)?.[1],
    ];
    for (const block of blocks) {
      expect(block).toBeDefined();
      for (const header of [
        "X-Original-URI $request_uri",
        "X-Original-Method $request_method",
        'Content-Length ""',
      ]) {
        expect(block).toContain(`proxy_set_header ${header};`);
      }
      expect(block).toContain("proxy_pass_request_body off;");
      expect(block).toContain('proxy_set_header X-Smart-Authz-Gateway-Key "";');
      expect(block).toContain('proxy_set_header X-Smart-Authz-Mode "";');
    }
    expect(blocks[0]).toContain('proxy_set_header X-Smart-Authz-Body "";');
    expect(blocks[1]).toContain("proxy_set_header X-Smart-Authz-Body outcome;");
  });

  it.skipIf(!hasNginx)("nginx accepts the rendered configuration (run.sh -t)", () => {
    const runDir = tempDir();
    execFileSync("bash", [join(NGINX_EXAMPLE, "run.sh"), "-t"], {
      env: {
        ...process.env,
        NGINX_RUN_DIR: runDir,
        NGINX_LISTEN: "127.0.0.1:1",
        SIDECAR_ADDR: "127.0.0.1:2",
      },
      stdio: "pipe",
    });
    const rendered = readFileSync(join(runDir, "nginx.conf"), "utf8");
    expect(rendered).not.toMatch(/@[A-Z_]+@/);
    expect(rendered).toContain(`pid ${runDir}/nginx.pid;`);
  });

  it("run.sh refuses a run directory that would break the configuration", () => {
    const r = spawnSync("bash", [join(NGINX_EXAMPLE, "run.sh"), "-t"], {
      env: { ...process.env, NGINX_RUN_DIR: join(tempDir(), "a;b") },
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("NGINX_RUN_DIR may hold only");
  });
});
