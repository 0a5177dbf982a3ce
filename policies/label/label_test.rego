package smart.label_test

import data.smart.label
import data.smart.verdict

# --- Fixtures -------------------------------------------------------------------------------

conf := "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

act_code := "http://terminology.hl7.org/CodeSystem/v3-ActCode"

act_reason := "http://terminology.hl7.org/CodeSystem/v3-ActReason"

now := "2026-11-22T10:00:00Z"

now_s := 1795341600

labelled(id, codings) := {"resourceType": "Observation", "id": id, "meta": {"security": codings}}

# The digest's Observation/h1: restricted, HIV.
h1 := labelled("h1", [{"system": conf, "code": "R"}, {"system": act_code, "code": "HIV"}])

plain := {"resourceType": "Observation", "id": "1", "subject": {"reference": "Patient/123"}}

clinician := {
	"scope": "user/*.rs", "sub": "u1", "fhirUser": "Practitioner/9", "client_id": "ehr",
	"roles": ["physician"], "iat": now_s - 60, "jti": "j-1",
}

btg_claims := object.union(clinician, {"purpose_of_use": ["BTG"], "btg_reason": "unconscious, suspected overdose"})

eligible_physicians := {"btg": {"eligible": [{"roles": ["physician"]}]}}

request_input(claims, method, url, headers) := {
	"claims": claims,
	"request": {"method": method, "url": url, "headers": headers},
	"now": now,
}

read_input(claims) := request_input(claims, "GET", "Observation/h1", {})

codes(ls) := {l.code | some l in ls}

long_text(n) := concat("", [c | some _ in numbers.range(1, n); c := "x"])

# --- labels(resource) -------------------------------------------------------------------------

test_labels_reads_confidentiality_and_sensitivity_codings if {
	label.labels(h1) == {{"system": conf, "code": "R"}, {"system": act_code, "code": "HIV"}}
}

test_labels_maps_system_aliases_to_canonical_urls if {
	r := labelled("a", [
		{"system": "http://hl7.org/fhir/v3/Confidentiality", "code": "V"},
		{"system": "urn:oid:2.16.840.1.113883.5.25", "code": "R"},
		{"system": "urn:oid:2.16.840.1.113883.5.4", "code": "PSY"},
		{"system": "http://hl7.org/fhir/v3/ActCode", "code": "ETH"},
		{"system": "http://terminology.hl7.org/CodeSystem/v3-PurposeOfUse", "code": "TREAT"},
		{"system": "urn:oid:2.16.840.1.113883.5.8", "code": "HRESCH"},
	])
	label.labels(r) == {
		{"system": conf, "code": "V"}, {"system": conf, "code": "R"},
		{"system": act_code, "code": "PSY"}, {"system": act_code, "code": "ETH"},
		{"system": act_reason, "code": "TREAT"}, {"system": act_reason, "code": "HRESCH"},
	}
}

unreadable := label.unreadable_label

test_labels_reads_codes_without_a_system_as_the_restricting_code_they_spell if {
	r := labelled("a", [{"code": "R"}, {"code": "HIV"}, {"code": "OPIOIDUD"}])
	label.labels(r) == {{"system": conf, "code": "R"}, {"system": act_code, "code": "HIV"}, {"system": act_code, "code": "OPIOIDUD"}}
}

# L9: a coding without a system that spells no restricting code could be anything: it restricts.
test_codes_without_a_system_that_spell_no_restricting_code_are_unreadable_and_restrict if {
	every code in ["WHATEVER", "N", "U", "DELAU"] {
		r := labelled("a", [{"code": code}])
		label.labels(r) == {unreadable}
		label.restricting_labels(r) == {unreadable}
	}
}

test_labels_include_contained_resources if {
	r := {
		"resourceType": "DiagnosticReport", "id": "d1",
		"contained": [labelled("c1", [{"system": act_code, "code": "STD"}])],
	}
	label.labels(r) == {{"system": act_code, "code": "STD"}}
	codes(label.protected_labels(r)) == {"STD"}
}

# L9: contained given as one object is read; an entry that is not a resource, or a contained
# resource that contains others (FHIR forbids it), cannot be read and restricts.
test_contained_in_any_shape_is_read_and_odd_entries_restrict if {
	single := {"resourceType": "DiagnosticReport", "id": "d1", "contained": labelled("c1", [{"system": conf, "code": "R"}])}
	label.labels(single) == {{"system": conf, "code": "R"}}
	junk := {"resourceType": "DiagnosticReport", "id": "d1", "contained": [{"resourceType": "Observation", "id": "c1"}, "junk"]}
	label.labels(junk) == {unreadable}
	nested := {"resourceType": "DiagnosticReport", "id": "d1", "contained": [{"resourceType": "Observation", "id": "c1", "contained": [labelled("c2", [])]}]}
	label.labels(nested) == {unreadable}
	label.labels({"resourceType": "DiagnosticReport", "id": "d1", "contained": []}) == set()
	label.labels({"resourceType": "DiagnosticReport", "id": "d1", "contained": 7}) == {unreadable}
}

test_labels_tolerate_odd_shapes if {
	label.labels(plain) == set()
	label.labels({"resourceType": "Observation", "meta": {"versionId": "1"}}) == set()
	label.labels({"resourceType": "Observation", "meta": {"security": []}}) == set()
	label.labels({"resourceType": "Observation", "meta": {"security": {"system": conf, "code": "V"}}}) == {{"system": conf, "code": "V"}}
	label.labels(null) == set()
	label.labels("Observation/h1") == set()
}

# L9: label shapes that cannot be read restrict (fail closed) instead of being skipped.
test_unreadable_label_shapes_restrict if {
	every r in [
		{"resourceType": "Observation", "meta": "x"},
		{"resourceType": "Observation", "meta": {"security": "R"}},
		{"resourceType": "Observation", "meta": {"security": 7}},
		labelled("a", ["R"]),
		labelled("a", [7]),
		labelled("a", [null]),
		labelled("a", [{"display": "no code"}]),
		labelled("a", [{"system": "", "code": "R"}]),
		labelled("a", [{"system": " ", "code": "N"}]),
		labelled("a", [{"system": concat("", [conf, " "]), "code": "N"}]),
		labelled("a", [{"system": concat("", [" ", act_code]), "code": "HIV"}]),
		labelled("a", [{"system": act_code, "code": "HIV "}]),
		labelled("a", [{"system": conf, "code": ""}]),
		labelled("a", [{"system": conf, "code": 5}]),
		labelled("a", [{"system": 5, "code": "N"}]),
		labelled("a", [{"system": act_code}]),
		labelled("a", [{"system": "http://example.org/tags"}]),
	] {
		label.labels(r) == {unreadable}
		label.restricting_labels(r) == {unreadable}
	}
}

