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
