/**
 * The folders of src/ are layers, and imports only run downward: a newcomer can read the design
 * from the tree, and the proxy and the APIs can be changed without reaching into each other.
 *   core (contract, errors) < ops (config, logging, metrics, audit) < policy, auth < api < proxy < cli/server
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./helpers/fixtures.js";

const SRC = join(REPO, "src");
const LAYER: Record<string, number> = { core: 0, ops: 1, policy: 2, auth: 2, api: 3, proxy: 4, ".": 5 };

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes("/") ? rel.split("/")[0]! : ".";
}

describe("src/ layering", () => {
  const files = sources(SRC);

  it("puts every module in a known folder", () => {
    for (const f of files) expect(LAYER[folderOf(f)], relative(REPO, f)).toBeDefined();
  });

  it("imports only from the module's own folder or a lower layer", () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/from\s+"(\.{1,2}\/[^"]+)"/g)) {
        const to = folderOf(resolve(dirname(file), m[1]!));
        if (to !== from && !(LAYER[to]! < LAYER[from]!)) {
          violations.push(`${relative(REPO, file)} imports ${m[1]} (${from} -> ${to})`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
