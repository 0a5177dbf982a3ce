package smart.api_test

post_search(url) := {"method": "POST", "url": url}

test_post_search_without_its_body_must_have_its_response_filtered if {
	d := decide("user/Observation.rs", {"fhirUser": "Practitioner/9"}, post_search("Observation/_search?code=1"), {})
	d.decision == "allow"
	d.reasons[0].code == "search-body-not-supplied"
	[o.type | some o in d.obligations] == ["filter-response"]
	p := decide("patient/Observation.rs", p123, post_search("Observation/_search"), {})
	p.decision == "filter"
	p.narrow[0].patient == "Patient/123"
	[o.type | some o in p.obligations] == ["filter-response"]
}

test_post_search_body_given_as_null_is_not_supplied if {
	d := decide("user/Observation.rs", {"fhirUser": "Practitioner/9"}, object.union(post_search("Observation/_search"), {"body": null}), {})
	d.reasons[0].code == "search-body-not-supplied"
}

test_post_search_with_its_body_is_decided_on_it if {
	empty := decide("user/Observation.rs", {"fhirUser": "Practitioner/9"}, object.union(post_search("Observation/_search?code=1"), {"body": ""}), {})
	empty.decision == "allow"
	[o.type | some o in empty.obligations] == ["filter-response"]
	count(empty.reasons) == 0
	form := decide("patient/Observation.rs", p123, object.union(post_search("Observation/_search"), {"body": "patient=999"}), {})
	form.decision == "deny"
	form.reasons[0].code == "search-other-patient"
	included := decide("patient/Observation.rs", p123, object.union(post_search("Observation/_search"), {"body": "patient=123&_include=Observation:has-member"}), {})
	[o.type | some o in included.obligations] == ["filter-response"]
	not "search-body-not-supplied" in {r.code | some r in included.reasons}
}

test_post_search_without_its_body_keeps_one_filter_response_obligation if {
	d := decide("patient/Observation.rs", p123, post_search("Observation/_search?patient=123&_include=Observation:performer"), {})
	[o.type | some o in d.obligations] == ["filter-response"]
	d.reasons[0].code == "search-body-not-supplied"
}

test_a_refused_post_search_without_its_body_stays_refused if {
	d := decide("patient/Observation.rs", p123, post_search("Observation/_search?patient=999"), {})
	d.decision == "deny"
	not d.obligations
	not "search-body-not-supplied" in {r.code | some r in d.reasons}
}

test_batch_entries_without_a_body_are_complete if {
	batch := {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "POST", "url": "Observation/_search?code=1"}}]}
	d := decide("user/Observation.rs", {"fhirUser": "Practitioner/9"}, {"method": "POST", "url": "", "body": batch}, {})
	d.entries[0].decision == "allow"
	not "search-body-not-supplied" in {r.code | some r in d.entries[0].reasons}
}

test_other_interactions_without_a_body_are_not_concerned if {
	d := decide("user/Observation.rs", {"fhirUser": "Practitioner/9"}, get("Observation?code=1"), {})
	[o.type | some o in d.obligations] == ["filter-response"]
	count(d.reasons) == 0
}
