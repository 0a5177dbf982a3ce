# The filter step (response filtering), and that it decides every entry (L5).
package smart.api_test

import data.smart.api

# --- Response filtering --------------------------------------------------------------------

searchset(resources) := {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} | some r in resources]}

test_bundle_responses_keep_only_what_the_token_may_see if {
	resp := searchset([
		obs("o1", "123"),
		obs("o2", "999"),
		{"resourceType": "OperationOutcome"},
		{"resourceType": "Practitioner", "id": "7"},
		{"resourceType": "Medication", "id": "m1"},
	])
	d := decide("patient/Observation.rs patient/Medication.r", p123, get("Observation?patient=123&_include=Observation:performer"), {"response": resp})
	d.decision == "filter"
	d.keep == ["Observation/o1", "entry[2]", "Medication/m1"]
	[[x.ref, x.reason, x.index] | some x in d.drop] == [["Observation/o2", "not-in-compartment", 1], ["Practitioner/7", "scope-missing", 3]]
}

test_fully_visible_and_empty_bundles_keep_the_request_decision if {
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([obs("o1", "123")])})
	d.decision == "allow"
	d.keep == ["Observation/o1"]
	e := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([])})
	e.keep == []
}

test_single_resource_responses_are_released_or_hidden if {
	decide("patient/Observation.r", p123, get("Observation/o1"), {"response": obs("o1", "123")}).keep == ["Observation/o1"]
	d := decide("patient/Observation.r", p123, get("Observation/o2"), {"response": obs("o2", "999")})
	d.decision == "deny"
	d.status == 404
	d.drop[0].ref == "Observation/o2"
}

test_constrained_grants_filter_responses if {
	d := decide(lab_scope, p123, get("Observation?patient=123"), {"response": searchset([lab_obs("o1", "123"), obs("o4", "123")])})
	d.keep == ["Observation/o1"]
	d.drop[0].reason == "constraint-mismatch"
}

test_nested_bundles_are_released_only_when_every_resource_may_be if {
	inner_ok := {"resourceType": "Bundle", "id": "b1", "entry": [{"resource": obs("o1", "123")}, {"response": {"status": "200"}}]}
	inner_bad := {"resourceType": "Bundle", "id": "b2", "entry": [{"resource": obs("o2", "999")}]}
	resp := {"resourceType": "Bundle", "type": "batch-response", "entry": [{"resource": inner_ok}, {"resource": inner_bad}, {"resource": {"resourceType": "Bundle", "id": "b3"}}]}
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": resp})
	d.keep == ["Bundle/b1", "Bundle/b3"]
	d.drop[0].reason == "nested-bundle-hidden"
}

test_patient_scope_without_context_releases_nothing if {
	d := decide("patient/Observation.rs user/Condition.rs", {"fhirUser": "Practitioner/1"}, get("Condition?code=x"), {"response": searchset([obs("o1", "123"), {"resourceType": "Condition", "id": "c1"}, {"id": "x"}])})
	d.keep == ["Condition/c1"]
	[x.reason | some x in d.drop] == ["patient-context-missing", "scope-missing"]
}

test_scopes_entry_point_parses_input_scope if {
	r := api.scopes with input as {"scope": "patient/Observation.rs launch/patient"}
	r.valid
	count(r.scopes) == 2
}

# --- The filter step decides every entry (L5) ---------------------------------------------------

history_bundle(entries) := {"resourceType": "Bundle", "type": "history", "entry": entries}

drops(d) := {[x.index, x.reason] | some x in d.drop}

test_every_response_entry_is_decided_and_unchecked_entries_are_dropped if {
	resp := history_bundle([
		{"fullUrl": "https://fhir.example/Observation/o999", "request": {"method": "DELETE", "url": "Observation/o999"}, "response": {"status": "204"}},
		{"resource": "junk"},
		42,
		{"response": {"status": "200 OK"}},
		{"fullUrl": "https://fhir.example/Observation/o1", "resource": obs("o1", "123")},
		{"resource": obs("o1", "123"), "response": {"outcome": {"resourceType": "Basic", "id": "b1"}}},
	])
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": resp})
	d.decision == "filter"
	drops(d) == {[0, "entry-unchecked"], [1, "unreadable-resource"], [2, "entry-malformed"], [5, "entry-reference-mismatch"]}
	d.keep == ["entry[3]", "Observation/o1"]
}

