# The AuditEvents (audit.rego).
package smart.label_test

import data.smart.config
import data.smart.label

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
	config.audit_all_decisions == false
	config.audit_all_decisions == true with data.config as {"audit": {"all_decisions": true}}
	config.audit_all_decisions == false with data.config as {"audit": {"all_decisions": "true"}}
}

test_the_same_input_gives_the_same_event if {
	a := label.audit_event("btg-access", ["Observation/h1"], overridden_h1, "0") with input as btg_audit_input with data.config as eligible_physicians
	b := label.audit_event("btg-access", ["Observation/h1"], overridden_h1, "0") with input as btg_audit_input with data.config as eligible_physicians
	a == b
}
