# METADATA
# title: Text helpers
# description: |
#   Percent-decoding and FHIR value splitting in plain Rego, so the compiled policy needs no
#   host-provided builtin (urlquery.decode is not native to OPA's WASM target).
package smart.lib.text

# Printable ASCII in code-point order, starting at 0x20.
printable_ascii := " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

code_of_char := {c: (i + 32) | some i, c in split(printable_ascii, "")}

char_of_code := {i + 32: c | some i, c in split(printable_ascii, "")}

hex_digit := {
	"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9,
	"a": 10, "b": 11, "c": 12, "d": 13, "e": 14, "f": 15,
	"A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15,
}

base64_alphabet := split("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "")

# METADATA
# title: percent_decode
# description: |
#   RFC 3986 percent-decoding of s. Undefined when s is not a well-formed percent-encoded
#   printable-ASCII string or decodes to invalid UTF-8, so callers fail closed.
percent_decode(s) := s if {
	not contains(s, "%")
	every c in split(s, "") {
		code_of_char[c]
	}
}

percent_decode(s) := decoded if {
	contains(s, "%")
	bytes := percent_bytes(s)
	every b in bytes {
		b < 128
	}
	decoded := concat("", [char_of_code[b] | some b in bytes])
}

percent_decode(s) := decoded if {
	contains(s, "%")
	bytes := percent_bytes(s)
	some b in bytes
	b >= 128
	valid_utf8(bytes)
	decoded := base64.decode(bytes_to_base64(bytes))
}

# The byte sequence a percent-encoded string stands for; undefined on malformed input.
percent_bytes(s) := bytes if {
	parts := split(s, "%")
	every c in split(parts[0], "") {
		code_of_char[c]
	}
	tails := [tail_bytes(p) | some i, p in parts; i > 0]
	count(tails) == count(parts) - 1
	bytes := array.concat([code_of_char[c] | some c in split(parts[0], "")], flatten(tails))
}

tail_bytes(p) := array.concat([(hex_digit[substring(p, 0, 1)] * 16) + hex_digit[substring(p, 1, 1)]], rest) if {
	count(p) >= 2
	rest := [code_of_char[c] | some c in split(substring(p, 2, -1), "")]
	count(rest) == count(p) - 2
}

flatten(lists) := [x | some l in lists; some x in l]

bytes_to_base64(bytes) := concat("", [base64_quad(padded, count(bytes), i) | some i in numbers.range(0, ceil(count(bytes) / 3) - 1)]) if {
	count(bytes) > 0
	padded := array.concat(bytes, [0, 0])
}

base64_quad(padded, length, i) := quad if {
	n := length - (i * 3)
	b0 := padded[i * 3]
	b1 := padded[(i * 3) + 1]
	b2 := padded[(i * 3) + 2]
	c0 := base64_alphabet[bits.rsh(b0, 2)]
	c1 := base64_alphabet[bits.or(bits.lsh(bits.and(b0, 3), 4), bits.rsh(b1, 4))]
	c2 := base64_char_or_pad(n > 1, bits.or(bits.lsh(bits.and(b1, 15), 2), bits.rsh(b2, 6)))
	c3 := base64_char_or_pad(n > 2, bits.and(b2, 63))
	quad := concat("", [c0, c1, c2, c3])
}

base64_char_or_pad(true, v) := base64_alphabet[v]

base64_char_or_pad(false, _) := "="

# UTF-8 well-formedness: every lead byte is followed by exactly its continuation bytes.
valid_utf8(bytes) if {
	leads := [i | some i, b in bytes; bits.and(b, 192) != 128]
	leads[0] == 0
	sum([utf8_length(bytes[i]) | some i in leads]) == count(bytes)
	every i in leads {
		every j in numbers.range(1, 3) {
			continuation_ok(bytes, i, j)
		}
	}
}

continuation_ok(bytes, i, j) if j >= utf8_length(bytes[i])

continuation_ok(bytes, i, j) if bits.and(bytes[i + j], 192) == 128

utf8_length(b) := 1 if b < 128

utf8_length(b) := 2 if {
	b >= 194
	b <= 223
}

utf8_length(b) := 3 if {
	b >= 224
	b <= 239
}

utf8_length(b) := 4 if {
	b >= 240
	b <= 244
}

# METADATA
# title: fhir_values
# description: |
#   The OR-list of a FHIR search value: split at commas, except escaped ones (\,).
fhir_values(v) := [replace(x, "\u0001", ",") | some x in split(replace(v, "\\,", "\u0001"), ",")]
