// Writes policies/lib/percent/data.json (loaded as data.lib.percent): the per-byte lookup tables
// that let policies/lib/text.rego percent-decode in linear time in OPA's WASM target, where
// arithmetic and bits.* builtins go through a decimal library and cost microseconds each.
//
// Keys are the two hex digits of an escape (%XX), in every upper/lower-case combination. Only
// bytes that may appear in a decoded FHIR URL or scope value have an entry: printable ASCII
// (0x20-0x7E), UTF-8 continuation bytes (0x80-0xBF) and UTF-8 lead bytes (0xC2-0xF4). Control
// characters, DEL, 0xC0, 0xC1 and 0xF5-0xFF have none, so their escapes are refused.
//
//   class[XX]: the byte's role in a UTF-8 sequence (RFC 3629 section 4, Unicode Table 3-7):
//     "|a" printable ASCII; "|2" a 2-byte lead (C2-DF); "|3" a 3-byte lead (E1-EC, EE, EF);
//     "|E" E0 (next byte A0-BF); "|D" ED (next 80-9F: no surrogates); "|4" F1-F3;
//     "|F" F0 (next 90-BF); "|G" F4 (next 80-8F: nothing above U+10FFFF);
//     "8", "9", "b" continuation bytes 80-8F, 90-9F, A0-BF.
//     Concatenated and split at "|", a well-formed string gives only the keys of `sequences`
//     (one per character, and "" before the first "|"); anything else is malformed UTF-8.
//   quad[XX]: base64 of the three bytes [XX, 0, 0]. Every byte is its own base64 group, so the
//     quads of a string concatenate without any bit alignment, and decoding them yields the
//     bytes with two NULs after each (removed afterwards; %00 is refused, so no NUL is real).
//
// Run: node scripts/generate-percent-tables.mjs [--check]   (--check: exit 1 if the file is stale)
// policies/lib/text_test.rego recomputes every entry from the byte value and compares.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const OUT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "policies", "lib", "percent", "data.json");

function byteClass(b) {
  if (b >= 0x20 && b <= 0x7e) return "|a";
  if (b >= 0x80 && b <= 0x8f) return "8";
  if (b >= 0x90 && b <= 0x9f) return "9";
  if (b >= 0xa0 && b <= 0xbf) return "b";
  if (b >= 0xc2 && b <= 0xdf) return "|2";
  if (b === 0xe0) return "|E";
  if (b === 0xed) return "|D";
  if (b >= 0xe1 && b <= 0xef) return "|3";
  if (b === 0xf0) return "|F";
  if (b === 0xf4) return "|G";
  if (b >= 0xf1 && b <= 0xf3) return "|4";
  return undefined;
}

/** The hex spellings of a byte: "c3", "C3", "c3" with each letter digit in either case. */
function spellings(b) {
  const hex = b.toString(16).toUpperCase().padStart(2, "0");
  const cases = (d) => [...new Set([d, d.toLowerCase()])];
  return cases(hex[0]).flatMap((hi) => cases(hex[1]).map((lo) => hi + lo));
}

/** Every well-formed UTF-8 sequence as a string of classes (without the leading "|"), and "". */
function sequences() {
  const cont = ["8", "9", "b"];
  const tails = (n) => (n === 0 ? [""] : cont.flatMap((c) => tails(n - 1).map((t) => c + t)));
  return [
    "a",
    ...tails(1).map((t) => `2${t}`),
    ...tails(2).map((t) => `3${t}`),
    ...tails(1).map((t) => `Eb${t}`),
    ...["8", "9"].flatMap((c) => tails(1).map((t) => `D${c}${t}`)),
    ...tails(3).map((t) => `4${t}`),
    ...["9", "b"].flatMap((c) => tails(2).map((t) => `F${c}${t}`)),
    ...tails(2).map((t) => `G8${t}`),
  ].sort();
}

export function tables() {
  const klass = {};
  const quad = {};
  for (let b = 0; b < 256; b++) {
    const c = byteClass(b);
    if (c === undefined) continue;
    const q = Buffer.from([b, 0, 0]).toString("base64");
    for (const k of spellings(b)) {
      klass[k] = c;
      quad[k] = q;
    }
  }
  const sorted = (o) =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  const seqs = Object.fromEntries(["", ...sequences()].map((q) => [q, true]));
  return { class: sorted(klass), quad: sorted(quad), sequences: seqs };
}

const text = `${JSON.stringify(tables(), null, 1)}\n`;
if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(OUT, "utf8");
  } catch {
    // missing counts as stale
  }
  if (current !== text) {
    console.error(`${OUT} is stale: run node scripts/generate-percent-tables.mjs`);
    process.exit(1);
  }
  console.log(`${OUT} is up to date`);
} else {
  writeFileSync(OUT, text);
  console.log(`wrote ${OUT}`);
}
