package smart.lib.text_test

import data.smart.lib.text

test_plain_strings_pass_through if {
	text.percent_decode("laboratory") == "laboratory"
	text.percent_decode("") == ""
}

test_ascii_escapes_decode if {
	text.percent_decode("http%3A%2F%2Floinc.org%7C1234-5") == "http://loinc.org|1234-5"
	text.percent_decode("a%20b") == "a b"
	text.percent_decode("%24everything") == "$everything"
}

test_multibyte_utf8_decodes if {
	text.percent_decode("M%C3%BCller") == "Müller"
	text.percent_decode("%E2%82%AC") == "€"
	text.percent_decode("%F0%9F%98%80x") == "😀x"
}

test_malformed_escapes_are_undefined if {
	not text.percent_decode("%")
	not text.percent_decode("%4")
	not text.percent_decode("%zz")
	not text.percent_decode("a%G1")
}

test_invalid_utf8_is_undefined if {
	not text.percent_decode("%C3")
	not text.percent_decode("%80")
	not text.percent_decode("%C3%28")
	not text.percent_decode("%FF")
}

test_raw_non_ascii_and_controls_are_undefined if {
	not text.percent_decode("Müller")
	not text.percent_decode("a\tb")
}

test_fhir_values_split_on_unescaped_commas if {
	text.fhir_values("a,b") == ["a", "b"]
	text.fhir_values("a\\,b,c") == ["a,b", "c"]
	text.fhir_values("x") == ["x"]
}

test_control_characters_are_undefined if {
	not text.percent_decode("Observation%00")
	not text.percent_decode("a%0Ab")
	not text.percent_decode("a%7F")
	not text.percent_decode("%E2%82%AC%01")
}

test_lowercase_and_mixed_case_escapes_decode if {
	text.percent_decode("%c3%a9%E4%b8%Ad") == "é中"
	text.percent_decode("%7c%7C") == "||"
}

test_utf8_boundaries_decode if {
	text.percent_decode("%C2%80") == "\u0080"
	text.percent_decode("%DF%BF") == "\u07ff"
	text.percent_decode("%E0%A0%80") == "\u0800"
	text.percent_decode("%ED%9F%BF") == "\ud7ff"
	text.percent_decode("%EE%80%80") == "\ue000"
	text.percent_decode("%EF%BF%BF") == "\uffff"
	text.percent_decode("%F0%90%80%80") == "𐀀"
	text.percent_decode("%F4%8F%BF%BF") == "\udbff\udfff"
}

# RFC 3629 §3: "Implementations of the decoding algorithm above MUST protect against decoding
# invalid sequences", overlong forms and surrogates included.
test_overlong_forms_are_undefined if {
	not text.percent_decode("%C0%AF")
	not text.percent_decode("%C1%BF")
	not text.percent_decode("%E0%80%AF")
	not text.percent_decode("%E0%9F%BF")
	not text.percent_decode("%F0%80%80%AF")
	not text.percent_decode("%F0%8F%BF%BF")
}

test_surrogates_and_code_points_above_u10ffff_are_undefined if {
	not text.percent_decode("%ED%A0%80")
	not text.percent_decode("%ED%BF%BF")
	not text.percent_decode("%F4%90%80%80")
	not text.percent_decode("%F5%80%80%80")
	not text.percent_decode("%FE")
}

test_incomplete_and_unclaimed_sequences_are_undefined if {
	not text.percent_decode("%E2%82")
	not text.percent_decode("%F0%9F%98")
	not text.percent_decode("%C3%A9%A9")
	not text.percent_decode("%A9abc")
	not text.percent_decode("x%C3")
	not text.percent_decode("%C3x%A9")
	not text.percent_decode("%E2%82x%AC")
	not text.percent_decode("%C3%C3%A9")
}

test_literal_text_between_escapes_decodes if {
	text.percent_decode("M%C3%BCller") == "Müller"
	text.percent_decode("a%E2%82%ACb%C3%A9c%20d") == "a€béc d"
	text.percent_decode("%22q%22%5C") == "\"q\"\\"
	text.percent_decode("100%25") == "100%"
}

# data.lib.percent is generated (scripts/generate-policy-tables.mjs); this recomputes every entry
# from the byte value with OPA's evaluator, independently of the generator.
base64_alphabet := split("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "")

hex_digits := split("0123456789ABCDEF", "")

expected_class(b) := "|a" if {
	b >= 32
	b <= 126
} else := "8" if {
	b >= 128
	b <= 143
} else := "9" if {
	b >= 144
	b <= 159
} else := "b" if {
	b >= 160
	b <= 191
} else := "|2" if {
	b >= 194
	b <= 223
} else := "|E" if {
	b == 224
} else := "|D" if {
	b == 237
} else := "|3" if {
	b >= 225
	b <= 239
} else := "|F" if {
	b == 240
} else := "|G" if {
	b == 244
} else := "|4" if {
	b >= 241
	b <= 243
}

expected_quad(b) := concat("", [base64_alphabet[bits.rsh(b, 2)], base64_alphabet[bits.lsh(bits.and(b, 3), 4)], "AA"])

spellings(b) := {concat("", [hi, lo]) |
	some hi in {hex_digits[bits.rsh(b, 4)], lower(hex_digits[bits.rsh(b, 4)])}
	some lo in {hex_digits[bits.and(b, 15)], lower(hex_digits[bits.and(b, 15)])}
}

test_percent_tables_match_their_definition if {
	expected := {k: [expected_class(b), expected_quad(b)] |
		some b in numbers.range(0, 255)
		expected_class(b)
		some k in spellings(b)
	}
	got := {k: [c, data.lib.percent.quad[k]] | some k, c in data.lib.percent.class}
	count(data.lib.percent.quad) == count(data.lib.percent.class)
	got == expected
}

test_utf8_sequence_table_is_the_rfc_3629_grammar if {
	cont := ["8", "9", "b"]
	expected := {s |
		some s in array.concat(
			["", "a"],
			array.concat(
				[concat("", ["2", x]) | some x in cont],
				[concat("", [l, x, y]) | some l in ["3", "E", "D"]; some x in cont; some y in cont; second_ok(l, x)],
			),
		)
	} | {concat("", [l, x, y, z]) | some l in ["4", "F", "G"]; some x in cont; some y in cont; some z in cont; second_ok(l, x)}
	{s | some s, _ in data.lib.percent.sequences} == expected
}

# The second byte's range after the leads with restrictions (Unicode Table 3-7).
second_ok("E", x) if x == "b"

second_ok("D", x) if x in {"8", "9"}

second_ok("F", x) if x in {"9", "b"}

second_ok("G", x) if x == "8"

second_ok(l, _) if l in {"3", "4"}

long_text := concat("", [x | some _ in numbers.range(1, 150); some x in ["a", "~", " "]])

test_long_strings_are_checked_like_short_ones if {
	text.percent_decode(long_text) == long_text
	text.percent_decode(concat("", [long_text, "%C3%A9", long_text])) == concat("", [long_text, "é", long_text])
	not text.percent_decode(concat("", [long_text, "\t"]))
	not text.percent_decode(concat("", [long_text, "\u007f"]))
	not text.percent_decode(concat("", [long_text, "é"]))
	not text.percent_decode(concat("", ["é", long_text]))
	not text.percent_decode(concat("", [long_text, "%C3%A9\n", long_text]))
}