test_an_unreadable_label_is_covered_only_by_a_right_to_everything if {
	who := {"roles": ["physician"]}
	r := labelled("a", [{"system": "", "code": "R"}])
	count(label.protected_labels(r)) == 1 with input as read_input(clinician) with data.config as right(who, "V", ["HIV"])
	count(label.protected_labels(r)) == 1 with input as read_input(clinician) with data.config as right(who, "R", ["*"])
	count(label.protected_labels(r)) == 0 with input as read_input(clinician) with data.config as right(who, "V", ["*"])
}

test_may_carry_labels_spots_every_shape_labels_reads if {
	label.may_carry_labels(h1)
	label.may_carry_labels({"resourceType": "Observation", "meta": "x"})
	label.may_carry_labels({"resourceType": "Observation", "contained": {"resourceType": "Observation"}})
	label.may_carry_labels({"resourceType": "Observation", "meta": {"security": {"code": "R"}}})
	not label.may_carry_labels(plain)
	not label.may_carry_labels({"resourceType": "Observation", "meta": {"versionId": "1", "security": []}})
}

test_a_confidentiality_coding_without_a_code_is_unknown_and_restricts if {
	r := labelled("a", [{"system": conf, "display": "Restricted"}])
	label.labels(r) == {{"system": conf, "code": ""}}
	count(label.restricting_labels(r)) == 1
}

# --- restricting_labels(resource) -------------------------------------------------------------

test_by_default_restricted_and_very_restricted_restrict if {
	every c in ["R", "V"] {
		count(label.restricting_labels(labelled("a", [{"system": conf, "code": c}]))) == 1
	}
	every c in ["U", "L", "M", "N"] {
		count(label.restricting_labels(labelled("a", [{"system": conf, "code": c}]))) == 0
	}
}

test_unknown_confidentiality_codes_fail_closed if {
	every c in ["B", "D", "I", "C", "S", "T", "X", "r", "restricted", ""] {
		count(label.restricting_labels(labelled("a", [{"system": conf, "code": c}]))) == 1
	}
}

test_default_sensitivity_codes_restrict if {
	every c in label.default_sensitivity {
		count(label.restricting_labels(labelled("a", [{"system": act_code, "code": c}]))) == 1
	}
}

test_sensitivity_subsumption_covers_child_codes if {
	every c in ["OPIOIDUD", "ETHUD", "COGN", "DVD", "EMOTDIS"] {
		count(label.restricting_labels(labelled("a", [{"system": act_code, "code": c}]))) == 1
	}
}

test_subsumption_follows_the_configured_list if {
	r := labelled("a", [{"system": act_code, "code": "OPIOIDUD"}])
	count(label.restricting_labels(r)) == 1 with data.config as {"labels": {"sensitivity": ["SUD"]}}
	count(label.restricting_labels(r)) == 0 with data.config as {"labels": {"sensitivity": ["ETH"]}}
}

test_other_actcode_and_other_systems_do_not_restrict if {
	r := labelled("a", [
		{"system": act_code, "code": "DELAU"}, {"system": act_code, "code": "NOREUSE"},
		{"system": act_code, "code": "HTEST"}, {"system": act_code, "code": "DEMO"},
		{"system": act_code, "code": "CEL"}, {"system": act_reason, "code": "BTG"},
		{"system": "http://example.org/labels", "code": "R"},
		{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "HIV"},
	])
	label.restricting_labels(r) == set()
}

test_confidentiality_threshold_is_configurable if {
	r := labelled("a", [{"system": conf, "code": "R"}])
	n := labelled("b", [{"system": conf, "code": "N"}])
	count(label.restricting_labels(r)) == 0 with data.config as {"labels": {"confidentiality_threshold": "V"}}
	count(label.restricting_labels(n)) == 1 with data.config as {"labels": {"confidentiality_threshold": "N"}}
	count(label.restricting_labels(n)) == 0 with data.config as {"labels": {"confidentiality_threshold": "R"}}
}

test_an_invalid_threshold_protects_every_confidentiality_label if {
	u := labelled("a", [{"system": conf, "code": "U"}])
	count(label.restricting_labels(u)) == 1 with data.config as {"labels": {"confidentiality_threshold": "restricted"}}
	count(label.restricting_labels(u)) == 1 with data.config as {"labels": {"confidentiality_threshold": 4}}
}

test_the_sensitivity_list_is_replaced_by_configuration if {
	cfg := {"labels": {"sensitivity": ["CEL", "NOPAT"]}}
	count(label.restricting_labels(labelled("a", [{"system": act_code, "code": "CEL"}]))) == 1 with data.config as cfg
	count(label.restricting_labels(labelled("a", [{"system": act_code, "code": "NOPAT"}]))) == 1 with data.config as cfg
	count(label.restricting_labels(labelled("a", [{"code": "NOPAT"}]))) == 1 with data.config as cfg
	count(label.restricting_labels(labelled("a", [{"system": act_code, "code": "HIV"}]))) == 0 with data.config as cfg
}

test_a_malformed_sensitivity_setting_keeps_the_default if {
	count(label.restricting_labels(h1)) == 2 with data.config as {"labels": {"sensitivity": "HIV"}}
}

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

# --- Break-the-glass: every combination of missing conditions ---------------------------------

# purpose × permitted × patient app × reason (ok, missing, too long) × time box = 48 cases.
btg_cases := [c |
	some purpose in [true, false]
	some permitted in [true, false]
	some patient_app in [false, true]
	some reason in ["ok", "missing", "long"]
	some fresh in [true, false]
	c := {"purpose": purpose, "permitted": permitted, "patient_app": patient_app, "reason": reason, "fresh": fresh}
]

case_claims(c) := object.union_n([
	{"sub": "u1", "fhirUser": "Practitioner/9", "client_id": "ehr"},
	case_purpose(c.purpose),
	case_roles(c.permitted),
	case_context(c.patient_app),
	case_reason(c.reason),
	case_iat(c.fresh),
])

case_purpose(true) := {"purpose_of_use": ["BTG"]}

case_purpose(false) := {"purpose_of_use": ["TREAT"]}