test_entries_naming_another_resource_than_they_carry_are_dropped if {
	own := obs("o1", "123")
	resp := searchset([own])
	every entry in [
		{"fullUrl": "https://fhir.example/Observation/o999", "resource": own},
		{"fullUrl": "Observation/o999", "resource": own},
		{"fullUrl": 7, "resource": own},
		{"response": {"location": "Observation/o999/_history/2"}, "resource": own},
		{"request": {"method": "PUT", "url": "Observation/o999"}, "resource": own},
		{"request": {"method": "PUT", "url": "Observation?patient=999"}, "resource": own},
		{"request": {"method": "POST", "url": "Patient"}, "resource": own},
	] {
		d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": object.union(resp, {"entry": [entry]})})
		drops(d) == {[0, "entry-reference-mismatch"]}
	}
	every entry in [
		{"fullUrl": "https://fhir.example/fhir/Observation/o1", "resource": own},
		{"fullUrl": "urn:uuid:0d1a7a46-9b3f-4f5e-8f4e-2d7c9b0f1a11", "resource": own},
		{"response": {"location": "Observation/o1/_history/2"}, "resource": own},
		{"request": {"method": "PUT", "url": "Observation/o1"}, "resource": own},
		{"request": {"method": "POST", "url": "Observation"}, "resource": own},
	] {
		d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": object.union(resp, {"entry": [entry]})})
		d.keep == ["Observation/o1"]
	}
}

test_a_bundle_whose_entry_is_not_a_list_is_refused if {
	resp := {"resourceType": "Bundle", "type": "searchset", "entry": {"resource": obs("o9", "999")}}
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": resp})
	d.decision == "deny"
	d.status == 500
	d.reasons[0].code == "response-malformed"
	b := decide("patient/Observation.rs", p123, bundle("batch", [{"request": {"method": "GET", "url": "Observation?patient=123"}}]), {"response": resp})
	b.reasons[0].code == "response-malformed"
}

# A history deletion names a resource without carrying it: kept only for the instance the request
# was decided on, with its stored resource.
test_history_deletions_are_kept_only_for_the_checked_instance if {
	resp := history_bundle([
		{"fullUrl": "https://fhir.example/Observation/o1", "request": {"method": "DELETE", "url": "Observation/o1"}},
		{"fullUrl": "https://fhir.example/Observation/o2", "request": {"method": "DELETE", "url": "Observation/o2"}},
	])
	d := decide("patient/Observation.r", p123, get("Observation/o1/_history"), {"resource": obs("o1", "123"), "response": resp})
	d.keep == ["entry[0]"]
	drops(d) == {[1, "entry-unchecked"]}
	n := decide("patient/Observation.r", p123, get("Observation/o1/_history"), {"response": resp})
	n.keep == []
}

# A batch-response entry without a resource may name what its request entry targeted (a created
# resource's location), if that entry was not denied; nothing else.
test_batch_response_locations_are_checked_against_their_request_entries if {
	req := bundle("batch", [
		{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")},
		{"request": {"method": "GET", "url": "Patient/999"}},
		{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")},
		{"request": {"method": "DELETE", "url": "Observation/o1"}},
	])
	resp := {"resourceType": "Bundle", "type": "batch-response", "entry": [
		{"response": {"status": "201 Created", "location": "Observation/n1/_history/1"}},
		{"response": {"status": "404 Not Found", "location": "Patient/999"}},
		{"response": {"status": "201 Created", "location": "Patient/999/_history/1"}},
		{"response": {"status": "204 No Content"}},
	]}
	d := decide("patient/*.cruds", p123, req, {"response": resp})
	d.keep == ["entry[0]", "entry[3]"]
	drops(d) == {[1, "entry-unchecked"], [2, "entry-unchecked"]}
}

inner(entries) := {"resourceType": "Bundle", "id": "b1", "type": "searchset", "entry": entries}

test_nested_bundles_are_released_only_when_every_entry_is_checked if {
	ok := inner([{"fullUrl": "https://fhir.example/Observation/o1", "resource": obs("o1", "123")}, {"search": {"mode": "outcome"}}])
	every b in [
		inner([{"fullUrl": "https://fhir.example/Observation/o999", "request": {"method": "DELETE", "url": "Observation/o999"}}]),
		inner([{"fullUrl": "https://fhir.example/Observation/o999", "resource": obs("o1", "123")}]),
		inner(["junk"]),
		object.union(inner([]), {"entry": {"resource": obs("o9", "999")}}),
	] {
		d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([b])})
		drops(d) == {[0, "nested-bundle-hidden"]}
	}
	decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([ok])}).keep == ["Bundle/b1"]
}
