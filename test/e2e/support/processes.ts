/**
 * Processes an end-to-end suite starts (the sidecar, NGINX, …): started with their output in a log
 * file, waited for until they answer, and stopped by their own pid — never by name. Every started
 * process is registered in build/e2e/pids/ with a token only it carries in its environment, so the
 * global teardown (global-teardown.ts) can stop what a crashed suite left behind without touching
 * anything else, even a reused pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

export const E2E_BUILD = resolve("build/e2e");
export const PID_DIR = join(E2E_BUILD, "pids");
export const LOG_DIR = join(E2E_BUILD, "logs");
/** The environment variable that marks a process as ours: its value is in the pid file too. */
export const MARK_VARIABLE = "SMART_AUTHZ_E2E_PROCESS";

export interface Started {
  name: string;
  pid: number;
  log: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<string>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts `command args…` with its stdout and stderr in build/e2e/logs/<name>.log, then waits until
 * `ready()` resolves true. Fails with the log's tail when the process exits first or `timeoutMs`
 * passes (and then stops it).
 */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  options: { env?: Record<string, string>; ready: () => Promise<boolean>; timeoutMs?: number },
): Promise<Started> {
  mkdirSync(PID_DIR, { recursive: true });
  mkdirSync(LOG_DIR, { recursive: true });
  const log = join(LOG_DIR, `${name}.log`);
  const fd = openSync(log, "w");
  const mark = randomUUID();
  const child = spawn(command, args, {
    env: { ...process.env, ...options.env, [MARK_VARIABLE]: mark },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) {
    const error = await new Promise<Error>((r) => child.once("error", r));
    throw new Error(`${name}: could not start ${command}: ${error.message}`);
  }
  const pid = child.pid;
  writeFileSync(join(PID_DIR, String(pid)), JSON.stringify({ name, mark }));
  const exited = new Promise<string>((r) =>
    child.once("exit", (code, signal) => r(signal ? `signal ${signal}` : `exit code ${code}`)),
  );
  const started: Started = { name, pid, log, child, exited };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let exitedWith: string | undefined;
  void exited.then((how) => (exitedWith = how));
  for (;;) {
    if (exitedWith !== undefined) {
      forget(pid);
      throw new Error(`${name} exited during startup (${exitedWith}); ${tail(log)}`);
    }
    if (await options.ready().catch(() => false)) return started;
    if (Date.now() > deadline) {
      await stopProcess(started);
      throw new Error(`${name} was not ready within ${options.timeoutMs ?? 60_000} ms; ${tail(log)}`);
    }
    await sleep(250);
  }
}

/**
 * Stops a started process by its pid: `signal` (SIGTERM; NGINX: SIGQUIT, a graceful stop), then
 * SIGKILL to it and its children after `graceMs`. Idempotent.
 */
export async function stopProcess(
  p: Started | undefined,
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 15_000,
) {
  if (!p) return;
  if (p.child.exitCode === null && p.child.signalCode === null) {
    const children = childrenOf(p.pid);
    p.child.kill(signal);
    const done = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      for (const c of [p.pid, ...children]) killQuietly(c, "SIGKILL");
      await p.exited;
    }
  }
  forget(p.pid);
}

/** The last lines of a log, for error messages. */
export function tail(log: string, lines = 30): string {
  try {
    const text = readFileSync(log, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    return `last lines of ${log}:\n${text}`;
  } catch {
    return `no log at ${log}`;
  }
}

/**
 * Stops every process registered in build/e2e/pids/ that still runs and still carries its mark
 * (a pid reused by another process does not). Returns what it stopped.
 */
export async function stopLeftovers(): Promise<string[]> {
  let entries: string[];
  try {
    entries = readdirSync(PID_DIR);
  } catch {
    return [];
  }
  const stopped: string[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    const file = join(PID_DIR, entry);
    let record: { name?: string; mark?: string } = {};
    try {
      record = JSON.parse(readFileSync(file, "utf8")) as typeof record;
    } catch {
      // unreadable: forget it below
    }
    if (Number.isInteger(pid) && pid > 1 && record.mark && carriesMark(pid, record.mark)) {
      const children = childrenOf(pid);
      killQuietly(pid, "SIGTERM");
      for (let i = 0; i < 60 && alive(pid); i++) await sleep(250);
      for (const c of [pid, ...children]) if (alive(c)) killQuietly(c, "SIGKILL");
      stopped.push(`${record.name ?? "?"} (pid ${pid})`);
    }
    rmSync(file, { force: true });
  }
  return stopped;
}

function carriesMark(pid: number, mark: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`${MARK_VARIABLE}=${mark}`);
  } catch {
    return false;
  }
}

/** Direct children (NGINX's workers), read from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let dirs: string[] = [];
  try {
    dirs = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of dirs) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "latin1");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function forget(pid: number): void {
  rmSync(join(PID_DIR, String(pid)), { force: true });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
