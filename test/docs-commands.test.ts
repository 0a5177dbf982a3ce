/**
 * Every command the README and docs/*.md show is run, and what they show it prints is what it
 * prints. The shell blocks of each document run in order in one bash session, in a scratch folder
 * that links to the repository's build output (so `node dist/src/cli.js …`, `build/…` and
 * `examples/…` work as written), against a service started on the embedded DEMO config. The docs
 * say 127.0.0.1:8282 (and 8283 for a second service a walkthrough starts); free ports are
 * substituted in the commands and files (not in the output they show). Conventions:
 * test/helpers/doc-blocks.ts and docs/testing.md.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/ops/config.js";
import { startService, type Service } from "../src/server.js";
import { docBlocks, isShell, outputMismatch, type DocBlock } from "./helpers/doc-blocks.js";
import { LogSink, REPO, tempDir } from "./helpers/fixtures.js";

const DOCS = [
  "README.md",
  ...readdirSync(join(REPO, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

/** What the scratch folder links to in the repository, and what it copies (`opa build -b` does not follow a linked root). */
const LINKED = [
  "dist",
  "build",
  "examples",
  "schemas",
  "test",
  "scripts",
  "node_modules",
  ".tools",
  "package.json",
];
const COPIED = ["policies"];

/** A folder of its own for one page's commands, with the clone's build output at hand. */
const scratchFolders: string[] = [];
function scratchFolder(): string {
  const folder = tempDir("smart-authz-docs-");
  scratchFolders.push(folder);
  for (const entry of LINKED)
    if (existsSync(join(REPO, entry))) symlinkSync(join(REPO, entry), join(folder, entry));
  for (const entry of COPIED) cpSync(join(REPO, entry), join(folder, entry), { recursive: true });
  return folder;
}

const blocksOf = new Map(DOCS.map((d) => [d, docBlocks(join(REPO, d), d)]));