case_roles(true) := {"roles": ["physician"]}

case_roles(false) := {"roles": ["clerk"]}

case_context(false) := {"scope": "user/*.rs"}

case_context(true) := {"scope": "patient/*.rs", "patient": "123"}

case_reason("ok") := {"btg_reason": "patient unconscious"}

case_reason("missing") := {}

case_reason("long") := {"btg_reason": long_text(501)}

case_iat(true) := {"iat": now_s - 60}

case_iat(false) := {"iat": now_s - 7200}

expected_missing(c) := [code |
	some code in label.missing_order
	case_lacks(c, code)
]

case_lacks(c, "btg-purpose-missing") if not c.purpose

case_lacks(c, "btg-not-permitted") if not c.permitted

case_lacks(c, "btg-patient-app") if c.patient_app

case_lacks(c, "btg-reason-missing") if c.reason == "missing"

case_lacks(c, "btg-reason-too-long") if c.reason == "long"

case_lacks(c, "btg-expired") if not c.fresh

case_outcome(c) := o if {
	o := snapshot with input as read_input(case_claims(c)) with data.config as eligible_physicians
}

# Everything the combination table checks, evaluated under one input.
snapshot := {
	"missing": label.btg_missing,
	"btg": btg_or_null,
	"available": label.btg_available,
	"decision": label.resource_verdict(h1).decision,
}

default btg_or_null := null

btg_or_null := label.btg

outcome_passes(c, o) if {
	o.missing == expected_missing(c)
	o.available == expected_available(c)
	o.decision == decision_for(expected_missing(c))
	btg_defined_iff_nothing_missing(o)
}

expected_available(c) if {
	c.permitted
	not c.patient_app
} else := false

decision_for([]) := "allow"

decision_for(m) := "deny" if count(m) > 0

btg_defined_iff_nothing_missing(o) if {
	count(o.missing) == 0
	o.btg != null
}

btg_defined_iff_nothing_missing(o) if {
	count(o.missing) > 0
	o.btg == null
}

combination_failures(purpose, permitted) := failed if {
	cases := [c | some c in btg_cases; c.purpose == purpose; c.permitted == permitted]
	count(cases) == 12
	results := [{"case": c, "got": case_outcome(c)} | some c in cases]
	failed := [r | some r in results; not outcome_passes(r.case, r.got)]
}

test_btg_combinations_with_purpose_and_permission if {
	count(btg_cases) == 48
	failed := combination_failures(true, true)
	print("failing BTG combinations:", failed)
	count(failed) == 0
}

test_btg_combinations_with_purpose_without_permission if {
	failed := combination_failures(true, false)
	print("failing BTG combinations:", failed)
	count(failed) == 0
}

test_btg_combinations_without_purpose_with_permission if {
	failed := combination_failures(false, true)
	print("failing BTG combinations:", failed)
	count(failed) == 0
}

test_btg_combinations_without_purpose_or_permission if {
	failed := combination_failures(false, false)
	print("failing BTG combinations:", failed)
	count(failed) == 0
}

# --- Break-the-glass: each condition in detail --------------------------------------------------

btg_missing_for(claims) := m if {
	m := label.btg_missing with input as read_input(claims) with data.config as eligible_physicians
}

btg_for(claims) := b if {
	b := label.btg with input as read_input(claims) with data.config as eligible_physicians
}

test_a_complete_assertion_yields_the_btg_object if {
	btg_for(btg_claims) == {
		"purpose_of_use": {"system": act_reason, "code": "BTG", "display": "break the glass"},
		"purpose_source": "claims.purpose_of_use",
		"reason": "unconscious, suspected overdose",
		"reason_source": "claims.btg_reason",
		"user": {"sub": "u1", "fhirUser": "Practitioner/9"},
		"issued_at": now_s - 60,
	}
}

test_purpose_of_use_forms_that_assert_btg if {
	base := object.remove(btg_claims, ["purpose_of_use"])
	forms := [
		{"purpose_of_use": "BTG"},
		{"purpose_of_use": ["TREAT", "BTG"]},
		{"purpose_of_use": [{"system": act_reason, "code": "BTG"}]},
		{"purpose_of_use": {"code": "BTG"}},
		{"purpose_of_use": [{"coding": [{"system": act_reason, "code": "BTG"}]}]},
		{"purpose_of_use": ["http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG"]},
		{"purpose_of_use": ["http://terminology.hl7.org/CodeSystem/v3-ActReason|BTG"]},
		{"purpose_of_use": ["http://terminology.hl7.org/CodeSystem/v3-PurposeOfUse#BTG"]},
		{"purpose_of_use": ["http://hl7.org/fhir/security-label#break-the-glass"]},
		{"extensions": {"ihe_iua": {"purpose_of_use": [{"system": act_reason, "code": "BTG"}]}}},
		{"extensions": {"ihe_iua": {"purpose_of_use": {"system": "http://terminology.hl7.org/CodeSystem/v3-PurposeOfUse", "code": "BTG"}}}},
		{"extensions": {"hl7-b2b": {"purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#BTG"]}}},
		{"extensions": {"hl7-b2b": {"purpose_of_use": ["http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG"]}}},
	]
	rejected := [f | some f in forms; not btg_for(object.union(base, f))]
	print("purpose forms rejected:", rejected)
	count(rejected) == 0
}

test_purpose_of_use_forms_that_do_not_assert_btg if {
	base := object.remove(btg_claims, ["purpose_of_use"])
	forms := [
		{},
		{"purpose_of_use": []},
		{"purpose_of_use": ["TREAT", "ETREAT"]},
		{"purpose_of_use": ["btg"]},
		{"purpose_of_use": ["BTG "]},
		{"purpose_of_use": "BTG TREAT"},
		{"purpose_of_use": [{"system": act_code, "code": "BTG"}]},
		{"purpose_of_use": ["http://example.org/purpose#BTG"]},
		{"purpose_of_use": ["urn:oid:2.16.840.1.113883.5.4#BTG"]},
		{"purpose_of_use": ["#BTG"]},
		{"purpose_of_use": [true, 1, null]},
		{"extensions": {"ihe_iua": {"purpose_of_use": [{"system": "http://example.org", "code": "BTG"}]}}},
		{"extensions": {"other": {"purpose_of_use": ["BTG"]}}},
		{"btg": true},
	]
	accepted := [f | some f in forms; btg_for(object.union(base, f))]
	print("purpose forms accepted:", accepted)
	count(accepted) == 0
	every f in forms {
		"btg-purpose-missing" in btg_missing_for(object.union(base, f))
	}
}

