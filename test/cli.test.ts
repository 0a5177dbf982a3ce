import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, banner, invocation, main, parseTime, serviceConfig, type CliIO } from "../src/cli.js";
import { loadConfig } from "../src/ops/config.js";
import { VERSION } from "../src/server.js";
import { TokenVerifier } from "../src/auth/tokens.js";
import { LogSink, REPO, buildFixtureBundle, tempDir, writeFile } from "./helpers/fixtures.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  argv: string[],
  stdin = "",
  env: NodeJS.ProcessEnv = {},
  extra: Partial<CliIO> = {},
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    stdin: () => stdin,
    env,
    ...extra,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Splits one example line of a command's help into arguments, the way a POSIX shell would. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === "\\" && line[i + 1] === "\n") {
      i++;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "#" && word === undefined) {
      break;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  const stop = words.findIndex((w) => ["<", ">", "&&", "|", ";"].includes(w));
  return stop < 0 ? words : words.slice(0, stop);
}

let dir: string;
let bundle: string;

beforeAll(() => {
  dir = tempDir();
  bundle = buildFixtureBundle("cli-1");
});

describe("smart-authz help", () => {
  it("lists every command, the precedence of settings and the exit codes", async () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      for (const c of COMMANDS)
        expect(r.stdout).toMatch(new RegExp(`^  ${c.name} +${escape(c.summary)}$`, "m"));
      expect(r.stdout).toContain(
        "a flag wins over its environment variable (SMART_AUTHZ_*), which wins over the config file",
      );
      expect(r.stdout).toContain("exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error");
    }
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^smart-authz: no command given\n\nusage: smart-authz <command>/);
  });

  it.each(COMMANDS.map((c) => c.name))(
    "%s: `--help`, `-h` and `help <command>` print its options, examples and exit codes",
    async (name) => {
      const viaFlag = await run([name, "--help"]);
      expect(viaFlag.code).toBe(0);
      expect((await run([name, "-h"])).stdout).toBe(viaFlag.stdout);
      expect((await run(["help", name])).stdout).toBe(viaFlag.stdout);
      const command = COMMANDS.find((c) => c.name === name)!;
      expect(viaFlag.stdout).toMatch(new RegExp(`^usage: smart-authz ${command.name}`));
      for (const option of Object.keys(command.options)) expect(viaFlag.stdout).toContain(`--${option}`);
      expect(viaFlag.stdout).toContain("  -h, --help");
      expect(command.examples.length).toBeGreaterThan(0);
      for (const example of command.examples) expect(viaFlag.stdout).toContain(`smart-authz ${example}`);
      expect(viaFlag.stdout).toMatch(/\nexit codes: 0 /);
    },
  );

  it("prints the program as the user runs it: `node <path>` in a clone, `smart-authz` when installed", async () => {
    const r = await run(["token", "--help"], "", {}, { prog: "node dist/src/cli.js" });
    expect(r.stdout).toMatch(/^usage: node dist\/src\/cli\.js token/);
    expect(r.stdout).toContain('  node dist/src/cli.js token --scope "patient/Observation.rs" --patient 123');
    expect(invocation("dist/src/cli.js", REPO)).toBe("node dist/src/cli.js");
    expect(invocation(join(REPO, "dist/src/cli.js"), join(REPO, "docs"))).toBe(
      `node ${join(REPO, "dist/src/cli.js")}`,
    );
    expect(invocation("/usr/local/bin/smart-authz", REPO)).toBe("smart-authz");
    expect(invocation(join(REPO, "node_modules/.bin/smart-authz"), REPO)).toBe("smart-authz");
  });

  it("every example in the help is a valid command line (options and arguments parse)", async () => {
    for (const command of COMMANDS) {
      for (const example of command.examples) {
        const argv = shellWords(example);
        expect(argv[0], example).toBe(command.name);
        // --help after the example's own arguments: parsed completely, then only the help is printed.
        const r = await run([...argv, "--help"]);
        expect(r, example).toMatchObject({ code: 0, stderr: "" });
      }
    }
  });

  it("says what is wrong with a command line, suggests the near miss and exits 2", async () => {
    const unknown = await run(["frobnicate"]);
    expect(unknown).toMatchObject({
      code: 2,
      stderr: `smart-authz: unknown command "frobnicate"; run 'smart-authz help' for the list\n`,
    });
    expect((await run(["tokn"])).stderr).toContain('unknown command "tokn" (did you mean token?)');
    expect(await run(["token", "--scopes", "x"])).toMatchObject({
      code: 2,
      stderr: "smart-authz: token: unknown option --scopes (did you mean --scope?)\n",
    });
    expect((await run(["serve", "--listen", "8190"])).stderr).toBe(
      "smart-authz: serve: unknown option --listen (did you mean --addr?)\n",
    );
    expect((await run(["token", "--scope"])).stderr).toBe(
      "smart-authz: token: option --scope needs a value\n",
    );
    expect((await run(["token", "--iat", "-10"])).stderr).toBe(
      'smart-authz: token: the value of --iat starts with "-": write it as --iat=VALUE\n',
    );
    expect((await run(["scopes", "a", "b"])).stderr).toBe(
      `smart-authz: scopes: unexpected argument "b"; run 'smart-authz scopes --help'\n`,
    );
    expect((await run(["help", "nope"])).code).toBe(2);
  });
});

