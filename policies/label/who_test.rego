# Label rights: which selectors match which tokens (who.rego), and what a right covers.
package smart.label_test

import data.smart.label

# --- protected_labels(resource): label rights --------------------------------------------------

test_by_default_nobody_holds_a_label_right if {
	label.protected_labels(h1) == label.restricting_labels(h1) with input as read_input(btg_claims)
	count(label.protected_labels(h1)) == 2 with input as read_input(btg_claims)
}

right(who, conf_code, sens) := {"labels": {"rights": [{"who": who, "confidentiality": conf_code, "sensitivity": sens}]}}

test_rights_by_client_id if {
	cfg := right({"client_ids": ["ehr"]}, "R", ["HIV"])
	label.protected_labels(h1) == set() with input as read_input(clinician) with data.config as cfg
	count(label.protected_labels(h1)) == 2 with input as read_input(object.union(clinician, {"client_id": "other"})) with data.config as cfg
	count(label.protected_labels(h1)) == 2 with input as read_input(object.remove(clinician, ["client_id"])) with data.config as cfg
}

test_rights_by_role_claim_values if {
	cfg := right({"roles": ["hiv-clinic", "physician"]}, "R", ["HIV"])
	label.protected_labels(h1) == set() with input as read_input(clinician) with data.config as cfg
	count(label.protected_labels(h1)) == 2 with input as read_input(object.union(clinician, {"roles": ["clerk"]})) with data.config as cfg
	label.protected_labels(h1) == set() with input as read_input(object.union(clinician, {"roles": "physician"})) with data.config as cfg
}

test_roles_from_iua_codings_match_code_or_system_bar_code if {
	iua := object.union(object.remove(clinician, ["roles"]), {"extensions": {"ihe_iua": {"subject_role": {"system": "http://snomed.info/sct", "code": "158965000"}}}})
	label.protected_labels(h1) == set() with input as read_input(iua) with data.config as right({"roles": ["158965000"]}, "R", ["HIV"])
	label.protected_labels(h1) == set() with input as read_input(iua) with data.config as right({"roles": ["http://snomed.info/sct|158965000"]}, "R", ["HIV"])
	b2b := object.union(object.remove(clinician, ["roles"]), {"extensions": {"hl7-b2b": {"subject_role": ["physician"]}}})
	label.protected_labels(h1) == set() with input as read_input(b2b) with data.config as right({"roles": ["physician"]}, "R", ["HIV"])
	cc := object.union(object.remove(clinician, ["roles"]), {"roles": [{"coding": [{"system": "urn:x", "code": "physician"}]}]})
	label.protected_labels(h1) == set() with input as read_input(cc) with data.config as right({"roles": ["physician"]}, "R", ["HIV"])
}

test_role_claims_are_configurable if {
	kc := object.union(object.remove(clinician, ["roles"]), {"realm_access": {"roles": ["physician"]}})
	cfg := object.union(right({"roles": ["physician"]}, "R", ["HIV"]), {"labels": {"role_claims": ["realm_access.roles"]}})
	label.protected_labels(h1) == set() with input as read_input(kc) with data.config as cfg
	count(label.protected_labels(h1)) == 2 with input as read_input(clinician) with data.config as cfg
}

test_rights_by_user_fhir_user_type_scope_and_claim if {
	label.protected_labels(h1) == set() with input as read_input(clinician) with data.config as right({"users": ["u1"]}, "R", ["HIV"])
	label.protected_labels(h1) == set() with input as read_input(clinician) with data.config as right({"users": ["Practitioner/9"]}, "R", ["HIV"])
	label.protected_labels(h1) == set() with input as read_input(clinician) with data.config as right({"fhir_user_types": ["Practitioner"]}, "R", ["HIV"])
	abs := object.union(clinician, {"fhirUser": "https://ehr.example/fhir/Practitioner/9"})
	label.protected_labels(h1) == set() with input as read_input(abs) with data.config as right({"fhir_user_types": ["Practitioner"]}, "R", ["HIV"])
	count(label.protected_labels(h1)) == 2 with input as read_input(clinician) with data.config as right({"fhir_user_types": ["Patient"]}, "R", ["HIV"])
	scoped := object.union(clinician, {"scope": "user/*.rs https://ehr.example/scopes/labels.hiv"})
	label.protected_labels(h1) == set() with input as read_input(scoped) with data.config as right({"scopes": ["https://ehr.example/scopes/labels.hiv"]}, "R", ["HIV"])
	count(label.protected_labels(h1)) == 2 with input as read_input(clinician) with data.config as right({"scopes": ["https://ehr.example/scopes/labels.hiv"]}, "R", ["HIV"])
	claimed := object.union(clinician, {"ehr": {"unit": "ID-clinic", "programs": ["ryan-white"]}})
	label.protected_labels(h1) == set() with input as read_input(claimed) with data.config as right({"claims": {"ehr.unit": "ID-clinic"}}, "R", ["HIV"])
	label.protected_labels(h1) == set() with input as read_input(claimed) with data.config as right({"claims": {"ehr.programs": "ryan-white"}}, "R", ["HIV"])
	count(label.protected_labels(h1)) == 2 with input as read_input(claimed) with data.config as right({"claims": {"ehr.unit": "ER"}}, "R", ["HIV"])
}