test_purpose_claims_are_configurable if {
	base := object.remove(btg_claims, ["purpose_of_use"])
	custom := object.union(base, {"ctx": {"pou": "BTG"}})
	cfg := object.union(eligible_physicians, {"btg": {"eligible": [{"roles": ["physician"]}], "purpose_claims": ["ctx.pou"]}})
	label.btg.purpose_source == "claims.ctx.pou" with input as read_input(custom) with data.config as cfg
	not label.btg with input as read_input(btg_claims) with data.config as cfg
}

# V85: a rule that requires ETREAT is met by BTG (BTG is-a ETREAT is-a TREAT), not by TREAT.
test_required_purpose_matches_by_subsumption if {
	cfg := {"btg": {"eligible": [{"roles": ["physician"]}], "purpose_of_use": ["ETREAT"]}}
	label.btg.purpose_of_use.code == "BTG" with input as read_input(btg_claims) with data.config as cfg
	label.btg.purpose_of_use.code == "ERTREAT" with input as read_input(object.union(btg_claims, {"purpose_of_use": ["ERTREAT"]})) with data.config as cfg
	label.btg.purpose_of_use.code == "ETREAT" with input as read_input(object.union(btg_claims, {"purpose_of_use": ["ETREAT"]})) with data.config as cfg
	not label.btg with input as read_input(object.union(btg_claims, {"purpose_of_use": ["TREAT"]})) with data.config as cfg
	not label.btg with input as read_input(object.union(btg_claims, {"purpose_of_use": ["TREAT"]})) with data.config as eligible_physicians
	not label.btg with input as read_input(object.union(btg_claims, {"purpose_of_use": ["ETREAT"]})) with data.config as eligible_physicians
	not label.btg with input as read_input(btg_claims) with data.config as {"btg": {"eligible": [{"roles": ["physician"]}], "purpose_of_use": []}}
}

category_btg := `http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG; scheme="http://hl7.org/fhir/tag/security"; label="break the glass"`

header_input(headers) := request_input(object.remove(btg_claims, ["purpose_of_use"]), "GET", "Observation/h1", headers)

trusting := {"btg": {"eligible": [{"roles": ["physician"]}], "trust_category_header": true}}

# V83: the R4 Category header alone is an unauthenticated assertion.
test_the_category_header_is_ignored_unless_trusted if {
	not label.btg with input as header_input({"category": category_btg}) with data.config as eligible_physicians
	label.btg_missing == ["btg-purpose-missing"] with input as header_input({"category": category_btg}) with data.config as eligible_physicians
	not label.btg with input as header_input({"category": category_btg}) with data.config as {"btg": {"eligible": [{"roles": ["physician"]}], "trust_category_header": "true"}}
}

test_a_trusted_category_header_asserts_btg if {
	label.btg.purpose_source == "headers.category" with input as header_input({"category": category_btg}) with data.config as trusting
	label.btg with input as header_input({"category": [category_btg]}) with data.config as trusting
	label.btg with input as header_input({"category": concat(", ", [`http://example.org/tags#vip; scheme="http://example.org/scheme"`, category_btg])}) with data.config as trusting
	label.btg with input as header_input({"category": `urn:oid:2.16.840.1.113883.5.8#BTG;scheme=http://hl7.org/fhir/tag/security`}) with data.config as trusting
}

test_category_headers_outside_the_security_scheme_do_not_count if {
	bad := [
		`http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG`,
		`http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG; scheme="http://hl7.org/fhir/tag"`,
		`http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG; label="http://hl7.org/fhir/tag/security"`,
		`BTG; scheme="http://hl7.org/fhir/tag/security"`,
		`http://example.org#BTG; scheme="http://hl7.org/fhir/tag/security"`,
		`http://terminology.hl7.org/CodeSystem/v3-ActReason#TREAT; scheme="http://hl7.org/fhir/tag/security"`,
	]
	accepted := [h | some h in bad; label.btg with input as header_input({"category": h}) with data.config as trusting]
	print("category headers accepted:", accepted)
	count(accepted) == 0
}

test_btg_needs_an_identified_eligible_user if {
	"btg-not-permitted" in label.btg_missing with input as read_input(btg_claims)
	"btg-not-permitted" in label.btg_missing with input as read_input(btg_claims) with data.config as {"btg": {"eligible": []}}
	"btg-not-permitted" in label.btg_missing with input as read_input(btg_claims) with data.config as {"btg": {"eligible": [{}]}}
	by_client := {"btg": {"eligible": [{"client_ids": ["ehr"]}]}}
	label.btg with input as read_input(btg_claims) with data.config as by_client
	anonymous := object.remove(btg_claims, ["sub", "fhirUser"])
	label.btg_missing == ["btg-not-permitted"] with input as read_input(anonymous) with data.config as by_client
	blank := object.union(btg_claims, {"sub": " ", "fhirUser": ""})
	label.btg_missing == ["btg-not-permitted"] with input as read_input(blank) with data.config as by_client
	sub_only := object.remove(btg_claims, ["fhirUser"])
	label.btg.user == {"sub": "u1"} with input as read_input(sub_only) with data.config as by_client
}

test_patient_level_apps_never_break_the_glass_unless_configured if {
	app := object.union(btg_claims, {"scope": "patient/*.rs launch/patient openid", "patient": "123"})
	label.btg_missing == ["btg-patient-app"] with input as read_input(app) with data.config as eligible_physicians
	allowed := {"btg": {"eligible": [{"roles": ["physician"]}], "patient_apps": true}}
	label.btg with input as read_input(app) with data.config as allowed
	not label.btg with input as read_input(app) with data.config as {"btg": {"eligible": [{"roles": ["physician"]}], "patient_apps": "yes"}}
	mixed := object.union(app, {"scope": "patient/*.rs user/Observation.rs"})
	label.btg with input as read_input(mixed) with data.config as eligible_physicians
	no_grants := object.union(btg_claims, {"scope": "openid fhirUser"})
	label.btg with input as read_input(no_grants) with data.config as eligible_physicians
}

