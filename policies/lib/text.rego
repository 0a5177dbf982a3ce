# METADATA
# title: Text helpers
# description: |
#   Percent-decoding and FHIR value splitting in plain Rego, so the compiled policy needs no
#   host-provided builtin (urlquery.decode is not native to OPA's WASM target).
package smart.lib.text

# Printable ASCII in code-point order, starting at 0x20.
printable_ascii := " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

code_of_char := {" ": 32, "!": 33, "\"": 34, "#": 35, "$": 36, "%": 37, "&": 38, "'": 39, "(": 40, ")": 41, "*": 42, "+": 43, ",": 44, "-": 45, ".": 46, "/": 47, "0": 48, "1": 49, "2": 50, "3": 51, "4": 52, "5": 53, "6": 54, "7": 55, "8": 56, "9": 57, ":": 58, ";": 59, "<": 60, "=": 61, ">": 62, "?": 63, "@": 64, "A": 65, "B": 66, "C": 67, "D": 68, "E": 69, "F": 70, "G": 71, "H": 72, "I": 73, "J": 74, "K": 75, "L": 76, "M": 77, "N": 78, "O": 79, "P": 80, "Q": 81, "R": 82, "S": 83, "T": 84, "U": 85, "V": 86, "W": 87, "X": 88, "Y": 89, "Z": 90, "[": 91, "\\": 92, "]": 93, "^": 94, "_": 95, "`": 96, "a": 97, "b": 98, "c": 99, "d": 100, "e": 101, "f": 102, "g": 103, "h": 104, "i": 105, "j": 106, "k": 107, "l": 108, "m": 109, "n": 110, "o": 111, "p": 112, "q": 113, "r": 114, "s": 115, "t": 116, "u": 117, "v": 118, "w": 119, "x": 120, "y": 121, "z": 122, "{": 123, "|": 124, "}": 125, "~": 126}

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
# Control characters (%00-%1F, %7F) are refused: they have no place in a FHIR URL or scope.
percent_bytes(s) := bytes if {
	bytes := raw_percent_bytes(s)
	every b in bytes {
		b >= 32
		b != 127
	}
}

raw_percent_bytes(s) := bytes if {
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