test_every_selector_key_must_match if {
	cfg := right({"client_ids": ["ehr"], "roles": ["hiv-clinic"]}, "R", ["HIV"])
	count(label.protected_labels(h1)) == 2 with input as read_input(clinician) with data.config as cfg
	both := object.union(clinician, {"roles": ["hiv-clinic"]})
	label.protected_labels(h1) == set() with input as read_input(both) with data.config as cfg
}

test_malformed_selectors_match_nobody if {
	bad := [
		{}, null, "ehr", ["ehr"], {"client_id": ["ehr"]}, {"client_ids": ["ehr"], "role": ["x"]},
		{"client_ids": "ehr"}, {"roles": "physician"}, {"claims": {}}, {"claims": "x"},
	]
	matched := [w |
		some w in bad
		count(label.protected_labels(h1)) < 2 with input as read_input(clinician) with data.config as right(w, "V", ["*"])
	]
	print("selectors that matched:", matched)
	count(matched) == 0
}

test_confidentiality_rights_cover_lower_levels_only if {
	v := labelled("v", [{"system": conf, "code": "V"}])
	x := labelled("x", [{"system": conf, "code": "X"}])
	r := labelled("r", [{"system": conf, "code": "R"}])
	who := {"client_ids": ["ehr"]}
	label.protected_labels(r) == set() with input as read_input(clinician) with data.config as right(who, "R", [])
	count(label.protected_labels(v)) == 1 with input as read_input(clinician) with data.config as right(who, "R", [])
	count(label.protected_labels(x)) == 1 with input as read_input(clinician) with data.config as right(who, "R", [])
	label.protected_labels(v) == set() with input as read_input(clinician) with data.config as right(who, "V", [])
	label.protected_labels(x) == set() with input as read_input(clinician) with data.config as right(who, "V", [])
	count(label.protected_labels(r)) == 1 with input as read_input(clinician) with data.config as right(who, "restricted", [])
}

test_sensitivity_rights_use_subsumption_and_wildcard if {
	who := {"client_ids": ["ehr"]}
	oud := labelled("o", [{"system": act_code, "code": "OPIOIDUD"}])
	psy := labelled("p", [{"system": act_code, "code": "PSY"}])
	label.protected_labels(oud) == set() with input as read_input(clinician) with data.config as right(who, "N", ["SUD"])
	label.protected_labels(psy) == set() with input as read_input(clinician) with data.config as right(who, "N", ["SPI"])
	count(label.protected_labels(psy)) == 1 with input as read_input(clinician) with data.config as right(who, "N", ["SUD"])
	label.protected_labels(psy) == set() with input as read_input(clinician) with data.config as right(who, "N", ["*"])
	count(label.protected_labels(labelled("r", [{"system": conf, "code": "R"}]))) == 1 with input as read_input(clinician) with data.config as right(who, "N", ["*"])
}

test_a_partial_right_leaves_the_rest_protected if {
	cfg := right({"client_ids": ["ehr"]}, "R", [])
	label.protected_labels(h1) == {{"system": act_code, "code": "HIV"}} with input as read_input(clinician) with data.config as cfg
}

test_several_rights_add_up if {
	cfg := {"labels": {"rights": [
		{"who": {"roles": ["physician"]}, "confidentiality": "R"},
		{"who": {"client_ids": ["ehr"]}, "sensitivity": ["HIV"]},
	]}}
	label.protected_labels(h1) == set() with input as read_input(clinician) with data.config as cfg
}