test_the_reason_comes_from_the_claim_then_the_header if {
	no_claim := object.remove(btg_claims, ["btg_reason"])
	hdr := request_input(no_claim, "GET", "Observation/h1", {"x-btg-reason": " cardiac arrest "})
	label.btg.reason == "cardiac arrest" with input as hdr with data.config as eligible_physicians
	label.btg.reason_source == "headers.x-btg-reason" with input as hdr with data.config as eligible_physicians
	both := request_input(btg_claims, "GET", "Observation/h1", {"x-btg-reason": "header reason"})
	label.btg.reason == "unconscious, suspected overdose" with input as both with data.config as eligible_physicians
	blank_claim := request_input(object.union(btg_claims, {"btg_reason": "   "}), "GET", "Observation/h1", {"x-btg-reason": "header reason"})
	label.btg.reason == "header reason" with input as blank_claim with data.config as eligible_physicians
	arr := request_input(no_claim, "GET", "Observation/h1", {"x-btg-reason": ["from array"]})
	label.btg.reason == "from array" with input as arr with data.config as eligible_physicians
}

test_blank_or_non_string_reasons_are_missing if {
	no_claim := object.remove(btg_claims, ["btg_reason"])
	every r in ["", "   ", "\n\t", 42, true, null, ["why"], {"text": "why"}] {
		"btg-reason-missing" in label.btg_missing with input as read_input(object.union(no_claim, {"btg_reason": r})) with data.config as eligible_physicians
	}
	every h in [{"x-btg-reason": ""}, {"x-btg-reason": [" "]}, {"x-btg-reason": 5}, {"x-reason": "why"}] {
		"btg-reason-missing" in label.btg_missing with input as request_input(no_claim, "GET", "Observation/h1", h) with data.config as eligible_physicians
	}
}

test_reason_length_is_bounded_in_characters if {
	ok := object.union(btg_claims, {"btg_reason": long_text(500)})
	label.btg with input as read_input(ok) with data.config as eligible_physicians
	long := object.union(btg_claims, {"btg_reason": long_text(501)})
	label.btg_missing == ["btg-reason-too-long"] with input as read_input(long) with data.config as eligible_physicians
	multibyte := object.union(btg_claims, {"btg_reason": concat("", [c | some _ in numbers.range(1, 500); c := "é"])})
	label.btg with input as read_input(multibyte) with data.config as eligible_physicians
	padded := object.union(btg_claims, {"btg_reason": concat("", ["  ", long_text(500), "  "])})
	label.btg with input as read_input(padded) with data.config as eligible_physicians
}

test_reason_settings_are_configurable if {
	cfg := {"btg": {"eligible": [{"roles": ["physician"]}], "reason_max_length": 10, "reason_min_length": 5, "reason_claims": ["ctx.why"], "reason_header": "X-Emergency-Reason"}}
	label.btg_missing == ["btg-reason-too-long"] with input as read_input(object.union(btg_claims, {"ctx": {"why": "eleven char"}})) with data.config as cfg
	label.btg_missing == ["btg-reason-missing"] with input as read_input(object.union(btg_claims, {"ctx": {"why": "why"}})) with data.config as cfg
	label.btg.reason_source == "claims.ctx.why" with input as read_input(object.union(btg_claims, {"ctx": {"why": "arrest"}})) with data.config as cfg
	no_claim := object.remove(btg_claims, ["btg_reason"])
	label.btg_missing == ["btg-reason-missing"] with input as read_input(no_claim) with data.config as cfg
	label.btg.reason_source == "headers.x-emergency-reason" with input as request_input(no_claim, "GET", "Observation/h1", {"x-emergency-reason": "arrest"}) with data.config as cfg
	no_header := {"btg": {"eligible": [{"roles": ["physician"]}], "reason_header": ""}}
	label.btg_missing == ["btg-reason-missing"] with input as request_input(no_claim, "GET", "Observation/h1", {"x-btg-reason": "arrest"}) with data.config as no_header
}

time_input(claims, t) := object.union(read_input(claims), {"now": t})

test_the_time_box_runs_from_token_issue if {
	at(now_s - 3600)
	not at(now_s - 3601)
	at(now_s)
	at(now_s + 60)
	not at(now_s + 61)
	not at(now_s - 86400)
}

at(iat) if label.btg with input as read_input(object.union(btg_claims, {"iat": iat})) with data.config as eligible_physicians

test_fractional_issue_times_and_offsets_count if {
	label.btg with input as time_input(object.union(btg_claims, {"iat": (now_s - 3600) + 0.5}), now) with data.config as eligible_physicians
	label.btg with input as time_input(object.union(btg_claims, {"iat": now_s - 3600}), "2026-11-22T11:00:00.000+01:00") with data.config as eligible_physicians
	not label.btg with input as time_input(object.union(btg_claims, {"iat": now_s - 3600}), "2026-11-22T10:00:00.001Z") with data.config as eligible_physicians
}

test_missing_or_malformed_times_fail_closed if {
	every iat in [null, "1795341540", -5, true, [now_s]] {
		"btg-expired" in label.btg_missing with input as read_input(object.union(btg_claims, {"iat": iat})) with data.config as eligible_physicians
	}
	"btg-expired" in label.btg_missing with input as read_input(object.remove(btg_claims, ["iat"])) with data.config as eligible_physicians
	every t in ["", "2026-11-22", "2026-11-22T10:00:00", "yesterday", "2026-02-30T10:00:00Z"] {
		"btg-expired" in label.btg_missing with input as time_input(btg_claims, t) with data.config as eligible_physicians
	}
	"btg-expired" in label.btg_missing with input as object.remove(read_input(btg_claims), ["now"]) with data.config as eligible_physicians
	"btg-expired" in label.btg_missing with input as object.union(read_input(btg_claims), {"now": now_s}) with data.config as eligible_physicians
}

test_time_box_settings_are_configurable if {
	cfg := {"btg": {"eligible": [{"roles": ["physician"]}], "max_age_seconds": 300, "clock_skew_seconds": 0, "issued_at_claim": "auth_time"}}
	claims := object.union(btg_claims, {"iat": now_s - 10, "auth_time": now_s - 299})
	label.btg.issued_at == now_s - 299 with input as read_input(claims) with data.config as cfg
	not label.btg with input as read_input(object.union(claims, {"auth_time": now_s - 301})) with data.config as cfg
	not label.btg with input as read_input(object.union(claims, {"auth_time": now_s + 1})) with data.config as cfg
	label.btg with input as read_input(object.union(claims, {"auth_time": now_s - 60})) with data.config as {"btg": {"eligible": [{"roles": ["physician"]}], "max_age_seconds": -1}}
}