describe("smart-authz version", () => {
  it("prints the package version alone for --version, and the contract, bundle revision and OPA version for version", async () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect(await run(["--version"])).toMatchObject({ code: 0, stdout: `smart-authz ${pkg.version}\n` });

    const work = tempDir();
    const copy = join(work, "bundle.tar.gz");
    writeFileSync(copy, readFileSync(bundle));
    const unknownOpa = await run(["version", "--bundle", copy]);
    expect(unknownOpa.code).toBe(0);
    expect(unknownOpa.stdout).toBe(
      `smart-authz ${pkg.version}\n` +
        "  decision contract 1 (docs/contract.md)\n" +
        `  node ${process.version}\n` +
        `  policy bundle ${copy}: revision cli-1\n` +
        "  built with OPA: unknown (no build-info.json for this revision beside the bundle)\n",
    );
    writeFile(work, "build-info.json", JSON.stringify({ revision: "cli-1", opa_version: "1.20.2" }));
    expect((await run(["version", "--bundle", copy])).stdout).toContain("  built with OPA 1.20.2\n");
    const missing = await run(["version", "--bundle", join(work, "none.tar.gz")]);
    expect(missing.stdout).toContain(
      `policy bundle ${join(work, "none.tar.gz")}: not built (run \`make build\`)`,
    );
  });
});

describe("settings: a flag wins over the environment, which wins over the config file", () => {
  const file = () =>
    writeFile(
      dir,
      "precedence.yaml",
      `server: { listen: "127.0.0.1:1111" }\n` +
        `tokens:\n  issuers:\n    - { issuer: a, audience: x, jwks: { keys: [] } }\n` +
        `bundle: { source: ./from-file.tar.gz }\nlogging: { level: error }\n`,
    );

  it("resolves listen address, bundle and log level in that order", () => {
    const config = file();
    const env = {
      SMART_AUTHZ_LISTEN: "127.0.0.1:2222",
      SMART_AUTHZ_BUNDLE: "/env/bundle.tar.gz",
      SMART_AUTHZ_LOG_LEVEL: "warn",
    };
    const fromFile = serviceConfig({ config }, {});
    expect([fromFile.server.port, fromFile.bundle.source, fromFile.logging.level]).toEqual([
      1111,
      { kind: "file", path: join(dir, "from-file.tar.gz") },
      "error",
    ]);
    const fromEnv = serviceConfig({ config }, env);
    expect([fromEnv.server.port, fromEnv.bundle.source, fromEnv.logging.level]).toEqual([
      2222,
      { kind: "file", path: "/env/bundle.tar.gz" },
      "warn",
    ]);
    const fromFlags = serviceConfig(
      { config, addr: ":3333", bundle: "https://bundles.example/b.tar.gz", "log-level": "debug" },
      env,
    );
    expect([
      fromFlags.server.host,
      fromFlags.server.port,
      fromFlags.bundle.source,
      fromFlags.logging.level,
    ]).toEqual(["127.0.0.1", 3333, { kind: "url", url: "https://bundles.example/b.tar.gz" }, "debug"]);
    expect(serviceConfig({ config, "fhir-base-path": "/fhir" }, {}).server.fhirBasePath).toBe("/fhir");
    // --config wins over SMART_AUTHZ_CONFIG; without either, the embedded DEMO config on 8282.
    expect(serviceConfig({ config }, { SMART_AUTHZ_CONFIG: "/nope.yaml" }).origin).toBe(config);
    const demo = serviceConfig({}, {});
    expect([demo.demo, demo.server.host, demo.server.port]).toEqual([true, "127.0.0.1", 8282]);
  });

  it("refuses a bad flag value under the flag's name (exit 2)", async () => {
    expect(await run(["serve", "--addr", "localhost:99999"])).toMatchObject({
      code: 2,
      stderr: "smart-authz: --addr: port 99999 is out of range (0-65535)\n",
    });
    expect((await run(["serve", "--log-level", "loud"])).stderr).toBe(
      "smart-authz: --log-level: must be one of fatal, error, warn, info, debug, trace, silent\n",
    );
    expect((await run(["serve", "--fhir-base-path", "fhir"])).stderr).toBe(
      'smart-authz: --fhir-base-path: must start with "/", e.g. /fhir\n',
    );
    expect(
      (await run(["serve", "--addr", "nope"], "", { SMART_AUTHZ_LISTEN: "also-nope" })).stderr,
    ).toContain("--addr:");
  });
});

