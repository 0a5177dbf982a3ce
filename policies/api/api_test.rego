package smart.api_test

import data.smart.api

lab := "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

lab_scope := concat("", ["patient/Observation.rs?category=", lab])

obs(id, patient) := {"resourceType": "Observation", "id": id, "status": "final", "subject": {"reference": concat("/", ["Patient", patient])}}

lab_obs(id, patient) := object.union(obs(id, patient), {"category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]})

# These cases use user/ scopes as unconfined grants, as they were written before the user access
# model: they run with policy.user.access: server (the model itself is tested in policies/user and
# policies/access/user_access_test.rego). Scope hints are checked for every client, registered or
# not (issue 15 has its own tests).
decide(scope, ctx, req, extra) := d if {
	d := api.decision with input as object.union({"claims": object.union(ctx, {"scope": scope}), "request": req}, extra)
		with data.config.user.access as "server"
		with data.config.outcome.hint_without_registration as true
}

get(url) := {"method": "GET", "url": url}

p123 := {"patient": "123"}

# --- Reads and the compartment -------------------------------------------------------------

test_read_of_own_resource_is_allowed_and_of_another_is_hidden if {
	decide("patient/Observation.r", p123, get("Observation/o1"), {"resource": obs("o1", "123")}).decision == "allow"
	d := decide("patient/Observation.r", p123, get("Observation/o2"), {"resource": obs("o2", "999")})
	d.decision == "deny"
	d.status == 404
	d.outcome.issue[0].code == "not-found"
	d.outcome.issue[0].diagnostics == "Resource not found"
	d.reasons[0].code == "not-in-compartment"
}

test_read_without_the_stored_resource_is_narrowed_to_the_compartment if {
	d := decide("patient/Observation.r", p123, get("Observation/o1"), {})
	d.decision == "filter"
	{"_id": "o1", "patient": "Patient/123"} in d.narrow
	{"_id": "o1", "performer": "Patient/123"} in d.narrow
}

test_patient_scopes_need_a_patient_in_context if {
	d := decide("patient/Observation.r", {}, get("Observation/o1"), {"resource": obs("o1", "123")})
	d.status == 401
	d.reasons[0].code == "patient-context-missing"
	decide("patient/Observation.r", {"patient": "bad/id"}, get("Observation/o1"), {"resource": obs("o1", "123")}).status == 401
}

test_fhir_user_is_never_patient_context if {
	d := decide("patient/Observation.r", {"fhirUser": "Patient/123"}, get("Observation/o1"), {"resource": obs("o1", "123")})
	d.decision == "deny"
}

test_patient_resource_is_its_own_compartment if {
	decide("patient/Patient.r", p123, get("Patient/123"), {}).decision == "allow"
	decide("patient/Patient.r", p123, get("Patient/999"), {}).status == 404
	decide("patient/Patient.rs", p123, get("Patient?name=smith"), {}).narrow == [{"_id": "123"}]
	decide("patient/Patient.rs", p123, get("Patient?_id=123"), {}).decision == "allow"
	decide("patient/Patient.rs", p123, get("Patient?_id=999"), {}).decision == "deny"
}

test_shared_types_are_readable_but_not_writable_with_patient_scopes if {
	decide("patient/Medication.rs", p123, get("Medication/m1"), {}).decision == "allow"
	decide("patient/Medication.rs", p123, get("Medication?code=x"), {}).decision == "allow"
	d := decide("patient/Medication.cud", p123, {"method": "POST", "url": "Medication", "body": {"resourceType": "Medication"}}, {})
	d.reasons[0].code == "shared-type-read-only"
	decide("patient/Medication.cud", p123, {"method": "DELETE", "url": "Medication/m1"}, {}).reasons[0].code == "shared-type-read-only"
}

test_non_member_types_are_refused_to_patient_scopes if {
	every t in ["Task/t1", "Device/d1"] {
		d := decide("patient/*.rs", p123, get(t), {})
		d.status == 403
		d.reasons[0].code == "type-outside-patient-compartment"
	}
}

test_referenced_types_are_read_by_id_only if {
	decide("patient/*.rs", p123, get("Practitioner/7"), {}).decision != "deny"
	decide("patient/*.rs", p123, get("PractitionerRole/r1/_history"), {}).reasons[0].code == "referenced-type-restricted"
	decide("patient/*.rs", p123, get("Practitioner?name=x"), {}).reasons[0].code == "referenced-type-restricted"
}

test_user_and_system_scopes_have_no_compartment_limit if {
	decide("user/Observation.r", {"fhirUser": "Practitioner/9"}, get("Observation/o2"), {"resource": obs("o2", "999")}).decision == "allow"
	decide("system/Observation.s", {}, get("Observation?code=x"), {}).decision == "allow"
}

test_mixed_contexts_are_decided_per_type if {
	scopes := "patient/Observation.rs user/Condition.rs"
	ctx := {"patient": "123", "fhirUser": "Practitioner/9"}
	decide(scopes, ctx, get("Observation/o2"), {"resource": obs("o2", "999")}).decision == "deny"
	decide(scopes, ctx, get("Condition/c2"), {"resource": {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/999"}}}).decision == "allow"
}

# --- Writes ------------------------------------------------------------------------------------

test_create_checks_the_submitted_body if {
	post := {"method": "POST", "url": "Observation", "body": obs(null, "123")}
	decide("patient/Observation.c", p123, post, {}).decision == "allow"
	other := {"method": "POST", "url": "Observation", "body": obs(null, "999")}
	decide("patient/Observation.c", p123, other, {}).reasons[0].code == "body-outside-compartment"
	decide("patient/Patient.c", p123, {"method": "POST", "url": "Patient", "body": {"resourceType": "Patient"}}, {}).reasons[0].code == "patient-scope-cannot-create-patient"
}

test_update_may_neither_move_out_nor_leave_the_stored_check if {
	put := {"method": "PUT", "url": "Observation/o1", "body": obs("o1", "123")}
	decide("patient/Observation.u", p123, put, {"resource": obs("o1", "123")}).decision == "allow"
	decide("patient/Observation.u", p123, put, {"resource": obs("o1", "999")}).status == 404
	moved := {"method": "PUT", "url": "Observation/o1", "body": obs("o1", "999")}
	decide("patient/Observation.u", p123, moved, {"resource": obs("o1", "123")}).reasons[0].code == "body-outside-compartment"

	# without the stored resource no narrowing stands in for its labels: decided again with it
	unknown := decide("patient/Observation.u", p123, put, {})
	unknown.decision == "filter"
	not unknown.narrow
	[r.code | some r in unknown.reasons] == ["stored-resource-not-supplied"]
	not unknown.obligations
}

test_a_write_by_id_is_decided_on_the_stored_resource_and_its_labels if {
	labelled := object.union(obs("o1", "123"), {"meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]}})
	every req in [
		{"method": "DELETE", "url": "Observation/o1"},
		{"method": "PUT", "url": "Observation/o1", "body": obs("o1", "123")},
		{"method": "PATCH", "url": "Observation/o1", "body": [{"op": "replace", "path": "/status", "value": "amended"}]},
	] {
		every scope_ctx in [["patient/Observation.cruds", p123], ["user/Observation.cruds", {"fhirUser": "Practitioner/9"}], ["system/Observation.cruds", {}]] {
			without := decide(scope_ctx[0], scope_ctx[1], req, {})
			without.decision == "filter"
			not without.narrow
			decide(scope_ctx[0], scope_ctx[1], req, {"resource": obs("o1", "123")}).decision == "allow"
			decide(scope_ctx[0], scope_ctx[1], req, {"resource": labelled}).decision == "deny"
		}
	}
}

test_patient_can_update_own_patient_record_only if {
	stored := {"resourceType": "Patient", "id": "123"}
	decide("patient/Patient.u", p123, {"method": "PUT", "url": "Patient/123", "body": {"resourceType": "Patient", "id": "123"}}, {"resource": stored}).decision == "allow"
	decide("patient/Patient.u", p123, {"method": "PUT", "url": "Patient/123", "body": {"resourceType": "Patient", "id": "999"}}, {}).decision == "deny"
}

test_patches_may_not_touch_compartment_links if {
	safe := {"method": "PATCH", "url": "Observation/o1", "body": [{"op": "replace", "path": "/status", "value": "amended"}]}
	decide("patient/Observation.u", p123, safe, {"resource": obs("o1", "123")}).decision == "allow"
	unsafe := {"method": "PATCH", "url": "Observation/o1", "body": [{"op": "replace", "path": "/subject/reference", "value": "Patient/999"}]}
	decide("patient/Observation.u", p123, unsafe, {"resource": obs("o1", "123")}).reasons[0].code == "patch-touches-compartment-link"
	moved := {"method": "PATCH", "url": "Observation/o1", "body": [{"op": "move", "from": "/performer", "path": "/note"}]}
	decide("patient/Observation.u", p123, moved, {"resource": obs("o1", "123")}).decision == "deny"
	fhirpath := {"method": "PATCH", "url": "Observation/o1", "body": {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [{"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Observation.subject"}]}]}}
	decide("patient/Observation.u", p123, fhirpath, {"resource": obs("o1", "123")}).decision == "deny"
	fhirpath_ok := {"method": "PATCH", "url": "Observation/o1", "body": {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [{"name": "path", "valueString": "Observation.status"}]}]}}
	decide("patient/Observation.u", p123, fhirpath_ok, {"resource": obs("o1", "123")}).decision == "allow"
	odd := {"method": "PATCH", "url": "Observation/o1", "body": "<xml/>"}
	decide("patient/Observation.u", p123, odd, {"resource": obs("o1", "123")}).decision == "deny"
}

test_conditional_writes_need_search_and_are_narrowed if {
	del := {"method": "DELETE", "url": "Observation?identifier=x"}
	d := decide("patient/Observation.ds", p123, del, {})
	d.decision == "filter"
	{"patient": "Patient/123"} in d.narrow
	missing := decide("patient/Observation.d", p123, del, {})
	missing.required_scopes == ["patient/Observation.s"]
	decide("patient/Observation.ds", p123, {"method": "DELETE", "url": "Observation?patient=999"}, {}).decision == "deny"
	create := {"method": "POST", "url": "Observation", "headers": {"if-none-exist": "identifier=x"}, "body": obs(null, "123")}
	decide("patient/Observation.cs", p123, create, {}).decision != "deny"
	decide("patient/Observation.c", p123, create, {}).required_scopes == ["patient/Observation.s"]
}

# --- Searches ------------------------------------------------------------------------------

test_compartment_searches_are_confined_to_the_context_patient if {
	decide("patient/Communication.rs", p123, get("Patient/123/Communication"), {}).decision == "allow"
	decide("patient/Communication.rs", p123, get("Patient/9/Communication"), {}).reasons[0].code == "compartment-other-patient"
	decide("patient/*.rs", p123, get("Patient/123/*"), {}).decision == "allow"
	n := decide("patient/Communication.rs", p123, get("Communication?category=x"), {}).narrow
	{x | some alt in n; some x in object.keys(alt)} == {"patient", "sender", "recipient"}
	decide("patient/Observation.rs", p123, get("Encounter/e1/Observation"), {}).decision == "filter"
}

test_chains_and_reverse_chains_need_search_on_the_chained_type if {
	d := decide("patient/Observation.rs", p123, get("Observation?subject:Patient.name=peter"), {})
	d.status == 403
	d.required_scopes == ["patient/Patient.s"]
	decide("patient/Observation.rs patient/Patient.rs", p123, get("Observation?subject:Patient.name=peter"), {}).decision == "filter"
	h := decide("patient/Patient.rs", p123, get("Patient?_has:Observation:patient:code=1234-5"), {})
	h.required_scopes == ["patient/Observation.s"]
	decide("patient/Patient.rs", p123, get("Patient?_has:Nope:patient:code=1"), {}).status == 400
	decide("patient/Observation.rs", p123, get("Observation?subject.name=peter"), {}).decision == "deny"
	decide("patient/Observation.rs", p123, get("Observation?status.x=1"), {}).reasons[0].code == "search-parameter-unknown"
}

test_includes_are_allowed_with_a_response_filtering_obligation if {
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123&_include=Observation:performer"), {})
	d.decision == "allow"
	d.obligations[0].type == "filter-response"
	decide("patient/Observation.rs", p123, get("Observation?_include=*"), {}).status == 400
	decide("patient/Observation.rs", p123, get("Observation?_revinclude=Provenance:target:Observation"), {}).decision == "filter"
}

test_unsupported_and_unknown_parameters_are_refused if {
	decide("patient/Observation.rs", p123, get("Observation?_filter=code eq x"), {}).reasons[0].code == "search-parameter-unsupported"
	decide("patient/Observation.rs", p123, get("Observation?_getpages=abc"), {}).reasons[0].code == "search-parameter-unknown"
	decide("system/*.rs", {}, get("?_type=Observation&code=x"), {}).decision == "allow"
}

test_system_searches_need_user_or_system_scopes if {
	decide("patient/*.rs", p123, get("?_type=Observation"), {}).reasons[0].code == "patient-scope-system-search"
	decide("user/*.rs", {"fhirUser": "Practitioner/9"}, get("_history"), {}).decision == "allow"
	decide("user/Observation.rs", {"fhirUser": "Practitioner/9"}, get(""), {}).required_scopes == ["user/*.s"]
}

# --- Constraints ---------------------------------------------------------------------------

test_constraints_filter_reads_and_narrow_searches if {
	decide(lab_scope, p123, get("Observation/o1"), {"resource": lab_obs("o1", "123")}).decision == "allow"
	decide(lab_scope, p123, get("Observation/o1"), {"resource": obs("o1", "123")}).reasons[0].code == "constraint-mismatch"
	decide(lab_scope, p123, get("Observation?patient=123"), {}).narrow == [{"category": lab}]
	decide(lab_scope, p123, get(concat("", ["Observation?patient=123&category=", lab])), {}).decision == "allow"
	n := decide(lab_scope, p123, get("Observation?code=x"), {}).narrow
	{"patient": "Patient/123", "category": lab} in n
	u := decide(lab_scope, p123, get("Observation/o1"), {})
	{"_id": "o1", "category": lab, "patient": "Patient/123"} in u.narrow
}

test_constraints_apply_to_submitted_resources if {
	s := "patient/Basic.cuds?code=https://myapp.example.org|keys"
	ok := {"resourceType": "Basic", "code": {"coding": [{"system": "https://myapp.example.org", "code": "keys"}]}, "subject": {"reference": "Patient/a"}}
	decide(s, {"patient": "a"}, {"method": "POST", "url": "Basic", "body": ok}, {}).decision == "allow"
	bad := object.union(ok, {"code": {"coding": [{"system": "https://other.example.org", "code": "x"}]}})
	decide(s, {"patient": "a"}, {"method": "POST", "url": "Basic", "body": bad}, {}).reasons[0].code == "body-outside-constraint"
	patch := {"method": "PATCH", "url": "Basic/b1", "body": [{"op": "replace", "path": "/code", "value": {}}]}
	decide(s, {"patient": "a"}, patch, {"resource": object.union(ok, {"id": "b1"})}).decision == "deny"
	cond := decide(s, {"patient": "a"}, {"method": "DELETE", "url": "Basic?identifier=1"}, {})
	cond.decision == "filter"
}

test_unenforceable_constraints_grant_nothing if {
	d := decide("patient/Observation.rs?code:in=http://vs", p123, get("Observation/o1"), {"resource": obs("o1", "123")})
	d.reasons[0].code == "constraint-unsupported"
	decide("patient/Observation.rs?patient.birthdate=1990", p123, get("Observation/o1"), {"resource": obs("o1", "123")}).decision == "deny"
	decide("patient/Observation.rs?date=2020", p123, get("Observation/o1"), {"resource": obs("o1", "123")}).decision == "deny"
	decide("user/*.rs?category=x", {"fhirUser": "Practitioner/1"}, get("Patient/123/$everything"), {}).reasons[0].code == "constraint-not-applicable"
}

test_repeated_constraint_parameters_grant_nothing if {
	d := decide("patient/Observation.rs?category=a&category=b", p123, get("Observation?code=1234-5"), {})
	d.reasons[0].code == "constraint-unsupported"
	contains(d.reasons[0].message, "repeated parameters")
}

test_constraint_scopes_do_not_cover_system_search if {
	decide("user/Observation.s?category=x", {"fhirUser": "Practitioner/1"}, get("?_type=Observation"), {}).reasons[0].code == "constraint-not-applicable"
}

# --- Operations ----------------------------------------------------------------------------

test_operations_follow_the_configured_table if {
	decide("patient/*.rs", p123, get("Patient/123/$everything"), {}).decision == "allow"
	decide("patient/*.rs", p123, get("Patient/999/$everything"), {}).reasons[0].code == "operation-other-patient"
	decide("patient/Observation.rs", p123, get("Patient/123/$everything"), {}).required_scopes == ["patient/*.rs"]
	decide("patient/*.rs", {}, get("Patient/123/$everything"), {}).status == 401
	decide("system/*.rs", {}, get("$export"), {}).decision == "allow"
	decide("patient/*.rs", p123, get("Patient/$export"), {}).decision == "deny"
	decide("system/Observation.rs", {}, get("$export?_type=Patient"), {}).required_scopes == ["system/*.rs"]
	decide("user/ValueSet.r", {"fhirUser": "Practitioner/1"}, get("ValueSet/$expand?url=x"), {}).decision == "allow"
	decide("system/*.cruds", {}, get("Patient/1/$meta"), {}).reasons[0].code == "operation-not-permitted"
	decide("system/*.cruds", {}, get("Observation/$everything"), {}).reasons[0].code == "operation-not-permitted"
}

test_capabilities_are_public if {
	decide("", {}, get("metadata"), {}).decision == "allow"
	decide("", {}, get(".well-known/smart-configuration"), {}).decision == "allow"
}

# --- Denials and their documents -----------------------------------------------------------

test_missing_scope_names_the_smallest_scope_that_would_help if {
	d := decide("patient/Condition.rs", p123, get("Observation/o1"), {})
	d.status == 403
	d.required_scopes == ["patient/Observation.r"]
	d.outcome.issue[0].code == "forbidden"
	d.outcome.issue[0].extension[0].url == "https://smart-authz.dev/fhir/StructureDefinition/required-scope"
	d.outcome.issue[0].extension[0].valueString == "patient/Observation.r"
	decide("", {"fhirUser": "Practitioner/1"}, get("Observation/o1"), {}).required_scopes == ["user/Observation.r"]
	decide("", {}, get("Observation/o1"), {}).required_scopes == ["system/Observation.r"]
	decide("", p123, get("Observation/o1"), {}).required_scopes == ["patient/Observation.r"]
}

test_required_scope_extension_url_is_configurable if {
	d := decide("", p123, get("Observation/o1"), {}) with data.config as {"outcome": {"required_scope_extension_url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-required-scope"}}
	d.outcome.issue[0].extension[0].url == "http://hl7.org/fhir/StructureDefinition/operationoutcome-required-scope"
}

test_malformed_scopes_are_reported_on_every_decision if {
	d := decide("patient/Observation.rs patient/Condition.sr", p123, get("Observation/o1"), {"resource": obs("o1", "123")})
	d.decision == "allow"
	d.reasons[0].code == "scope-invalid"
	d.reasons[0].scope == "patient/Condition.sr"
}

test_malformed_input_is_denied_with_400 if {
	d := api.decision with input as {"request": get("Observation/o1")}
	d.status == 400
	d.reasons[0].code == "input-invalid"
	bad := api.decision with input as {"claims": {}, "request": "GET /"}
	bad.status == 400
	decide("patient/*.rs", p123, get("../x"), {}).reasons[0].code == "request-unclassifiable"
}

test_hidden_status_is_configurable if {
	d := decide("patient/Observation.r", p123, get("Observation/o2"), {"resource": obs("o2", "999")}) with data.config as {"deny": {"hidden_status": 403}}
	d.status == 403
}
