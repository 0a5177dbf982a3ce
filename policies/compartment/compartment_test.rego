package smart.compartment_test

import data.smart.compartment

# A patient search is narrowed to what member/2 counts: the Patient itself, and the Patients that
# link to it only when Patient.link is followed.
test_patient_narrowing_is_the_patient_by_default if {
	compartment.narrowing("Patient", "123") == [{"_id": "123"}]
}

test_patient_narrowing_includes_linked_patients_when_links_are_followed if {
	n := compartment.narrowing("Patient", "123") with data.config as {"patient": {"follow_patient_link": true}}
	n == [{"_id": "123"}, {"link": "Patient/123"}]
}

test_linked_patient_is_member_only_when_links_are_followed if {
	linked := {"resourceType": "Patient", "id": "888", "link": [{"other": {"reference": "Patient/123"}, "type": "seealso"}]}
	not compartment.member(linked, "123")
	compartment.member(linked, "123") with data.config as {"patient": {"follow_patient_link": true}}
}
