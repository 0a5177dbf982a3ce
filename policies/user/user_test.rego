package smart.user_test

import data.smart.user

rels := {
	"users": {
		"Practitioner/dr-lee": {"patients": ["123"], "groups": ["CareTeam/ward-3", "List/undefined"]},
		"RelatedPerson/mother": {"patients": ["456", "not an id"]},
	},
	"groups": {
		"CareTeam/ward-3": {"patients": ["789", "1011"], "list": "ward-3-census"},
		"Organization/clinic": {"patients": ["555"]},
	},
}

dr := {"claims": {"fhirUser": "Practitioner/dr-lee"}}

test_fhir_user_relative_reference_names_the_user if {
	user.fhir_user == {"type": "Practitioner", "id": "dr-lee"} with input as dr
	user.kind == "practitioner" with input as dr
}

test_fhir_user_absolute_on_a_local_base_names_the_user if {
	user.fhir_user == {"type": "Patient", "id": "123"} with input as {"claims": {"fhirUser": "https://ehr.example.org/fhir/Patient/123"}}
		with data.config as {"fhir": {"base_urls": ["https://ehr.example.org/fhir/"]}}
}

test_fhir_user_missing_is_reported if {
	user.fhir_user_problem.code == "fhir-user-missing" with input as {"claims": {}}
}

test_fhir_user_foreign_wrong_type_or_garbage_is_invalid if {
	every claim in ["https://other.example/fhir/Practitioner/1", "Observation/1", "dr lee", 42, {"reference": "Patient/1"}, "Patient/"] {
		user.fhir_user_problem.code == "fhir-user-invalid" with input as {"claims": {"fhirUser": claim}}
	}
}

test_a_patient_user_acts_for_itself_only if {
	user.patients == {"123"} with input as {"claims": {"fhirUser": "Patient/123"}} with data.relationships as rels
	user.kind == "patient" with input as {"claims": {"fhirUser": "Patient/123"}}
}

test_practitioner_patients_are_direct_and_through_defined_groups if {
	user.patients == {"123", "789", "1011"} with input as dr with data.relationships as rels
}

test_malformed_patient_ids_are_ignored if {
	user.patients == {"456"} with input as {"claims": {"fhirUser": "RelatedPerson/mother"}} with data.relationships as rels
}

test_no_relationships_document_relates_nobody if {
	user.patients == set() with input as dr
	user.patients == set() with input as dr with data.relationships as "garbage"
}

test_groups_with_a_list_are_searched_by_list if {
	user.lists == {"ward-3-census"} with input as dr with data.relationships as rels
	user.unlisted == {"123"} with input as dr with data.relationships as rels
	user.narrowing("Patient") == [
		{"_list": "ward-3-census"},
		{"_id": "123"},
		{"general-practitioner": "Practitioner/dr-lee"},
	] with input as dr
		with data.relationships as rels
}

test_two_groups_sharing_a_list_are_one_list if {
	doc := {
		"users": {"Practitioner/a": {"groups": ["CareTeam/x", "CareTeam/y"]}},
		"groups": {"CareTeam/x": {"patients": ["1"], "list": "L"}, "CareTeam/y": {"patients": ["2"], "list": "L"}},
	}
	user.lists == {"L"} with input as {"claims": {"fhirUser": "Practitioner/a"}} with data.relationships as doc
	user.unlisted == set() with input as {"claims": {"fhirUser": "Practitioner/a"}} with data.relationships as doc
}

test_member_type_search_is_narrowed_to_an_or_list_and_the_own_compartment if {
	user.narrowing("Goal") == [{"patient": "Patient/1011,Patient/123,Patient/789"}] with input as dr with data.relationships as rels
	{"performer": "Practitioner/dr-lee"} in user.narrowing("Observation") with input as dr with data.relationships as rels
}

test_too_many_patients_leaves_narrowing_undefined if {
	user.too_many_patients("Goal") with input as dr with data.relationships as rels with data.config as {"user": {"max_search_patients": 2}}
	not user.narrowing("Goal") with input as dr with data.relationships as rels with data.config as {"user": {"max_search_patients": 2}}
	not user.too_many_patients("Patient") with input as dr with data.relationships as rels with data.config as {"user": {"max_search_patients": 2}}
}

test_a_bad_bound_is_zero if {
	user.max_search_patients == 0 with data.config as {"user": {"max_search_patients": "many"}}
	user.max_search_patients == 100
}

test_own_compartment_membership if {
	user.in_own_compartment({"resourceType": "Observation", "id": "o", "performer": [{"reference": "Practitioner/dr-lee"}]}) with input as dr
	user.in_own_compartment({"resourceType": "Practitioner", "id": "dr-lee"}) with input as dr
	not user.in_own_compartment({"resourceType": "Observation", "id": "o", "performer": [{"reference": "Practitioner/other"}]}) with input as dr
	not user.in_own_compartment({"resourceType": "Observation", "id": "o", "performer": [{"reference": "Patient/dr-lee"}]}) with input as dr
}

test_a_patient_user_has_no_practitioner_compartment if {
	not user.in_own_compartment({"resourceType": "Observation", "id": "o", "performer": [{"reference": "Patient/123"}]}) with input as {"claims": {"fhirUser": "Patient/123"}}
}

test_related_owner_is_a_related_patient_of_the_resource if {
	user.related_owner({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/789"}}) == "789" with input as dr with data.relationships as rels
	not user.related_owner({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/999"}}) with input as dr with data.relationships as rels
}

test_search_scope_of_a_practitioner if {
	p := {"name": "patient", "base": "patient", "modifier": "", "chain": ""}
	user.search_scope("Goal", [object.union(p, {"values": ["Patient/789"]})]) == "confined" with input as dr with data.relationships as rels
	user.search_scope("Goal", [object.union(p, {"values": ["789", "999"]})]) == "unrelated" with input as dr with data.relationships as rels
	user.search_scope("Goal", [object.union(p, {"values": ["https://other.example/fhir/Patient/789"]})]) == "unrelated" with input as dr with data.relationships as rels
	user.search_scope("Goal", []) == "open" with input as dr with data.relationships as rels
	performer := {"name": "performer", "base": "performer", "modifier": "", "chain": "", "values": ["Practitioner/dr-lee"]}
	user.search_scope("Observation", [performer]) == "confined" with input as dr with data.relationships as rels
}

test_server_mode_only_when_configured if {
	user.unconfined with data.config as {"user": {"access": "server"}}
	not user.unconfined with data.config as {"user": {"access": "Server"}}
	not user.unconfined
}

test_related_is_a_lookup_of_direct_and_group_patients if {
	user.related("123") with input as dr with data.relationships as rels
	user.related("1011") with input as dr with data.relationships as rels
	not user.related("555") with input as dr with data.relationships as rels
	not user.related("not an id") with input as {"claims": {"fhirUser": "RelatedPerson/mother"}} with data.relationships as rels
	user.related_ids == {"123", "789", "1011"} with input as dr with data.relationships as rels
}

test_unlisted_subtracts_listed_groups_from_direct_patients if {
	doc := {
		"users": {"Practitioner/a": {"patients": ["1", "3"], "groups": ["CareTeam/x", "Organization/o"]}},
		"groups": {"CareTeam/x": {"patients": ["1", "2"], "list": "L"}, "Organization/o": {"patients": ["4"]}},
	}
	user.unlisted == {"3", "4"} with input as {"claims": {"fhirUser": "Practitioner/a"}} with data.relationships as doc
}