function hasCommand(name: string): boolean {
  return spawnSync("bash", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const where = (b: DocBlock) => `${b.file}:${b.line}`;

describe("the documentation's code blocks", () => {
  it("mark every shell block they do not run with a reason, and put shown output right after a command", () => {
    const problems: string[] = [];
    for (const [doc, blocks] of blocksOf) {
      blocks.forEach((b, i) => {
        if (isShell(b) && b.noRun === "")
          problems.push(`${where(b)}: no-run needs a reason: \`\`\`sh no-run (why)`);
        if (b.output) {
          const previous = blocks[i - 1];
          if (!previous || !isShell(previous) || previous.noRun !== undefined)
            problems.push(`${where(b)}: an output block must follow a shell block that runs`);
        }
        if (["console", "shell", "shell-session", "zsh"].includes(b.lang))
          problems.push(`${where(b)}: write shell blocks as \`\`\`sh (${doc} uses ${b.lang})`);
      });
    }
    expect(problems).toEqual([]);
  });

  it("lists what is not run, and why", () => {
    const skipped = [...blocksOf.values()]
      .flat()
      .filter((b) => isShell(b) && b.noRun !== undefined)
      .map((b) => `${where(b)}: ${b.text.split("\n")[0]}  — ${b.noRun}`);
    // Printed so that a reader of the test output sees what the docs test leaves out.
    console.info(`documented commands not run here:\n  ${skipped.join("\n  ")}`);
    expect(skipped.length).toBeGreaterThan(0);
  });
});

describe("the documented commands", () => {
  let service: Service;
  let ports: { main: number; spare: number };

  beforeAll(async () => {
    const cli = join(REPO, "dist/src/cli.js");
    if (!existsSync(cli)) throw new Error("dist/src/cli.js is missing: run `make build` first");
    const newestSource = Math.max(
      ...readdirSync(join(REPO, "src"), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith(".ts"))
        .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs),
    );
    if (statSync(cli).mtimeMs < newestSource)
      throw new Error("dist/ is older than src/: run `make build` first");
    if (!existsSync(join(REPO, "build/bundle.tar.gz")))
      throw new Error("build/bundle.tar.gz is missing: run `make build`");

    const spare = await freePort();
    service = await startService(loadConfig(undefined, { SMART_AUTHZ_LISTEN: "127.0.0.1:0" }), {
      logDestination: new LogSink(),
      defaultMetrics: false,
    });
    ports = { main: service.port, spare };
  }, 60_000);

  afterAll(async () => {
    await service?.close();
    for (const folder of scratchFolders) rmSync(folder, { recursive: true, force: true });
  });

  const withPorts = (text: string) =>
    text.replace(/\b8282\b/g, String(ports.main)).replace(/\b8283\b/g, String(ports.spare));

  // The pages run side by side: each in its own bash session and scratch folder.
  it.concurrent.each(DOCS.filter((d) => blocksOf.get(d)!.some((b) => isShell(b) && b.noRun === undefined)))(
    "%s: every shell block runs and prints what the document shows",
    async (doc) => {
      const blocks = blocksOf.get(doc)!;
      const needs = ["jq", "curl", "openssl"].filter((c) =>
        blocks.some(
          (b) => isShell(b) && b.noRun === undefined && new RegExp(`(^|[|(\\s])${c}\\b`, "m").test(b.text),
        ),
      );
      const missing = needs.filter((c) => !hasCommand(c));
      if (missing.length > 0) {
        console.warn(`${doc}: not run: ${missing.join(", ")} not installed`);
        return;
      }
      const runs: { block: DocBlock; output?: DocBlock; index: number }[] = [];
      const folder = scratchFolder();
      let script = "cd " + JSON.stringify(folder) + "\n";
      blocks.forEach((b, i) => {
        if (b.fileName) {
          script += `cat > ${JSON.stringify(b.fileName)} <<'__SMART_AUTHZ_DOC_EOF__'\n${withPorts(b.text)}\n__SMART_AUTHZ_DOC_EOF__\n`;
          return;
        }
        if (!isShell(b) || b.noRun !== undefined) return;
        const output = blocks[i + 1]?.output ? blocks[i + 1] : undefined;
        const n = runs.length;
        runs.push({ block: b, ...(output ? { output } : {}), index: n });
        const expectsFailure = (output?.output?.exit ?? 0) !== 0;
        script +=
          `printf '\\n@@BEGIN ${n}@@\\n'; printf '\\n@@BEGIN ${n}@@\\n' >&2\n` +
          (expectsFailure ? "set +e +o pipefail\n" : "set -e -o pipefail\n") +
          `${withPorts(b.text)}\n` +
          `__rc=$?\nset +e\n` +
          `printf '\\n@@END ${n} %d@@\\n' "$__rc"; printf '\\n@@END ${n}@@\\n' >&2\n`;
      });
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SMART_AUTHZ_")) env[k] = v;
      const result = await runBash(script, folder, env, 180_000);

      const section = (text: string, n: number, withRc: boolean) => {
        const begin = text.indexOf(`\n@@BEGIN ${n}@@\n`);
        const end = withRc
          ? text.search(new RegExp(`\\n@@END ${n} \\d+@@\\n`))
          : text.indexOf(`\n@@END ${n}@@\n`);
        if (begin < 0 || end < 0) return undefined;
        const rc = withRc ? Number(new RegExp(`\\n@@END ${n} (\\d+)@@\\n`).exec(text)![1]) : 0;
        return { text: text.slice(begin + `\n@@BEGIN ${n}@@\n`.length, end), rc };
      };
      for (const run of runs) {
        const out = section(result.stdout, run.index, true);
        const err = section(result.stderr, run.index, false);
        const label = `${where(run.block)}:\n${run.block.text}`;
        if (!out) {
          const started = result.stderr.lastIndexOf(`\n@@BEGIN ${run.index}@@\n`);
          throw new Error(
            `${label}\nfailed (exit ${result.code}${result.timedOut ? ", timed out" : ""}); stderr:\n` +
              (started >= 0 ? result.stderr.slice(started) : result.stderr).slice(0, 4000),
          );
        }
        const wantExit = run.output?.output?.exit ?? 0;
        expect(out.rc, `${label}\nexit status (stderr: ${err?.text ?? ""})`).toBe(wantExit);
        if (run.output) {
          const shown = run.output.text; // output shows what the command prints, ports included
          const got = run.output.output!.stream === "stderr" ? (err?.text ?? "") : out.text;
          const why = outputMismatch(shown, got);
          expect(why, `${label}\n${where(run.output)} shows other output`).toBeUndefined();
        }
      }
    },
    240_000,
  );
});

function runBash(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    // A process group of its own, so that services a walkthrough starts in the background stop with it.
    const child = spawn("bash", ["--noprofile", "--norc", "-s"], { cwd, env, detached: true, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const stopGroup = () => {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stopGroup();
    }, timeoutMs);
    let code: number | null = null;
    // When the script ends, whatever it left running in the background stops too.
    child.on("exit", (c) => {
      code = c;
      clearTimeout(timer);
      stopGroup();
    });
    child.on("close", () => resolve({ code, stdout, stderr, timedOut }));
    child.stdin.end(script);
  });
}
