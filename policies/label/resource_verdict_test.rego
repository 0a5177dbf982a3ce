# The verdict for one resource (resource_verdict.rego).
package smart.label_test

import data.smart.label
import data.smart.verdict

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
