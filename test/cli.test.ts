import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main, type CliIO } from "../src/cli.js";
import { loadConfig } from "../src/ops/config.js";
import { TokenVerifier } from "../src/auth/tokens.js";
import { REPO, buildFixtureBundle, tempDir, writeFile } from "./helpers/fixtures.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], stdin = "", env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    stdin: () => stdin,
    env,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

let dir: string;
let bundle: string;

beforeAll(() => {
  dir = tempDir();
  bundle = buildFixtureBundle("cli-1");
});

describe("smart-authz CLI", () => {
  it("prints usage and exits 2 for an unknown command or option", async () => {
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^smart-authz: unknown command "frobnicate"\n\nusage: smart-authz <command>/,
    );
    const badOption = await run(["token", "--scopes", "x"]);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain("Unknown option '--scopes'");
    expect((await run([])).code).toBe(2);
    expect((await run(["--help"])).stdout).toContain("check-config FILE");
  });

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
    const verified = await new TokenVerifier(loadConfig(undefined, {}).tokens).verify(r.stdout.trim());
    expect(verified.claims).toMatchObject({
      scope: "patient/Observation.rs launch/patient",
      patient: "123",
      fhirUser: "Practitioner/9",
      iss: "https://demo.smart-authz.invalid",
    });
    expect(verified.claims.exp! - verified.claims.iat!).toBe(600);
    expect((await run(["token", "--ttl", "forever"])).stderr).toContain(
      "--ttl must be a whole number of seconds from 1 to 86400",
    );
  });

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
    expect((await run(["scopes"])).code).toBe(2);
  });

  it("check-config accepts a good file and reports every problem of a bad one with line and column", async () => {
    const good = writeFile(
      dir,
      "good.yaml",
      `tokens:\n  issuers:\n    - issuer: https://a.example\n      audience: x\n      jwks_uri: https://a.example/jwks\nbundle:\n  source: ${bundle}\n`,
    );
    const ok = await run(["check-config", good]);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.stdout).toContain(`${good}: OK`);
    const bad = writeFile(
      dir,
      "bad.yaml",
      "tokens:\n  issuers:\n    - issuer: https://a.example\n      jwks_uri: nope\nbundle: {}\n",
    );
    const r = await run(["check-config", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `smart-authz: invalid config (3 problems):\n` +
        `  ${bad}:3:7: tokens.issuers[0].audience: required: the audience (a string or a list of strings) your tokens carry in \`aud\`\n` +
        `  ${bad}:4:17: tokens.issuers[0].jwks_uri: must be an http:// or https:// URL\n` +
        `  ${bad}:5:9: bundle.source: required\n`,
    );
    expect((await run(["check-config", join(dir, "absent.yaml")])).stderr).toBe(
      `smart-authz: config file not found: ${join(dir, "absent.yaml")}\n`,
    );
    const badKey = writeFile(
      dir,
      "badkey.yaml",
      readFileSync(good, "utf8") + "  verification:\n    public_key: nope\n    algorithm: ES256\n",
    );
    expect((await run(["check-config", badKey])).stderr).toContain(
      `${badKey}:9:17: bundle.verification.public_key: must be a PEM public key (BEGIN PUBLIC KEY), a PEM certificate or a JWK`,
    );
  });

  it("serve refuses an invalid config (exit 2) and a missing bundle (exit 1) before listening", async () => {
    const bad = writeFile(dir, "serve-bad.yaml", "tokens: 3\nbundle: {source: x}\n");
    expect((await run(["serve", "--config", bad])).code).toBe(2);
    const missing = writeFile(
      dir,
      "serve-missing.yaml",
      `tokens:\n  issuers:\n    - { issuer: a, audience: x, jwks_uri: "http://127.0.0.1:9/j" }\nbundle:\n  source: ./missing.tar.gz\n`,
    );
    const r = await run(["serve", "--config", missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`smart-authz: bundle not found: ${join(dir, "missing.tar.gz")}\n`);
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

  it("prints a banner, reloads the bundle on SIGHUP and drains on SIGTERM", async () => {
    const work = tempDir();
    const bundlePath = join(work, "bundle.tar.gz");
    writeFileSync(bundlePath, readFileSync(buildFixtureBundle("proc-1")));
    const config = writeFile(
      work,
      "sidecar.yaml",
      `server: { listen: "127.0.0.1:0" }\ntokens:\n  issuers:\n    - { issuer: a, audience: x, jwks: { keys: [] } }\nbundle:\n  source: ./bundle.tar.gz\n  poll_interval_seconds: 0\n`,
    );
    const child = spawn(process.execPath, [cli, "serve", "--config", config], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await expect
        .poll(() => /listening on (http:\/\/\S+)/.exec(stderr)?.[1], { timeout: 15_000 })
        .toBeTruthy();
      const url = /listening on (http:\/\/\S+)/.exec(stderr)![1]!;
      expect(stderr).toContain("policy revision proc-1");
      const banner = stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => String(l.msg).includes("listening on"));
      expect(banner).toMatchObject({ listen: url, revision: "proc-1", config });

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
      expect(stdout).toContain("SIGTERM: graceful shutdown");
      expect(stdout).toContain('"msg":"stopped"');
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
