# --- Fixtures -------------------------------------------------------------------------------
package smart.label_test

import data.smart.config
import data.smart.label

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
	every c in config.label_default_sensitivity {
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

# --- Configuration fallbacks ---------------------------------------------------------------------

test_malformed_settings_fall_back_to_safe_defaults if {
	cfg := {"labels": {"rights": "everyone", "role_claims": "roles"}, "btg": {"eligible": {"roles": ["physician"]}, "max_age_seconds": "forever", "reason_max_length": -1}}
	count(label.protected_labels(h1)) == 2 with input as read_input(btg_claims) with data.config as cfg
	not label.btg with input as read_input(btg_claims) with data.config as cfg
	config.btg_max_age_seconds == 3600 with data.config as cfg
	config.btg_reason_max_length == 500 with data.config as cfg
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
	config.audit_observer == "smart-authz" with data.config as {"audit": {"observer": 42}}
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
