# Chains and reverse chains stay inside what the token may search (L1).
package smart.api_test

# --- Chains and reverse chains stay inside what the token may search (L1) ----------------------

search_codes(scope, url) := [d.decision, object.get(d, "narrow", null), [r.code | some r in d.reasons]] if {
	d := decide(scope, p123, get(url), {})
}

test_chains_through_types_a_patient_token_cannot_search_are_refused if {
	every url in [
		"Observation?patient=123&performer:Practitioner.name=Smith",
		"Observation?patient=123&performer.name=Smith",
		"Observation?subject:Patient.general-practitioner.name=x",
		"Observation?patient=123&encounter.class=x",
		"Observation?patient=123&has-member:Observation.patient=999",
		"Observation?patient=123&has-member:Observation.code=x",
		"Observation?patient=123&has-member=Observation/o1&has-member:Observation.patient=999",
	] {
		search_codes("patient/*.rs", url) == ["deny", null, ["chain-not-searchable"]]
	}
}

test_reverse_chains_must_stay_in_the_patients_compartment if {
	every url in [
		"Observation?patient=123&_has:Observation:has-member:patient=999",
		"Observation?patient=123&_has:Observation:has-member:code=x",
		"Encounter?patient=123&_has:Observation:encounter:code=x",
		"Patient?_has:Observation:patient:_has:Provenance:target:agent=Practitioner/1",
	] {
		search_codes("patient/*.rs", url) == ["deny", null, ["chain-not-searchable"]]
	}
	search_codes("patient/*.rs", "Observation?patient=123&_has:Observation:has-member:patient=123") == ["allow", null, []]
	search_codes("patient/*.rs", "Patient?_has:Observation:patient:code=1234") == ["filter", [{"_id": "123"}], []]
	search_codes("patient/*.rs", "Patient?_has:Observation:performer:code=1234") == ["filter", [{"_id": "123"}], []]
}

test_chains_that_stay_in_the_compartment_or_reach_shared_data_are_allowed if {
	search_codes("patient/*.rs", "Observation?patient=123&has-member:Observation.patient=123") == ["allow", null, []]
	search_codes("patient/*.rs", "MedicationRequest?patient=123&medication.code=x") == ["allow", null, []]
	search_codes("patient/*.rs", "Observation?patient=123&subject:Patient.name=x") == ["allow", null, []]
	search_codes("patient/*.rs", "Observation?subject:Patient.organization.name=x") == ["filter", [{"patient": "Patient/123"}], []]
}

# A chain on one linking parameter is never combined with a narrowing alternative on another:
# subject:Patient.name=x narrowed to {performer: Patient/123} would reach another patient's name.
test_a_chained_linking_parameter_is_confined_itself if {
	search_codes("patient/*.rs", "Observation?subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs", "Observation?performer=Patient/123&subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs", "Observation?patient=123&performer:Patient.name=x") == ["filter", [{"performer": "Patient/123"}], []]
	search_codes("patient/*.rs", "Patient/123/Observation?subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs", "Observation?subject:Patient.name=x&performer:Patient.name=y") == ["filter", [{"patient": "Patient/123", "performer": "Patient/123"}], []]
	search_codes("patient/*.rs", "Basic?subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
}

test_chains_reach_what_other_grants_of_the_token_may_search if {
	search_codes("patient/*.rs user/Practitioner.rs", "Observation?patient=123&performer:Practitioner.name=Smith") == ["allow", null, []]
	search_codes("user/*.rs", "Observation?patient=999&has-member:Observation.code=x") == ["allow", null, []]
	search_codes("user/Observation.rs user/Patient.rs", "Observation?subject:Patient.name=x") == ["allow", null, []]

	# A user/ search is not confined, so a chain into a type searchable only in the compartment is not.
	search_codes("user/Observation.rs patient/Patient.rs", "Observation?subject:Patient.name=x") == ["deny", null, ["chain-not-searchable"]]
}

# Adding a user/ grant never removes what the patient/ grant's confined path allowed: the chain is
# refused on the user/ path only, and the patient/ path still answers with its narrowing.
test_chains_keep_the_patient_path_when_a_user_grant_is_added if {
	search_codes("patient/*.rs user/Observation.rs", "Observation?subject:Patient.organization.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs user/Condition.rs", "Patient/123/Condition?patient.birthdate=1990") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs user/Patient.rs", "Patient?_has:Observation:patient:code=1234") == ["filter", [{"_id": "123"}], []]
	search_codes("user/Observation.rs user/Patient.rs patient/*.rs", "Observation?subject:Patient.name=x") == ["allow", null, []]
}

test_chains_through_types_searchable_only_within_constraints_are_refused if {
	scopes := concat("", ["user/Observation.rs?category=", lab])
	search_codes(scopes, "Observation?category=laboratory&has-member:Observation.code=x") == ["deny", null, ["chain-not-searchable"]]
	search_codes(scopes, "Observation?_has:Observation:has-member:code=x") == ["deny", null, ["chain-not-searchable"]]
}
