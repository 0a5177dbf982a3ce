package smart.access.patient_link_test

# Patient.link (policy.patient.follow_patient_link): a linked Patient is in the patient's
# compartment only when links are followed, and then a read of it, a search for it and the filter
# of a response agree; it is never changed through the link.

import data.smart.api

follow := {"patient": {"follow_patient_link": true}}

linked := {"resourceType": "Patient", "id": "888", "link": [{"other": {"reference": "Patient/123"}, "type": "seealso"}]}

unlinked := {"resourceType": "Patient", "id": "999"}

decide(scope, req, extra) := d if {
	d := api.decision with input as object.union({"claims": {"scope": scope, "patient": "123"}, "request": req}, extra)
}

read888 := {"method": "GET", "url": "Patient/888"}

test_a_linked_patient_is_hidden_by_default if {
	d := decide("patient/Patient.r", read888, {"resource": linked})
	d.decision == "deny"
	d.status == 404
}

test_a_linked_patient_is_read_when_links_are_followed if {
	d := decide("patient/Patient.r", read888, {"resource": linked}) with data.config as follow
	d.decision == "allow"
}

test_an_unlinked_patient_stays_hidden_when_links_are_followed if {
	d := decide("patient/Patient.r", {"method": "GET", "url": "Patient/999"}, {"resource": unlinked}) with data.config as follow
	d.decision == "deny"
	d.status == 404
}

test_a_read_without_the_stored_patient_is_narrowed_to_the_link if {
	d := decide("patient/Patient.r", read888, {}) with data.config as follow
	d.decision == "filter"
	d.narrow == [{"_id": "888", "link": "Patient/123"}]
}

test_a_patient_search_finds_linked_patients_when_links_are_followed if {
	d := decide("patient/Patient.s", {"method": "GET", "url": "Patient"}, {}) with data.config as follow
	d.decision == "filter"
	d.narrow == [{"_id": "123"}, {"link": "Patient/123"}]
}

test_a_linked_patient_is_not_changed_through_the_link if {
	d := decide("patient/Patient.u", {"method": "PUT", "url": "Patient/888", "body": linked}, {"resource": linked}) with data.config as follow
	d.decision == "deny"
}
