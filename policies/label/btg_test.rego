# Break-the-glass (btg.rego): every combination of missing conditions, then each in detail.
package smart.label_test

import data.smart.label

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