describe("smart-authz token", () => {
  const verifier = () => new TokenVerifier(loadConfig(undefined, {}).tokens);

  it("mints a demo token that the embedded demo config accepts", async () => {
    const r = await run([
      "token",
      "--scope",
      "patient/Observation.rs launch/patient",
      "--patient",
      "123",
      "--fhir-user",
      "Practitioner/9",
      "--ttl",
      "600",
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("DEMO token");
    const verified = await verifier().verify(r.stdout.trim());
    expect(verified.claims).toMatchObject({
      scope: "patient/Observation.rs launch/patient",
      patient: "123",
      fhirUser: "Practitioner/9",
      iss: "https://demo.smart-authz.invalid",
      client_id: "demo-app",
      sub: "demo-user",
    });
    expect(verified.claims.exp! - verified.claims.iat!).toBe(600);
  });

  it("mints every claim the break-the-glass walkthrough needs", async () => {
    const r = await run([
      "token",
      "--scope",
      "user/Observation.rs",
      "--fhir-user",
      "Practitioner/9",
      "--sub",
      "jdoe",
      "--client-id",
      "ehr-clinician-app",
      "--roles",
      "er-physician, er-nurse",
      "--purpose-of-use",
      "BTG",
      "--btg-reason",
      "unconscious patient",
      "--iat",
      "now-2h",
      "--ttl",
      "900",
      "--claims",
      '{"jti":"t-1","roles":["ignored"],"extensions":{"ihe_iua":{"subject_role":["x"]}}}',
    ]);
    expect(r.code).toBe(0);
    const claims = (await verifier().verify(r.stdout.trim())).claims;
    const now = Math.floor(Date.now() / 1000);
    expect(claims).toMatchObject({
      scope: "user/Observation.rs",
      fhirUser: "Practitioner/9",
      sub: "jdoe",
      client_id: "ehr-clinician-app",
      roles: ["er-physician", "er-nurse"],
      purpose_of_use: ["BTG"],
      btg_reason: "unconscious patient",
      jti: "t-1",
      extensions: { ihe_iua: { subject_role: ["x"] } },
    });
    expect(Math.abs(claims.iat! - (now - 7200))).toBeLessThanOrEqual(2);
    expect(Math.abs(claims.exp! - (now + 900))).toBeLessThanOrEqual(2);
    expect(decodeJwt((await run(["token", "--iat", "2026-01-01T00:00:00Z"])).stdout.trim()).iat).toBe(
      Date.parse("2026-01-01T00:00:00Z") / 1000,
    );
  });

  it("refuses values it cannot put in a token (exit 2)", async () => {
    expect((await run(["token", "--ttl", "forever"])).stderr).toContain(
      "--ttl must be a whole number of seconds from 1 to 86400",
    );
    expect((await run(["token", "--ttl", "0"])).code).toBe(2);
    expect((await run(["token", "--iat", "yesterday"])).stderr).toContain("--iat must be Unix seconds");
    expect((await run(["token", "--claims", "{nope"])).stderr).toContain("--claims: not valid JSON");
    expect((await run(["token", "--claims", "[1]"])).stderr).toContain("--claims: must be a JSON object");
    expect(await run(["token", "--claims", '{"iss":"https://evil"}'])).toMatchObject({
      code: 2,
      stderr: "smart-authz: --claims: iss cannot be set there; the demo key signs only for the demo issuer\n",
    });
    expect((await run(["token", "--claims", '{"exp":1}'])).stderr).toContain(
      "exp cannot be set there; use --ttl",
    );
  });

  it("reads times as Unix seconds, RFC 3339 or now-N", () => {
    expect(parseTime("1700000000", 5)).toBe(1700000000);
    expect(parseTime("now", 5000)).toBe(5000);
    expect(parseTime("now-90s", 5000)).toBe(4910);
    expect(parseTime("now-2m", 5000)).toBe(4880);
    expect(parseTime("now-1h", 5000)).toBe(1400);
    expect(parseTime("2026-11-22T10:00:00+01:00", 0)).toBe(Date.parse("2026-11-22T09:00:00Z") / 1000);
    for (const bad of ["now+1h", "2026-11-22", "soon", "", "1e9", "now-1d"])
      expect(parseTime(bad, 0)).toBeUndefined();
  });
});

describe("smart-authz eval and scopes", () => {
  it("evaluates a contract input from a file or stdin and prints the decision, allow or deny, with exit 0", async () => {
    const input = {
      claims: { scope: "patient/Observation.rs" },
      request: { method: "GET", url: "Observation" },
      now: "2026-01-01T00:00:00Z",
    };
    const file = writeFile(dir, "input.json", JSON.stringify(input));
    const fromFile = await run(["eval", file, "--bundle", bundle]);
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ decision: "allow", now: "2026-01-01T00:00:00Z" });
    const deny = await run(
      ["eval", "-", "--bundle", bundle],
      JSON.stringify({ ...input, claims: { scope: "openid" } }),
    );
    expect(deny.code).toBe(0);
    expect(JSON.parse(deny.stdout)).toMatchObject({ decision: "deny", status: 403 });
    expect(
      (await run(["eval", "--fail-on-deny", "--bundle", bundle], JSON.stringify({ ...input, claims: {} })))
        .code,
    ).toBe(3);
    expect((await run(["eval", "--fail-on-deny", file, "--bundle", bundle])).code).toBe(0);
  });

  it("defaults `now` to the current time, as /v1/decision does", async () => {
    const before = Date.now();
    const r = await run(
      ["eval", "--bundle", bundle],
      JSON.stringify({ claims: { scope: "patient/x" }, request: { method: "GET", url: "Observation" } }),
    );
    const now = Date.parse((JSON.parse(r.stdout) as { now: string }).now);
    expect(now).toBeGreaterThanOrEqual(before - 1000);
    expect(now).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it("applies the config's policy section and data documents, as serve does", async () => {
    const relationships = writeFile(
      dir,
      "relationships.json",
      JSON.stringify({ users: { "Practitioner/9": { patients: ["123"] } } }),
    );
    const config = writeFile(
      dir,
      "eval.yaml",
      `tokens:\n  issuers:\n    - { issuer: a, audience: x, jwks: { keys: [] } }\n` +
        `bundle: { source: ${bundle} }\npolicy: { audit: { observer: from-config } }\n` +
        `data:\n  relationships: { source: ./relationships.json }\n`,
    );
    const claims = { scope: "patient/x" };
    const marker = await run(
      ["eval", "--config", config],
      JSON.stringify({ claims, request: { method: "GET", url: "Observation" } }),
    );
    expect(JSON.parse(marker.stdout)).toMatchObject({ config_marker: "from-config" });
    const rel = await run(
      ["eval", "--config", config],
      JSON.stringify({ claims, request: { method: "GET", url: "Relationships" } }),
    );
    expect(JSON.parse(rel.stdout)).toMatchObject({
      relationships: { users: { "Practitioner/9": { patients: ["123"] } } },
    });
    writeFileSync(relationships, JSON.stringify({ users: { "Observation/1": {} } }));
    const invalid = await run(
      ["eval", "--config", config],
      JSON.stringify({ claims, request: { method: "GET", url: "Relationships" } }),
    );
    expect(invalid.code).toBe(0);
    expect(JSON.parse(invalid.stdout)).toMatchObject({ relationships: null });
    expect(invalid.stderr).toMatch(
      /^warning: data document relationships could not be loaded, deciding without it: /,
    );
  });

  it("rejects bad eval input with exit 2 and a precise message", async () => {
    expect(await run(["eval", "-", "--bundle", bundle], "{nope")).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^smart-authz: stdin: not valid JSON/),
    });
    expect(
      await run(["eval", "-", "--bundle", bundle], '{"request":{"method":"GET","url":""}}'),
    ).toMatchObject({
      code: 2,
      stderr: 'smart-authz: input: "claims" must be an object (verified token claims)\n',
    });
    expect(
      (await run(["eval", "--bundle", bundle], '{"claims":{},"request":{"method":"GET","url":""},"now":1}'))
        .stderr,
    ).toBe('smart-authz: input: "now" must be an RFC 3339 time string\n');
    expect((await run(["eval", join(dir, "missing.json"), "--bundle", bundle])).stderr).toMatch(
      /^smart-authz: cannot read .*missing\.json: ENOENT/,
    );
    expect(
      await run(
        ["eval", "-", "--bundle", join(dir, "nope.tar.gz")],
        '{"claims":{},"request":{"method":"GET","url":""}}',
      ),
    ).toMatchObject({
      code: 1,
      stderr: `smart-authz: bundle not found: ${join(dir, "nope.tar.gz")}\n`,
    });
  });

  it("prints the scopes as the policy parses them", async () => {
    const r = await run(["scopes", "patient/*.rs openid", "--bundle", bundle]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(["patient/*.rs", "openid"]);
    expect(await run(["scopes"])).toMatchObject({
      code: 2,
      stderr: 'smart-authz: scopes needs a scope string, e.g. smart-authz scopes "patient/*.rs"\n',
    });
  });
});

