package smart.access_test

import data.smart.access

patient_claims := {"patient": "123", "scope": "patient/Observation.rs patient/Provenance.rs patient/Practitioner.rs"}

test_linked_index_reads_every_reference_once if {
	index := access.linked_index([{
		"resourceType": "Observation", "id": "o1",
		"subject": {"reference": "Patient/123"},
		"performer": [{"reference": "Practitioner/p1/_history/3"}, {"reference": "#contained"}, {"display": "x"}],
	}])
	index.keys == {"Observation/o1"}
	index.refs == {"Patient/123", "Practitioner/p1"}
}

test_referenced_types_never_include_compartment_or_patient_referencing_types if {
	types := access.referenced_types with data.config as {"patient": {"referenced_types": ["Encounter", "Device", "Practitioner", "Nonsense"]}}
	types == {"Practitioner"}
}

test_referenced_practitioner_visible_only_when_referenced if {
	index := {"keys": {"Observation/o1"}, "refs": {"Practitioner/p1"}}
	access.linked_visibility({"resourceType": "Practitioner", "id": "p1"}, index).decision == "allow" with input.claims as patient_claims
	access.linked_visibility({"resourceType": "Practitioner", "id": "p2"}, index).decision == "deny" with input.claims as patient_claims
}

test_provenance_needs_every_target_visible if {
	index := {"keys": {"Observation/o1"}, "refs": set()}
	one := {"resourceType": "Provenance", "id": "v1", "target": [{"reference": "Observation/o1"}]}
	two := {"resourceType": "Provenance", "id": "v2", "target": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}]}
	access.linked_visibility(one, index).decision == "allow" with input.claims as patient_claims
	access.linked_visibility(two, index).decision == "deny" with input.claims as patient_claims
}

test_provenance_naming_an_unseen_compartment_record_is_not_linked if {
	index := {"keys": {"Observation/o1"}, "refs": set()}
	base := {"resourceType": "Provenance", "id": "v1", "target": [{"reference": "Observation/o1"}]}
	entity := object.union(base, {"entity": [{"role": "source", "what": {"reference": "Observation/o2"}}]})
	agent := object.union(base, {"agent": [{"who": {"reference": "RelatedPerson/r9"}}]})
	practitioner := object.union(base, {"agent": [{"who": {"reference": "Practitioner/p1"}}]})
	seen := object.union(base, {"entity": [{"role": "source", "what": {"reference": "Observation/o1"}}]})
	access.linked_visibility(entity, index).decision == "deny" with input.claims as patient_claims
	access.linked_visibility(agent, index).decision == "deny" with input.claims as patient_claims
	access.linked_visibility(practitioner, index).decision == "allow" with input.claims as patient_claims
	access.linked_visibility(seen, index).decision == "allow" with input.claims as patient_claims
}

test_provenance_of_the_patient_itself_counts_as_visible_target if {
	p := {"resourceType": "Provenance", "id": "v1", "target": [{"reference": "Patient/123"}, {"reference": "Observation/o1"}]}
	access.linked_visibility(p, {"keys": {"Observation/o1"}, "refs": set()}).decision == "allow" with input.claims as patient_claims
}

test_linked_resources_do_not_widen_user_grants_scope if {
	claims := {"patient": "123", "scope": "user/Practitioner.rs"}
	v := access.linked_visibility({"resourceType": "Practitioner", "id": "p1"}, {"keys": set(), "refs": {"Practitioner/p1"}}) with input.claims as claims
	v.decision == "deny"
}
