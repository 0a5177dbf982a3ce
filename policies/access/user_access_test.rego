package smart.access.user_access_test

import data.smart.access
import data.smart.api

rels := {
	"users": {
		"Practitioner/dr-lee": {"patients": ["123"], "groups": ["CareTeam/ward-3"]},
		"RelatedPerson/parent": {"patients": ["456", "789"]},
	},
	"groups": {"CareTeam/ward-3": {"patients": ["789"], "list": "ward-3-census"}},
}

obs(pid) := {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}, "subject": {"reference": concat("/", ["Patient", pid])}}

own_obs := object.union(obs("999"), {"performer": [{"reference": "Practitioner/dr-lee"}]})

decide(scope, claims, method, url, extra) := d if {
	request := object.union({"method": method, "url": url, "headers": {}}, object.get(extra, "request", {}))
	doc := object.union({"claims": object.union(claims, {"scope": scope}), "request": request}, object.remove(extra, ["request"]))
	d := api.decision with input as doc with data.relationships as rels
}

dr := {"fhirUser": "Practitioner/dr-lee"}

test_user_grant_without_fhir_user_grants_nothing if {
	d := decide("user/Observation.rs", {}, "GET", "Observation", {})
	d.decision == "deny"
	d.reasons[0].code == "fhir-user-missing"
}

test_server_mode_keeps_user_grants_unconfined if {
	d := decide("user/Observation.rs", {}, "GET", "Observation", {}) with data.config as {"user": {"access": "server"}}
	d.decision == "allow"
}

test_practitioner_writes_to_own_compartment_must_name_no_patient if {
	decide("user/Observation.u", dr, "PUT", "Observation/o1", {"resource": own_obs, "request": {"body": own_obs}}).decision == "deny"
	clean := object.remove(own_obs, ["subject"])
	decide("user/Observation.u", dr, "PUT", "Observation/o1", {"resource": clean, "request": {"body": clean}}).decision == "allow"
}

test_practitioner_patch_of_own_compartment_resource_cannot_touch_the_performer if {
	clean := object.remove(own_obs, ["subject"])
	patch := [{"op": "replace", "path": "/performer/0/reference", "value": "Practitioner/x"}]
	d := decide("user/Observation.u", dr, "PATCH", "Observation/o1", {"resource": clean, "request": {"body": patch, "headers": {"content-type": "application/json-patch+json"}}})
	d.decision == "deny"
	d.reasons[0].code == "patch-touches-compartment-link"
}

test_practitioner_conditional_delete_is_narrowed if {
	d := decide("user/Goal.ds", dr, "DELETE", "Goal?lifecycle-status=active", {})
	d.decision == "filter"
	{"patient": "Patient/123,Patient/789"} in d.narrow
}

test_related_person_with_more_patients_than_the_bound_is_refused if {
	d := decide("user/Observation.rs", {"fhirUser": "RelatedPerson/parent"}, "GET", "Observation", {}) with data.config as {"user": {"max_search_patients": 1}}
	d.reasons[0].code == "user-patients-too-many"
}

test_response_filter_applies_the_user_set if {
	bundle := {"resourceType": "Bundle", "type": "searchset", "entry": [
		{"resource": obs("789")},
		{"resource": object.union(obs("999"), {"id": "o2"})},
		{"resource": {"resourceType": "Location", "id": "l1"}},
	]}
	d := decide("user/Observation.rs user/Location.rs", dr, "GET", "Observation", {"response": bundle})
	d.keep == ["Observation/o1", "Location/l1"]
	[x.ref | some x in d.drop] == ["Observation/o2"]
}

test_shared_types_are_read_only_for_a_confined_user if {
	decide("user/Location.rs", dr, "GET", "Location/l1", {"resource": {"resourceType": "Location", "id": "l1"}}).decision == "allow"
	decide("user/Location.u", dr, "PUT", "Location/l1", {"request": {"body": {"resourceType": "Location", "id": "l1"}}}).decision == "deny"
}

test_visibility_of_own_practitioner_resource if {
	access.user_visibility({"resourceType": "Practitioner", "id": "dr-lee"}).decision == "allow" with input as {"claims": dr}
	access.user_visibility({"resourceType": "Practitioner", "id": "other"}).decision == "deny" with input as {"claims": dr}
}

test_chains_on_a_confined_user_path_are_refused if {
	d := decide("user/Observation.rs user/Patient.rs", dr, "GET", "Observation?subject:Patient.name=x", {})
	d.decision == "deny"
	d.reasons[0].code == "chain-not-searchable"
}

test_unconfined_context if {
	access.unconfined_context({"context": "system"})
	not access.unconfined_context({"context": "user"})
	access.unconfined_context({"context": "user"}) with data.config as {"user": {"access": "server"}}
	not access.unconfined_context({"context": "patient"}) with data.config as {"user": {"access": "server"}}
}
