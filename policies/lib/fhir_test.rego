package smart.lib.fhir_test

import data.smart.lib.fhir

test_ids_follow_the_fhir_grammar if {
	fhir.valid_id("abc-1.2")
	not fhir.valid_id("")
	not fhir.valid_id("a/b")
	not fhir.valid_id("a b")
	not fhir.valid_id("12345678901234567890123456789012345678901234567890123456789012345")
}

test_values_at_walks_arrays_and_objects if {
	r := {"participant": [{"actor": {"reference": "Patient/1"}}, {"actor": {"reference": "Practitioner/2"}}, {"x": 1}]}
	fhir.values_at(r, ["participant", "actor"]) == [{"reference": "Patient/1"}, {"reference": "Practitioner/2"}]
	fhir.values_at({"a": {"b": {"c": [1, 2]}}}, ["a", "b", "c"]) == [1, 2]
	fhir.values_at({"a": {"b": {"c": {"d": 4}}}}, ["a", "b", "c", "d"]) == [4]
	fhir.values_at({"a": {"b": {"c": {"d": {"e": 5}}}}}, ["a", "b", "c", "d", "e"]) == [5]
	fhir.values_at({"a": {"b": {"c": {"d": {"e": {"f": 6}}}}}}, ["a", "b", "c", "d", "e", "f"]) == [6]
	fhir.values_at({"a": "scalar"}, ["a", "b"]) == []
}

test_patient_references_match_exactly if {
	every ref in ["Patient/123", "Patient/123/_history/2"] {
		fhir.reference_names_patient(ref, "123")
	}
	every ref in ["Patient/1234", "Patient/123x", "Patient/", "Patient", "#p1", "urn:uuid:123", "Group/123", "Patient/123/extra", "Patient/123/_history/", "/Patient/123", "https://x/Patient/123?x=1", "ftp://x/Patient/123", 42] {
		not fhir.reference_names_patient(ref, "123")
	}
}

ehr := {"fhir": {"base_urls": ["https://ehr.example.org/fhir/", "http://EHR.example.org:8080/r4"]}}

# L10: another server's Patient/123 is another person. By default only relative references name
# this server's resources; absolute ones do when their base is configured.
test_absolute_references_name_a_patient_only_on_a_configured_base if {
	every ref in ["https://ehr.example.org/fhir/Patient/123", "http://x/Patient/123/_history/9", "https://elsewhere/fhir/Patient/123"] {
		not fhir.reference_names_patient(ref, "123")
	}
	fhir.foreign_reference("https://elsewhere/fhir/Patient/123") == {"type": "Patient", "id": "123"}
	every ref in [
		"https://ehr.example.org/fhir/Patient/123",
		"HTTPS://EHR.Example.ORG/fhir/Patient/123/_history/2",
		"http://ehr.example.org:8080/r4/Patient/123",
	] {
		fhir.reference_names_patient(ref, "123") with data.config as ehr
		not fhir.foreign_reference(ref) with data.config as ehr
	}
	every ref in [
		"https://ehr.example.org/FHIR/Patient/123",
		"https://ehr.example.org/fhir/other/Patient/123",
		"https://ehr.example.org/Patient/123",
		"http://ehr.example.org/fhir/Patient/123",
		"https://ehr.example.org:443/fhir/Patient/123",
	] {
		not fhir.reference_names_patient(ref, "123") with data.config as ehr
		fhir.foreign_reference(ref).id == "123" with data.config as ehr
	}
	fhir.reference_target("https://ehr.example.org/fhir/Practitioner/7") == {"type": "Practitioner", "id": "7"} with data.config as ehr
}

test_base_urls_setting_must_be_a_list_of_strings if {
	not fhir.reference_names_patient("https://ehr.example.org/fhir/Patient/123", "123") with data.config as {"fhir": {"base_urls": "https://ehr.example.org/fhir"}}
	fhir.reference_names_patient("https://ehr.example.org/fhir/Patient/123", "123") with data.config as {"fhir": {"base_urls": [7, "https://ehr.example.org/fhir"]}}
}

test_references_at_reads_reference_strings if {
	fhir.references_at({"subject": {"reference": "Patient/1"}, "performer": [{"display": "x"}]}, ["performer"]) == []
	fhir.references_at({"subject": {"reference": "Patient/1"}}, ["subject"]) == ["Patient/1"]
}

test_token_matching_follows_fhir_search if {
	cc := {"coding": [{"system": "http://s", "code": "a"}, {"code": "b"}]}
	fhir.token_matches(cc, "http://s|a")
	fhir.token_matches(cc, "a")
	fhir.token_matches(cc, "|b")
	not fhir.token_matches(cc, "|a")
	fhir.token_matches(cc, "http://s|")
	not fhir.token_matches(cc, "http://other|a")
	not fhir.token_matches(cc, "http://s|b")
	fhir.token_matches({"system": "urn:ids", "value": "42"}, "urn:ids|42")
	fhir.token_matches("final", "final")
	not fhir.token_matches("final", "amended")
	fhir.token_matches(true, "true")
	fhir.token_matches(false, "false")
	not fhir.token_matches({"system": "http://s"}, "x")
	fhir.token_matches({"system": "http://s"}, "http://s|")
}

test_member_type_tests_tolerate_absent_members if {
	fhir.string_member({"a": "x"}, "a")
	not fhir.string_member({}, "a")
	fhir.object_member({"a": {}}, "a")
	not fhir.object_member({"a": []}, "a")
	fhir.array_member({"a": []}, "a")
	not fhir.array_member({}, "a")
}

test_decoded_values_handle_plus_and_escapes if {
	fhir.decoded_values("a+b,c%2Cd") == ["a b", "c", "d"]
	not fhir.decoded_values("%zz")
}
