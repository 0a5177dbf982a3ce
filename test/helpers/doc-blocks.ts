/**
 * The fenced code blocks of the project's Markdown, and the conventions that make the documented
 * commands testable (test/docs-commands.test.ts; described in docs/testing.md):
 *
 *   ```sh                      a shell block: run, in order with the document's other shell blocks
 *   ```sh no-run (reason)      not run; the reason is required and listed by the test
 *   ```json output             what the previous shell block prints on stdout (json, text, http, …)
 *   ```text output exit=2 stderr   … its exit status, and stderr instead of stdout
 *   ```yaml file=NAME          written to NAME in the working folder before the next block runs
 *
 * In shown output, `…` stands for anything: a whole line `…` for any number of lines, `"…"` for
 * any JSON value, `…` inside a string or line for any text, and `"…": "…"` in an object for any
 * further keys. JSON is compared as JSON (key order does not matter).
 */
import { readFileSync } from "node:fs";

export interface DocBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** The info string after the language. */
  info: string;
  text: string;
  noRun?: string;
  output?: { exit: number; stream: "stdout" | "stderr" };
  fileName?: string;
}

export function docBlocks(path: string, name = path): DocBlock[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})\s*([\w+-]*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang, info] = open as unknown as [string, string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim() === fence && l.startsWith(indent)) break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    const block: DocBlock = { file: name, line: i + 1, lang, info: info.trim(), text: body.join("\n") };
    const noRun = /(?:^|\s)no-run\b\s*(?:\((.*)\))?/.exec(block.info);
    if (noRun) block.noRun = (noRun[1] ?? "").trim();
    if (/(?:^|\s)output\b/.test(block.info)) {
      block.output = {
        exit: Number(/(?:^|\s)exit=(\d+)/.exec(block.info)?.[1] ?? 0),
        stream: /(?:^|\s)stderr\b/.test(block.info) ? "stderr" : "stdout",
      };
    }
    const file = /(?:^|\s)file=(\S+)/.exec(block.info);
    if (file) block.fileName = file[1]!;
    blocks.push(block);
    i = j;
  }
  return blocks;
}

export const isShell = (b: DocBlock) => (b.lang === "sh" || b.lang === "bash") && !b.output;

/** Whether `actual` is what `expected` shows, under the wildcard rules above; a message when not. */
export function outputMismatch(expected: string, actual: string): string | undefined {
  const exp = expected.trim();
  const act = actual.trim();
  const expJson = parseJson(exp);
  const actJson = parseJson(act);
  if (expJson.ok && actJson.ok) {
    const why = jsonMismatch(expJson.value, actJson.value, "$");
    return why && `${why}\n--- shown\n${exp}\n--- got\n${act}`;
  }
  const why = linesMismatch(exp.split("\n"), act.split("\n"));
  return why && `${why}\n--- shown\n${exp}\n--- got\n${act}`;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (!/^[[{"]/.test(text)) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

const ELLIPSIS = "…";

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split(ELLIPSIS)
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("[\\s\\S]*")}$`,
  );
}

export function jsonMismatch(expected: unknown, actual: unknown, at: string): string | undefined {
  if (expected === ELLIPSIS) return undefined;
  if (typeof expected === "string") {
    if (typeof actual !== "string") return `${at}: expected a string, got ${JSON.stringify(actual)}`;
    if (expected.includes(ELLIPSIS) ? glob(expected).test(actual) : expected === actual) return undefined;
    return `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}: expected an array, got ${JSON.stringify(actual)}`;
    const open = expected.at(-1) === ELLIPSIS;
    const items = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < items.length : actual.length !== items.length)
      return `${at}: expected ${items.length}${open ? " or more" : ""} items, got ${actual.length}`;
    for (let i = 0; i < items.length; i++) {
      const why = jsonMismatch(items[i], actual[i], `${at}[${i}]`);
      if (why) return why;
    }
    return undefined;
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual))
      return `${at}: expected an object, got ${JSON.stringify(actual)}`;
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const open = e[ELLIPSIS] === ELLIPSIS;
    for (const key of Object.keys(e)) {
      if (key === ELLIPSIS) continue;
      if (!(key in a)) return `${at}.${key}: missing`;
      const why = jsonMismatch(e[key], a[key], `${at}.${key}`);
      if (why) return why;
    }
    if (!open) {
      const extra = Object.keys(a).filter((k) => !(k in e));
      if (extra.length > 0) return `${at}: keys not shown: ${extra.join(", ")}`;
    }
    return undefined;
  }
  return Object.is(expected, actual)
    ? undefined
    : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

function lineMatches(expected: string, actual: string): boolean {
  const e = expected.trimEnd();
  const a = actual.trimEnd();
  const ej = parseJson(e.trim());
  const aj = parseJson(a.trim());
  if (ej.ok && aj.ok) return jsonMismatch(ej.value, aj.value, "$") === undefined;
  return e.includes(ELLIPSIS) ? glob(e).test(a) : e === a;
}

/** Line-by-line, with a line holding only `…` standing for any number of lines. */
function linesMismatch(expected: string[], actual: string[]): string | undefined {
  const match = (i: number, j: number): boolean => {
    if (i === expected.length) return j === actual.length;
    if (expected[i]!.trim() === ELLIPSIS) {
      for (let k = j; k <= actual.length; k++) if (match(i + 1, k)) return true;
      return false;
    }
    return j < actual.length && lineMatches(expected[i]!, actual[j]!) && match(i + 1, j + 1);
  };
  if (match(0, 0)) return undefined;
  const first = expected.findIndex(
    (l, i) => l.trim() !== ELLIPSIS && !actual.some((a) => lineMatches(l, a)) && i >= 0,
  );
  return first >= 0 ? `no output line matches ${JSON.stringify(expected[first])}` : "the lines differ";
}