# --- resource_verdict(resource) ----------------------------------------------------------------

test_unlabelled_and_unrestricted_resources_are_allowed if {
	label.resource_verdict(plain) == {"decision": "allow"} with input as read_input(clinician)
	label.resource_verdict(labelled("n", [{"system": conf, "code": "N"}, {"system": act_code, "code": "DELAU"}])) == {"decision": "allow"} with input as read_input(clinician)
}

test_btg_lifts_the_labels_and_says_which if {
	v := label.resource_verdict(h1) with input as read_input(btg_claims) with data.config as eligible_physicians
	v.decision == "allow"
	v.btg.reason == "unconscious, suspected overdose"
	v.overridden == [{"system": act_code, "code": "HIV"}, {"system": conf, "code": "R"}]
}

test_btg_is_not_reported_for_unrestricted_resources if {
	label.resource_verdict(plain) == {"decision": "allow"} with input as read_input(btg_claims) with data.config as eligible_physicians
}

test_a_label_right_allows_without_btg if {
	cfg := object.union(eligible_physicians, right({"roles": ["physician"]}, "R", ["HIV"]))
	label.resource_verdict(h1) == {"decision": "allow"} with input as read_input(btg_claims) with data.config as cfg
}

# V81: no purpose of use, not eligible: hidden like a resource that does not exist.
test_ineligible_users_get_the_hidden_status_without_a_hint if {
	v := label.resource_verdict(h1) with input as read_input(clinician)
	v.decision == "deny"
	v.status == 404
	v.reason == {"code": "label-restricted", "message": "Observation/h1 is not available to this token"}
	v.btg_available == false
	v.btg_missing == ["btg-purpose-missing", "btg-not-permitted", "btg-reason-missing"]
}

test_the_hidden_status_follows_the_deny_setting if {
	v := label.resource_verdict(h1) with input as read_input(clinician) with data.config as {"deny": {"hidden_status": 403}}
	v.status == 403
	not contains(v.reason.message, "glass")
	label.resource_verdict({"meta": h1.meta}).reason.message == "the resource is not available to this token" with input as read_input(clinician)
}

test_eligible_users_learn_what_would_help if {
	claims := object.remove(clinician, ["iat"])
	v := label.resource_verdict(h1) with input as read_input(claims) with data.config as eligible_physicians
	v.decision == "deny"
	v.status == 403
	v.reason.code == "label-restricted"
	v.btg_available == true
	v.btg_missing == ["btg-purpose-missing", "btg-reason-missing", "btg-expired"]
	contains(v.reason.message, "break the glass")
	contains(v.reason.message, "purpose of use BTG")
	contains(v.reason.message, "x-btg-reason header")
	contains(v.reason.message, "within 3600 seconds")
	not contains(v.reason.message, "Category")
}

test_hints_never_name_the_labels if {
	r := labelled("s", [{"system": conf, "code": "V"}, {"system": act_code, "code": "HIV"}, {"system": act_code, "code": "PSY"}, {"system": act_code, "code": "SUD"}])
	v := label.resource_verdict(r) with input as read_input(clinician) with data.config as eligible_physicians
	every word in ["HIV", "PSY", "SUD", "Confidentiality", "very restricted", "ActCode"] {
		not contains(v.reason.message, word)
	}
	w := label.resource_verdict(r) with input as read_input(clinician)
	every word in ["HIV", "PSY", "SUD", "label", "glass"] {
		not contains(w.reason.message, word)
	}
}

test_hint_phrases_follow_the_configuration if {
	long := object.union(btg_claims, {"btg_reason": long_text(20)})
	cfg := {"btg": {"eligible": [{"roles": ["physician"]}], "reason_max_length": 10, "trust_category_header": true, "reason_header": ""}}
	v := label.resource_verdict(h1) with input as read_input(long) with data.config as cfg
	v.btg_missing == ["btg-reason-too-long"]
	contains(v.reason.message, "at most 10 characters")
	w := label.resource_verdict(h1) with input as read_input(object.remove(clinician, ["purpose_of_use"])) with data.config as cfg
	contains(w.reason.message, "or in a Category header")
	contains(w.reason.message, "in the token claim btg_reason")
}

test_the_btg_available_status_is_configurable if {
	cfg := object.union(eligible_physicians, {"labels": {"btg_available_status": 404}})
	v := label.resource_verdict(h1) with input as read_input(clinician) with data.config as cfg
	v.status == 404
	v.btg_available == true
	odd := object.union(eligible_physicians, {"labels": {"btg_available_status": 200}})
	w := label.resource_verdict(h1) with input as read_input(clinician) with data.config as odd
	w.status == 403
}

test_btg_never_widens_scopes if {
	scope_deny := verdict.deny(403, "scope-missing", "no granted scope allows read on Observation")
	v := label.resource_verdict(h1) with input as read_input(btg_claims) with data.config as eligible_physicians
	verdict.all_of(scope_deny, v) == scope_deny
	verdict.all_of(v, scope_deny) == scope_deny
}

# V84/V86-style: entries of a search response, one verdict each; the labelled one is denied
# and nothing in the other verdicts depends on it.
test_each_search_entry_gets_its_own_verdict if {
	entries := [plain, h1, labelled("n", [{"system": conf, "code": "N"}])]
	decisions := [v.decision | some e in entries; v := label.resource_verdict(e)] with input as request_input(object.union(clinician, {"purpose_of_use": ["TREAT"]}), "GET", "Observation?_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV", {})
	decisions == ["allow", "deny", "allow"]
}

# --- audit_event(kind, refs, overridden, outcome_code) -----------------------------------------

overridden_h1 := [{"system": act_code, "code": "HIV"}, {"system": conf, "code": "R"}]

btg_audit_input := request_input(object.union(btg_claims, {"patient": "123"}), "GET", "Observation/h1", {"x-request-id": "req-42"})

btg_event := e if {
	e := label.audit_event("btg-access", ["Observation/h1"], overridden_h1, "0") with input as btg_audit_input with data.config as eligible_physicians
}

agent_types(e) := [a.type.coding[0].code | some a in e.agent]

test_a_btg_access_is_recorded_as_a_rest_event if {
	e := btg_event
	e.resourceType == "AuditEvent"
	e.type == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation"}
	e.subtype == [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}]
	e.action == "R"
	e.recorded == now
	e.outcome == "0"
	not e.outcomeDesc
	e.purposeOfEvent == [{"coding": [{"system": act_reason, "code": "BTG", "display": "break the glass"}]}]
	e.source.observer == {"display": "smart-authz"}
	not e.id
}

