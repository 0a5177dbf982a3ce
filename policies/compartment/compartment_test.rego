package smart.compartment_test

import data.smart.compartment

# The generated tables (scripts/generate-policy-tables.mjs) say what the CompartmentDefinition and
# the search parameters say, recomputed here from data.fhir.r4 rule by rule.
links(t) := data.fhir.r4.patient_compartment[t]

spec_linking_paths(t) := {path | some link in links(t); some path in link.paths}

spec_linking_params(t) := {n | some name, link in links(t); some n in {name, link.narrow_param}} | {name |
	some name, sp in data.fhir.r4.search_params[t]
	sp.type == "reference"
	is_array(sp.paths)
	count(sp.paths) > 0
	every path in sp.paths {
		path in spec_linking_paths(t)
	}
}

member_types := {t | some t, _ in data.fhir.r4.patient_compartment; t != "Patient"}

test_linking_params_table_follows_the_compartment_definition if {
	every t in member_types {
		compartment.linking_params(t) == spec_linking_params(t)
	}
	{t | some t, _ in data.compartment.tables.linking_params} == member_types
}

test_linking_paths_table_follows_the_compartment_definition if {
	every t in member_types | {"Patient"} {
		{p | some p in compartment.linking_paths(t)} == spec_linking_paths(t)
	}
	{t | some t, _ in data.compartment.tables.linking_paths} == member_types | {"Patient"}
}

test_a_reference_parameter_whose_paths_all_link_is_a_linking_parameter if {
	compartment.linking_param("Basic", "subject")
	compartment.linking_param("Observation", "subject")
	not compartment.linking_param("Observation", "code")
	not compartment.linking_param("Observation", "encounter")
	compartment.linking_param("Patient", "_id")
	not compartment.linking_param("Patient", "link")
	compartment.linking_param("Patient", "link") with data.config as {"patient": {"follow_patient_link": true}}
}

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

test_default_shared_types_table_follows_the_resource_definitions if {
	spec := {t |
		some t, info in data.fhir.r4.resource_types
		info.security_category in {"business", "anonymous"}
		not info.patient_compartment
		not info.references_patient
	}
	{t | some t, _ in data.compartment.tables.default_shared_types} == spec
}
