/** The bundle's tar reader accepts what `opa build` writes and refuses every entry it does not handle. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { untar } from "../src/policy/bundle.js";
import { REPO } from "./helpers/fixtures.js";

function entry(name: string, body: string, type = "0"): Uint8Array {
  const header = new Uint8Array(512);
  const put = (text: string, at: number) => header.set(new TextEncoder().encode(text), at);
  put(name, 0);
  put("0000644\0", 100);
  put(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
  put(type, 156);
  put("ustar\0", 257);
  put("        ", 148);
  const sum = header.reduce((a, b) => a + b, 0);
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const data = new Uint8Array(Math.ceil(body.length / 512) * 512);
  data.set(new TextEncoder().encode(body));
  return new Uint8Array([...header, ...data]);
}

function tar(...entries: Uint8Array[]): Uint8Array {
  return new Uint8Array([...entries.flatMap((e) => [...e]), ...new Uint8Array(1024)]);
}

describe("untar", () => {
  it("reads the bundle opa build wrote", () => {
    const built = join(REPO, "build/bundle.tar.gz");
    let bytes: Uint8Array;
    try {
      bytes = gunzipSync(readFileSync(built));
    } catch {
      return; // not built: the other cases still run
    }
    expect([...untar(bytes).keys()]).toContain("policy.wasm");
  });

  it("reads regular files and skips directories", () => {
    const files = untar(tar(entry("dir/", "", "5"), entry("dir/a.json", "{}")));
    expect([...files.keys()]).toEqual(["dir/a.json"]);
  });

  it.each([
    ["a symbolic link", entry("policy.wasm", "", "2")],
    ["a hard link", entry("policy.wasm", "", "1")],
    ["a PAX header", entry("PaxHeader", "", "x")],
    ["a GNU long name", entry("././@LongLink", "", "L")],
  ])("refuses %s", (_what, e) => {
    expect(() => untar(tar(e))).toThrow(/unsupported entry type/);
  });

  it("refuses a path that climbs out, a file named twice and a bad checksum", () => {
    expect(() => untar(tar(entry("../x.json", "{}")))).toThrow(/leaves the bundle/);
    expect(() => untar(tar(entry("a.json", "{}"), entry("a.json", "[]")))).toThrow(/twice/);
    const broken = entry("a.json", "{}");
    broken[0] = "b".charCodeAt(0);
    expect(() => untar(tar(broken))).toThrow(/checksum/);
  });
});
