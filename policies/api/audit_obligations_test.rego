# Labels, break-the-glass and the audit obligations they bring.
package smart.api_test

# --- Labels, break-the-glass and audit obligations ----------------------------------------

hiv_obs(id) := object.union(obs(id, "123"), {"meta": {"security": [
	{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
	{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"},
]}})

btg_claims := {
	"fhirUser": "Practitioner/9", "sub": "u1", "client_id": "ehr", "roles": ["physician"],
	"iat": 1795341480, "purpose_of_use": ["http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG"],
}

btg_get(url) := {"method": "GET", "url": url, "headers": {"x-btg-reason": "unconscious patient"}}

btg_config := {"btg": {"eligible": [{"roles": ["physician"]}]}}

test_labelled_resources_are_hidden_without_a_right_and_audited if {
	d := decide("user/*.rs", {"fhirUser": "Practitioner/9"}, get("Observation/h1"), {"resource": hiv_obs("h1"), "now": "2026-11-22T10:00:00Z"})
	d.decision == "deny"
	d.reasons[0].code == "label-restricted"
	d.obligations[0].type == "audit"
	d.obligations[0].event.resourceType == "AuditEvent"
}

test_break_the_glass_lifts_labels_and_is_audited if {
	d := decide("user/*.rs", btg_claims, btg_get("Observation/h1"), {"resource": hiv_obs("h1"), "now": "2026-11-22T10:00:00Z"}) with data.config as btg_config
	d.decision == "allow"
	count(d.obligations) == 1
	d.obligations[0].event.resourceType == "AuditEvent"
}

test_break_the_glass_never_widens_scopes if {
	d := decide("user/Condition.rs", btg_claims, btg_get("Observation/h1"), {"resource": hiv_obs("h1"), "now": "2026-11-22T10:00:00Z"}) with data.config as btg_config
	d.reasons[0].code == "scope-missing"
}

test_labelled_response_entries_are_dropped_and_audited if {
	resp := searchset([obs("o1", "123"), hiv_obs("h1")])
	d := decide("user/*.rs", {"fhirUser": "Practitioner/9"}, get("Observation?patient=123"), {"response": resp, "now": "2026-11-22T10:00:00Z"})
	d.keep == ["Observation/o1"]
	d.drop[0].reason == "label-restricted"
	[o.type | some o in d.obligations] == ["filter-response", "audit"]
	b := decide("user/*.rs", btg_claims, btg_get("Observation?patient=123"), {"response": resp, "now": "2026-11-22T10:00:00Z"}) with data.config as btg_config
	b.keep == ["Observation/o1", "Observation/h1"]
	[o.type | some o in b.obligations] == ["filter-response", "audit"]
}

test_every_decision_can_be_audited_by_configuration if {
	d := decide("user/*.rs", {"fhirUser": "Practitioner/9"}, get("Observation/o1"), {"resource": obs("o1", "123"), "now": "2026-11-22T10:00:00Z"}) with data.config as {"audit": {"all_decisions": true}}
	count(d.obligations) == 1
	n := decide("user/*.rs", {"fhirUser": "Practitioner/9"}, get("Observation?code=x"), {"now": "2026-11-22T10:00:00Z"}) with data.config as {"audit": {"all_decisions": true}}
	[o.type | some o in n.obligations] == ["filter-response", "audit"]
	x := decide("user/Condition.rs", {"fhirUser": "Practitioner/9"}, get("Observation/o1"), {"now": "2026-11-22T10:00:00Z"}) with data.config as {"audit": {"all_decisions": true}}
	count(x.obligations) == 1
}

# L7: the patient-app exclusion of break-the-glass is decided per grant that reaches the data.
test_break_the_glass_is_refused_on_data_reached_only_through_a_patient_grant if {
	ctx := object.union(btg_claims, {"patient": "123"})
	extra := {"resource": hiv_obs("h1"), "now": "2026-11-22T10:00:00Z"}
	d := decide("patient/Observation.rs user/Basic.r", ctx, btg_get("Observation/h1"), extra) with data.config as btg_config
	d.decision == "deny"
	d.reasons[0].code == "label-restricted"
	d.status == 404
	[o.type | some o in d.obligations] == ["audit"]
	d.obligations[0].event.type.code == "110113"

	# A user/ grant that reaches the same resource lets the user break the glass.
	u := decide("patient/Observation.rs user/Observation.r", ctx, btg_get("Observation/h1"), extra) with data.config as btg_config
	u.decision == "allow"
	u.obligations[0].event.purposeOfEvent[0].coding[0].code == "BTG"

	# A user/ grant that does not reach it (constraint mismatch) does not.
	c := decide("patient/Observation.rs user/Observation.r?category=vital-signs", ctx, btg_get("Observation/h1"), extra) with data.config as btg_config
	c.decision == "deny"

	# Patient apps may be allowed to break the glass by configuration.
	p := decide("patient/Observation.rs user/Basic.r", ctx, btg_get("Observation/h1"), extra) with data.config as object.union(btg_config, {"btg": {"patient_apps": true}})
	p.decision == "allow"
}

test_break_the_glass_on_response_entries_is_decided_per_grant if {
	ctx := object.union(btg_claims, {"patient": "123"})
	resp := searchset([obs("o1", "123"), hiv_obs("h1")])
	extra := {"response": resp, "now": "2026-11-22T10:00:00Z"}
	d := decide("patient/Observation.rs user/Basic.r", ctx, btg_get("Observation?patient=123"), extra) with data.config as btg_config
	d.keep == ["Observation/o1"]
	d.drop[0].reason == "label-restricted"
	[o.event.type.code | some o in d.obligations; o.type == "audit"] == ["110113"]
	u := decide("patient/Observation.rs user/Observation.rs", ctx, btg_get("Observation?patient=123"), extra) with data.config as btg_config
	u.keep == ["Observation/o1", "Observation/h1"]
	[o.event.purposeOfEvent[0].coding[0].code | some o in u.obligations; o.type == "audit"] == ["BTG"]
}
