/** Reads docs/contract.md: its version, its field tables and its reason codes, for the tests that keep it true. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./fixtures.js";

export interface ContractRow {
  /** The first cell without its backticks, e.g. `request.method` or `token-missing`. */
  name: string;
  cells: string[];
}

export interface ContractDoc {
  text: string;
  version: { major: number; minor: number };
  changeLog: ContractRow[];
  inputFields: ContractRow[];
  decisionFields: ContractRow[];
  reasonCodes: ContractRow[];
}

/** The text of a `## Heading` section, up to the next heading of the same level. */
export function section(text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/contract.md has no "## ${heading}" section`);
  const rest = text.slice(start + heading.length + 5);
  const end = rest.search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The body rows of the first Markdown table in `text`. */
export function tableRows(text: string): ContractRow[] {
  const lines = text.split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  if (first < 0) return [];
  const rows: ContractRow[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line
      .slice(1, line.endsWith("|") ? -1 : undefined)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    rows.push({ name: cells[0]!.replace(/^`|`$/g, ""), cells });
  }
  return rows;
}

export function readContract(file = join(REPO, "docs", "contract.md")): ContractDoc {
  const text = readFileSync(file, "utf8");
  const m = /\*\*Contract version: (\d+)\.(\d+)\*\*/.exec(text);
  if (!m) throw new Error('docs/contract.md does not state "**Contract version: X.Y**"');
  return {
    text,
    version: { major: Number(m[1]), minor: Number(m[2]) },
    changeLog: tableRows(section(text, "Change log")),
    inputFields: tableRows(section(text, "Input document")),
    decisionFields: tableRows(section(text, "Decision document")),
    reasonCodes: tableRows(section(text, "Reason codes")),
  };
}

/** Every reason code in a decision document: reasons[].code and drop[].reason, entries included. */
export function reasonCodesOf(decision: unknown, into = new Set<string>()): Set<string> {
  if (typeof decision !== "object" || decision === null) return into;
  const d = decision as { reasons?: unknown; drop?: unknown; entries?: unknown };
  if (Array.isArray(d.reasons)) {
    for (const r of d.reasons) {
      const code = (r as { code?: unknown } | null)?.code;
      if (typeof code === "string") into.add(code);
    }
  }
  if (Array.isArray(d.drop)) {
    for (const x of d.drop) {
      const reason = (x as { reason?: unknown } | null)?.reason;
      if (typeof reason === "string") into.add(reason);
    }
  }
  if (Array.isArray(d.entries)) for (const e of d.entries) reasonCodesOf(e, into);
  return into;
}
