# Data the policy has not seen carries filter-response (H3); history (M1).
package smart.api_test

# --- Data the policy has not seen (H3) and history (M1) ------------------------------------------

filter_response_types(d) := [o.type | some o in object.get(d, "obligations", []); o.type == "filter-response"]

user9 := {"fhirUser": "Practitioner/9"}

# H3: every decision that releases data the policy has not seen tells the host to filter the
# response, in every scope context: labels are checked on each returned resource.
test_decisions_that_release_unseen_data_must_filter_the_response if {
	every case in [
		["patient/Observation.rs", p123, get("Observation?patient=123")],
		["patient/Observation.rs", p123, get("Observation?code=x")],
		["patient/Observation.rs", p123, get("Observation?patient=123&_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV")],
		["patient/Observation.rs", p123, get("Patient/123/Observation")],
		["patient/*.rs", p123, get("Patient/123/*")],
		["patient/*.rs", p123, get("Patient/123/$everything")],
		["patient/Medication.rs", p123, get("Medication/_history")],
		["patient/Observation.r", p123, get("Observation/o1")],
		["patient/Patient.r", p123, get("Patient/123")],
		["patient/Observation.r", p123, get("Observation/o1/_history")],
		["patient/Observation.r", p123, get("Observation/o1/_history/2")],
		["patient/Observation.rs", p123, {"method": "POST", "url": "Observation/_search", "body": "patient=123"}],
		["user/Observation.rs", user9, get("Observation/h1")],
		["user/Observation.rs", user9, get("Observation/h1/_history/1")],
		["user/Observation.rs", user9, get("Observation?code=x")],
		["user/Observation.rs", user9, get("Observation/_history")],
		["user/*.rs", user9, get("?_type=Observation")],
		["user/*.rs", user9, get("_history")],
		["user/*.rs", user9, get("Patient/456/$everything")],
		["system/*.rs", {}, get("$export")],
		["system/Observation.rs", {}, get("Observation/h1")],
		["system/Observation.rs", {}, get("Observation?code=x")],
	] {
		d := decide(case[0], case[1], case[2], {})
		d.decision != "deny"
		filter_response_types(d) == ["filter-response"]
	}
}

# Reads decided on the stored resource (labels checked on it), writes and operations that return
# computed results need no response filtering.
test_decisions_on_seen_data_carry_no_filter_obligation if {
	every case in [
		["patient/Observation.r", p123, get("Observation/o1"), {"resource": obs("o1", "123")}],
		["patient/Observation.r", p123, get("Observation/o1/_history/2"), {"resource": object.union(obs("o1", "123"), {"meta": {"versionId": "2"}})}],
		["user/Observation.r", user9, get("Observation/o2"), {"resource": obs("o2", "999")}],
		["patient/Observation.c", p123, {"method": "POST", "url": "Observation", "body": obs(null, "123")}, {}],
		["user/CodeSystem.r", user9, get("CodeSystem/$lookup?system=http://loinc.org&code=1"), {}],
		["patient/Observation.rs", p123, get("metadata"), {}],
	] {
		d := decide(case[0], case[1], case[2], case[3])
		d.decision == "allow"
		filter_response_types(d) == []
	}
}

test_batch_entries_that_release_unseen_data_must_filter_the_batch_response if {
	d := decide(
		"patient/*.cruds", p123, bundle("batch", [
			{"request": {"method": "GET", "url": "Observation?patient=123"}},
			{"request": {"method": "GET", "url": "Observation/o1"}},
			{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")},
		]),
		{},
	)
	d.decision == "filter"
	filter_response_types(d) == ["filter-response"]
	[filter_response_types(e) | some e in d.entries] == [["filter-response"], ["filter-response"], []]
	w := decide("patient/*.cruds", p123, bundle("batch", [{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")}]), {})
	w.decision == "allow"
	filter_response_types(w) == []
}

# M1: history takes no search parameters, so a type's history cannot be confined to a patient.
test_type_history_is_refused_to_patient_scopes_on_compartment_types if {
	every url in ["Observation/_history", "Patient/_history", "Observation/_history?_since=2026-01-01T00:00:00Z"] {
		d := decide("patient/*.rs", p123, get(url), {})
		d.status == 403
		d.reasons[0].code == "patient-scope-type-history"
	}
	decide("patient/Medication.rs", p123, get("Medication/_history"), {}).decision == "allow"
	decide("user/Observation.rs", user9, get("Observation/_history"), {}).decision == "allow"
}

test_constrained_scopes_cannot_narrow_type_history if {
	d := decide(concat("", ["user/Observation.rs?category=", lab]), user9, get("Observation/_history"), {})
	d.status == 403
	d.reasons[0].code == "constraint-not-applicable"
}

test_history_takes_no_search_parameters if {
	every url in ["Observation/_history?patient=123", "Observation/o1/_history?code=x", "_history?patient=123", "Observation/_history?_list=l1"] {
		d := decide("user/*.rs", user9, get(url), {})
		d.status == 400
		d.reasons[0].code == "history-parameter-unsupported"
	}
	decide("user/*.rs", user9, get("Observation/_history?_count=10&_since=2026-01-01T00:00:00Z&_at=2026"), {}).decision == "allow"
	decide("user/*.rs", user9, get("_history?_type=Observation"), {}).decision == "allow"
}

# A vread or an instance history cannot be turned into a search, so without the stored resource
# it is a filter without narrowing: only the response check releases anything.
test_versions_without_the_stored_resource_are_filtered_without_narrowing if {
	every url in ["Observation/o1/_history", "Observation/o1/_history/2"] {
		every scope in ["patient/Observation.r", lab_scope] {
			d := decide(scope, p123, get(url), {})
			d.decision == "filter"
			not d.narrow
			d.reasons[0].code == "stored-resource-not-supplied"
			filter_response_types(d) == ["filter-response"]
		}
	}
	r := decide("patient/Observation.r", p123, get("Observation/o1"), {})
	{"_id": "o1", "patient": "Patient/123"} in r.narrow
}
