/** H-1: JSON text holding a lone UTF-16 surrogate is refused as input-invalid before evaluation. */
import { describe, expect, it } from "vitest";
import { assertWellFormed } from "../src/policy/engine.js";

const wellFormed = (value: unknown) => {
  try {
    assertWellFormed(JSON.stringify(value));
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: "INPUT_INVALID" });
    return false;
  }
};

describe("assertWellFormed", () => {
  it("refuses lone surrogates anywhere, in keys and values", () => {
    expect(wellFormed({ a: "\udc00" })).toBe(false);
    expect(wellFormed({ a: "x\ud800" })).toBe(false);
    expect(wellFormed({ a: "\ud800x" })).toBe(false);
    expect(wellFormed({ a: ["ok", { b: "\udfff\ud800" }] })).toBe(false);
    expect(wellFormed({ "\udbff": 1 })).toBe(false);
    expect(wellFormed({ a: "\ud800\ud800\udc00" })).toBe(false);
  });

  it("accepts well-formed strings, pairs, and text that only looks like an escape", () => {
    expect(wellFormed({ a: "😀 \ud83d\ude00 é \u0000 \\u", b: "\\ud800", c: "\\\\\\u" })).toBe(true);
    expect(wellFormed({ a: "\\udc00", b: "x\\\\ud800" })).toBe(true);
    expect(() => assertWellFormed('{"a": "\\ud83d\\ude00", "b": "\\uD83D\\uDE00"}')).not.toThrow();
    expect(() => assertWellFormed('{"a": "\\\\\\ud800"}')).toThrow(/lone surrogate \\ud800 at offset 9/);
    expect(() => assertWellFormed('{"a": "\\\\ud800"}')).not.toThrow();
  });
});