describe("smart-authz check-config", () => {
  // What check-config verifies is tested in test/check-config.test.ts; here, the command line.
  const good = () =>
    writeFile(
      dir,
      "good.yaml",
      `tokens:\n  issuers:\n    - issuer: https://a.example\n      audience: x\n      jwks_uri: https://a.example/jwks\nbundle:\n  source: ${bundle}\n`,
    );

  it("checks a good file and what it names (exit 0), an invalid one with positions (exit 2)", async () => {
    const ok = await run(["check-config", good()]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("revision cli-1");
    const bad = writeFile(
      dir,
      "bad.yaml",
      "tokens:\n  issuers:\n    - issuer: https://a.example\nbundle: {}\n",
    );
    const r = await run(["check-config", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${bad}:3:7: tokens.issuers\\[0\\]`));
    expect((await run(["check-config"])).code).toBe(2);
  });

  it("fails (exit 1) when the bundle is missing, unless --config-only", async () => {
    const missing = writeFile(
      dir,
      "missing-bundle.yaml",
      readFileSync(good(), "utf8").replace(bundle, "./not-built.tar.gz"),
    );
    expect((await run(["check-config", missing])).code).toBe(1);
    const configOnly = await run(["check-config", "--config-only", missing]);
    expect(configOnly.code).toBe(0);
    expect(configOnly.stdout).toContain("--config-only");
  });
});

describe("examples/", () => {
  it("input.json is a contract input eval accepts", async () => {
    const r = await run(["eval", join(REPO, "examples/input.json"), "--bundle", bundle]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
  });
});

describe("smart-authz serve", () => {
  it("refuses an invalid config (exit 2) and a missing bundle (exit 1) before listening, logging to its log destination", async () => {
    const bad = writeFile(dir, "serve-bad.yaml", "tokens: 3\nbundle: {source: x}\n");
    expect((await run(["serve", "--config", bad])).code).toBe(2);
    const missing = writeFile(
      dir,
      "serve-missing.yaml",
      `tokens:\n  issuers:\n    - { issuer: a, audience: x, jwks_uri: "http://127.0.0.1:9/j" }\nbundle:\n  source: ./missing.tar.gz\n`,
    );
    const logs = new LogSink();
    const r = await run(["serve", "--config", missing], "", {}, { logDestination: logs });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`smart-authz: bundle not found: ${join(dir, "missing.tar.gz")}\n`);
    expect(logs.find("policy bundle could not be loaded")[0]).toMatchObject({
      code: "BUNDLE_INVALID",
      kept_revision: null,
    });
  });

  it("prints a banner whose `try` lines use the program as it was run and the address it listens on", () => {
    const config = loadConfig(undefined, {});
    const text = banner("node dist/src/cli.js", "http://127.0.0.1:8282", config, {
      current: { revision: "r1" },
      status: { source: "build/bundle.tar.gz" },
    });
    expect(text).toContain(
      '    TOKEN=$(node dist/src/cli.js token --scope "patient/Observation.rs" --patient 123)\n',
    );
    expect(text).toContain("    curl -s http://127.0.0.1:8282/v1/decision ");
  });

  it("says in the banner who confines user/ scopes, and says it loudly in server mode", () => {
    const bundles = { current: { revision: "r1" }, status: { source: "build/bundle.tar.gz" } };
    const secure = banner("smart-authz", "http://127.0.0.1:8282", loadConfig(undefined, {}), bundles);
    expect(secure).toContain(
      "user/ scopes are confined to each user's own compartment (policy.user.access: relationships)",
    );
    const config = loadConfig(undefined, {});
    const server = banner(
      "smart-authz",
      "http://127.0.0.1:8282",
      { ...config, policy: { user: { access: "server" } } },
      bundles,
    );
    expect(server).toContain("user/ scopes are NOT confined by this service (policy.user.access: server)");
  });
});

describe("smart-authz serve (a real process)", () => {
  const outDir = join(REPO, "node_modules/.cache/smart-authz-cli-test");
  let cli: string;

  beforeAll(() => {
    execFileSync(
      process.execPath,
      [
        join(REPO, "node_modules/typescript/bin/tsc"),
        "-p",
        join(REPO, "tsconfig.json"),
        "--outDir",
        outDir,
        "--noCheck",
      ],
      {
        stdio: "pipe",
      },
    );
    cli = join(outDir, "src/cli.js");
    expect(existsSync(cli)).toBe(true);
  }, 60_000);

  async function start(args: string[], env: NodeJS.ProcessEnv = {}) {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = { stdout: "", stderr: "" };
    child.stdout.on("data", (c: Buffer) => (out.stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out.stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    await expect
      .poll(
        () =>
          /listening on (http:\/\/\S+)/.exec(out.stderr)?.[1] ??
          (child.exitCode !== null ? "exited" : undefined),
        {
          timeout: 15_000,
        },
      )
      .toMatch(/^http:/);
    const url = /listening on (http:\/\/\S+)/.exec(out.stderr)![1]!;
    // The JSON log lines are written asynchronously; the banner may come first.
    if (!args.includes("--log-level"))
      await expect.poll(() => out.stdout, { timeout: 5000 }).toContain("listening on");
    return { child, out, exited, url };
  }

  it("prints a banner, reloads the bundle on SIGHUP and drains on SIGTERM", async () => {
    const work = tempDir();
    const bundlePath = join(work, "bundle.tar.gz");
    writeFileSync(bundlePath, readFileSync(buildFixtureBundle("proc-1")));
    const config = writeFile(
      work,
      "sidecar.yaml",
      `server: { listen: "127.0.0.1:0" }\ntokens:\n  issuers:\n    - { issuer: a, audience: x, jwks: { keys: [] } }\nbundle:\n  source: ./bundle.tar.gz\n  poll_interval_seconds: 0\n`,
    );
    const { child, out, exited, url } = await start(["serve", "--config", config]);
    try {
      expect(out.stderr).toContain("policy revision proc-1");
      const startup = out.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => String(l.msg).includes("listening on"));
      expect(startup).toMatchObject({ listen: url, revision: "proc-1", config });

      writeFileSync(bundlePath, readFileSync(buildFixtureBundle("proc-2")));
      child.kill("SIGHUP");
      await expect
        .poll(
          async () =>
            ((await (await fetch(`${url}/status`)).json()) as { bundle: { revision: string } }).bundle
              .revision,
          { timeout: 10_000 },
        )
        .toBe("proc-2");

      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(out.stdout).toContain("SIGTERM: graceful shutdown");
      expect(out.stdout).toContain('"msg":"stopped"');
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("takes --addr, --bundle and --log-level over the environment, and its banner's try lines run as printed", async () => {
    const fixture = buildFixtureBundle("flags-1");
    const { child, out, exited, url } = await start(
      ["serve", "--addr", "127.0.0.1:0", "--bundle", fixture, "--log-level", "warn"],
      {
        SMART_AUTHZ_LISTEN: "127.0.0.1:1",
        SMART_AUTHZ_BUNDLE: "/nope.tar.gz",
        SMART_AUTHZ_LOG_LEVEL: "debug",
      },
    );
    try {
      expect(out.stderr).toContain("policy revision flags-1");
      // warn: the info-level start-up line is not logged, the DEMO warning is.
      expect(out.stdout).not.toContain("listening on");
      expect(out.stdout).toContain("DEMO issuer is trusted");
      const tryLines = out.stderr
        .split("\n")
        .slice(out.stderr.split("\n").findIndex((l) => l.trim() === "try:") + 1)
        .filter((l) => l.startsWith("    "))
        .join("\n");
      expect(tryLines).toContain(`node ${cli.slice(REPO.length + 1)} token`);
      const answer = execFileSync("bash", ["-c", tryLines], { cwd: REPO, encoding: "utf8" });
      // The fixture policy allows any patient/ scope.
      expect(JSON.parse(answer)).toMatchObject({ decision: "allow" });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