test_a_btg_event_names_client_server_and_user if {
	e := btg_event
	agent_types(e) == ["110152", "110153", "IRCP"]
	e.agent[0].who == {"identifier": {"value": "ehr"}}
	e.agent[0].requestor == false
	e.agent[1].who == {"display": "fhir-server"}
	user := e.agent[2]
	user.requestor == true
	user.who == {"reference": "Practitioner/9", "identifier": {"value": "u1"}}
	user.purposeOfUse == [{"coding": [{"system": act_reason, "code": "BTG", "display": "break the glass"}]}]
	user.policy == ["urn:ietf:params:oauth:jti:j-1"]
	user.role == [{"text": "physician"}]
}

test_a_btg_event_names_the_data_labels_reason_patient_and_request if {
	e := btg_event
	data_entity := e.entity[0]
	data_entity.what == {"reference": "Observation/h1"}
	data_entity.type.code == "2"
	data_entity.role.code == "4"
	data_entity.securityLabel == overridden_h1
	data_entity.detail == [{"type": "btg-reason", "valueString": "unconscious, suspected overdose"}]
	e.entity[1].what == {"reference": "Patient/123"}
	e.entity[1].role.code == "1"
	e.entity[2].what == {"identifier": {"value": "req-42"}}
	e.entity[2].type.code == "XrequestId"
	count(e.entity) == 3
}

test_writes_swap_the_source_and_destination_roles if {
	every case in [["PUT", "Observation/h1", "U", "update"], ["PATCH", "Observation/h1", "U", "patch"], ["DELETE", "Observation/h1", "D", "delete"], ["POST", "Observation", "C", "create"]] {
		e := label.audit_event("btg-access", ["Observation/h1"], [], "0") with input as request_input(btg_claims, case[0], case[1], {}) with data.config as eligible_physicians
		e.action == case[2]
		e.subtype[0].code == case[3]
		agent_types(e) == ["110153", "110152", "IRCP"]
	}
}

test_searches_record_the_query if {
	url := "Observation?patient=123&code=http://loinc.org|1234-5"
	e := label.audit_event("btg-access", ["Observation/h1", "Observation/h2"], overridden_h1, "0") with input as request_input(btg_claims, "GET", url, {}) with data.config as eligible_physicians
	e.subtype[0].code == "search-type"
	e.action == "R"
	[x.what.reference | some x in e.entity; x.what.reference] == ["Observation/h1", "Observation/h2"]
	queries := [x | some x in e.entity; x.role.code == "24"]
	queries == [{
		"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
		"role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
		"query": base64.encode(url),
	}]
	c := label.audit_event("btg-access", [], [], "0") with input as request_input(btg_claims, "GET", "Patient/123/Observation", {}) with data.config as eligible_physicians
	c.subtype[0].code == "search-type"
}

test_a_label_denial_is_recorded_as_a_security_alert if {
	e := label.audit_event("label-denied", ["Observation/h1"], overridden_h1, "4") with input as read_input(clinician)
	e.type == {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113", "display": "Security Alert"}
	e.subtype[0].code == "read"
	e.action == "E"
	e.outcome == "4"
	e.outcomeDesc == "denied by security-label policy (label-restricted); break-the-glass conditions not met: btg-purpose-missing, btg-not-permitted, btg-reason-missing"
	agent_types(e) == ["110150", "authserver", "IRCP"]
	e.agent[1].who == {"display": "smart-authz"}
	not e.purposeOfEvent
	not e.agent[2].purposeOfUse
	e.entity[0].securityLabel == overridden_h1
	not e.entity[0].detail
}

test_a_denied_btg_attempt_records_the_asserted_purpose if {
	e := label.audit_event("label-denied", ["Observation/h1"], overridden_h1, "4") with input as read_input(btg_claims)
	e.purposeOfEvent == [{"coding": [{"system": act_reason, "code": "BTG", "display": "break the glass"}]}]
	e.agent[2].purposeOfUse == e.purposeOfEvent
	contains(e.outcomeDesc, "btg-not-permitted")
	not e.entity[0].detail
}

test_an_ordinary_access_event_has_no_btg_parts if {
	e := label.audit_event("access", ["Observation/1"], [], "0") with input as request_input(clinician, "GET", "Observation/1", {})
	e.type.code == "rest"
	not e.purposeOfEvent
	not e.entity[0].securityLabel
	not e.entity[0].detail
	not e.outcomeDesc
}

test_backend_services_are_their_own_requestor if {
	svc := {"scope": "system/*.rs", "client_id": "etl"}
	e := label.audit_event("label-denied", ["Observation/h1"], overridden_h1, "4") with input as read_input(svc)
	count(e.agent) == 2
	e.agent[0].requestor == true
	e.agent[0].who == {"identifier": {"value": "etl"}}
	f := label.audit_event("label-denied", ["Observation/h1"], overridden_h1, "4") with input as read_input({"scope": "system/*.rs"})
	f.agent[0].who == {"display": "unidentified client"}
}

test_audit_events_take_only_what_the_input_gives if {
	no_now := object.remove(read_input(clinician), ["now"])
	e := label.audit_event("access", ["Observation/1"], [], "0") with input as no_now
	not e.recorded
	bad_request := {"claims": clinician, "request": {"method": "BREW", "url": "pot"}, "now": now}
	f := label.audit_event("access", ["x"], [], "0") with input as bad_request
	not f.subtype
	f.action == "E"
	count([x | some x in label.audit_event("access", [1, null, "Observation/1"], [], "0").entity; x.what.reference]) == 1 with input as read_input(clinician)
}

test_outcome_codes_are_normalised if {
	every pair in [["0", "0"], [0, "0"], [4, "4"], ["8", "8"], [12, "12"], ["12", "12"], ["x", "8"], [3, "8"], [null, "8"]] {
		label.audit_event("access", [], [], pair[0]).outcome == pair[1] with input as read_input(clinician)
	}
}

test_audit_names_are_configurable if {
	cfg := {"audit": {"observer": "authz-prod-1", "server": "https://fhir.example.org/r4"}}
	e := label.audit_event("access", [], [], "0") with input as read_input(clinician) with data.config as cfg
	e.source.observer == {"display": "authz-prod-1"}
	e.agent[1].who == {"display": "https://fhir.example.org/r4"}
	d := label.audit_event("label-denied", [], [], "4") with input as read_input(clinician) with data.config as cfg
	d.agent[1].who == {"display": "authz-prod-1"}
}

test_the_audit_obligation_wraps_the_event if {
	o := label.audit_obligation("btg-access", ["Observation/h1"], overridden_h1, "0") with input as btg_audit_input with data.config as eligible_physicians
	o == {"type": "audit", "event": btg_event}
}

test_auditing_every_decision_is_off_unless_configured_true if {
	label.audit_all_decisions == false
	label.audit_all_decisions == true with data.config as {"audit": {"all_decisions": true}}
	label.audit_all_decisions == false with data.config as {"audit": {"all_decisions": "true"}}
}

test_the_same_input_gives_the_same_event if {
	a := label.audit_event("btg-access", ["Observation/h1"], overridden_h1, "0") with input as btg_audit_input with data.config as eligible_physicians
	b := label.audit_event("btg-access", ["Observation/h1"], overridden_h1, "0") with input as btg_audit_input with data.config as eligible_physicians
	a == b
}

# --- Configuration fallbacks ---------------------------------------------------------------------

test_malformed_settings_fall_back_to_safe_defaults if {
	cfg := {"labels": {"rights": "everyone", "role_claims": "roles"}, "btg": {"eligible": {"roles": ["physician"]}, "max_age_seconds": "forever", "reason_max_length": -1}}
	count(label.protected_labels(h1)) == 2 with input as read_input(btg_claims) with data.config as cfg
	not label.btg with input as read_input(btg_claims) with data.config as cfg
	label.max_age_seconds == 3600 with data.config as cfg
	label.reason_max_length == 500 with data.config as cfg
	count(label.protected_labels(h1)) == 2 with input as read_input(btg_claims) with data.config as "not an object"
}

test_without_terminology_data_labels_still_fail_closed if {
	v := label.resource_verdict(h1) with input as read_input(clinician) with data.terminology as {}
	v.decision == "deny"
	codes(label.restricting_labels(labelled("u", [{"system": conf, "code": "U"}]))) == {"U"} with data.terminology as {}
	codes(label.restricting_labels(labelled("s", [{"system": act_code, "code": "SUD"}]))) == {"SUD"} with data.terminology as {}
}

test_users_with_fewer_claims_get_smaller_agents if {
	minimal := {"scope": "user/*.rs", "sub": "u2", "client_id": "ehr"}
	e := label.audit_event("access", ["Observation/1"], [], "0") with input as read_input(minimal)
	e.agent[2] == {
		"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
		"who": {"identifier": {"value": "u2"}},
		"requestor": true,
	}
	f := label.audit_event("access", ["Observation/1"], [], "0") with input as read_input({"scope": "user/*.rs", "fhirUser": "Practitioner/3"})
	f.agent[2].who == {"reference": "Practitioner/3"}
}

test_a_label_denial_with_every_btg_condition_met_says_so_plainly if {
	e := label.audit_event("label-denied", ["Observation/h1"], [], "4") with input as read_input(btg_claims) with data.config as eligible_physicians
	e.outcomeDesc == "denied by security-label policy (label-restricted)"
}

test_sets_of_refs_and_labels_are_recorded_in_sorted_order if {
	e := label.audit_event("access", {"Observation/b", "Observation/a"}, {{"system": conf, "code": "V"}, {"system": act_code, "code": "HIV"}}, "0") with input as read_input(clinician)
	[x.what.reference | some x in e.entity; x.what.reference] == ["Observation/a", "Observation/b"]
	e.entity[0].securityLabel == [{"system": act_code, "code": "HIV"}, {"system": conf, "code": "V"}]
}

test_scopes_as_an_array_or_absent if {
	arr := object.union(clinician, {"scope": ["user/*.rs", "https://ehr.example/scopes/labels.hiv"]})
	label.protected_labels(h1) == set() with input as read_input(arr) with data.config as right({"scopes": ["https://ehr.example/scopes/labels.hiv"]}, "R", ["HIV"])
	none := object.remove(clinician, ["scope"])
	count(label.protected_labels(h1)) == 2 with input as read_input(none) with data.config as right({"scopes": ["https://ehr.example/scopes/labels.hiv"]}, "R", ["HIV"])
}

test_odd_role_values_are_skipped if {
	odd := object.union(clinician, {"roles": [7, null, {"code": "physician"}, {"system": "urn:x"}, ["nested"]]})
	label.user_roles == {"physician"} with input as read_input(odd)
}

test_without_terminology_data_purposes_match_only_themselves if {
	label.btg.purpose_of_use == {"system": act_reason, "code": "BTG", "display": "BTG"} with input as read_input(btg_claims) with data.config as eligible_physicians with data.terminology as {}
	cfg := {"btg": {"eligible": [{"roles": ["physician"]}], "purpose_of_use": ["ETREAT"]}}
	not label.btg with input as read_input(btg_claims) with data.config as cfg with data.terminology as {}
}

test_a_reason_nowhere_to_be_given_is_not_hinted_at if {
	cfg := {"btg": {"eligible": [{"roles": ["physician"]}], "reason_header": "", "reason_claims": []}}
	v := label.resource_verdict(h1) with input as read_input(clinician) with data.config as cfg
	endswith(v.reason.message, "give a reason. Every break-the-glass access is audited.")
	label.audit_observer == "smart-authz" with data.config as {"audit": {"observer": 42}}
}

# L7: the patient-app condition belongs to the access, not to the token.
test_btg_patient_app_condition_is_per_access if {
	inp := request_input(btg_claims, "GET", "Observation/h1", {})
	label.btg_missing == [] with input as inp with data.config as eligible_physicians
	label.btg_missing_via(true) == ["btg-patient-app"] with input as inp with data.config as eligible_physicians
	label.btg_missing_via(false) == [] with input as inp with data.config as eligible_physicians
	not label.btg_available_via(true) with input as inp with data.config as eligible_physicians
	label.resource_verdict_via(h1, true).status == 404 with input as inp with data.config as eligible_physicians
	label.resource_verdict_via(h1, false).btg.reason == "unconscious, suspected overdose" with input as inp with data.config as eligible_physicians
	patient_apps := object.union(eligible_physicians, {"btg": {"patient_apps": true}})
	label.btg_missing_via(true) == [] with input as inp with data.config as patient_apps
}
