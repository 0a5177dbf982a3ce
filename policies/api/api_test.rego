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

# --- Batches and transactions --------------------------------------------------------------

bundle(type, entries) := {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": type, "entry": entries}}

test_batch_entries_are_decided_one_by_one if {
	b := bundle("batch", [
		{"request": {"method": "GET", "url": "Observation?patient=123"}},
		{"request": {"method": "DELETE", "url": "Observation/o1"}},
		{"request": {"method": "POST", "url": "/Observation", "ifNoneExist": "identifier=1"}, "resource": obs(null, "123")},
		{"request": {"method": "POST", "url": ""}, "resource": {"resourceType": "Bundle", "type": "batch"}},
		{"request": {"url": "x"}},
	])
	d := decide("patient/Observation.rs", p123, b, {})
	d.decision == "filter"
	[e.decision | some e in d.entries] == ["allow", "deny", "deny", "deny", "deny"]
	d.entries[3].reasons[0].code == "nested-batch"
	d.entries[4].reasons[0].code == "entry-malformed"
}

test_a_transaction_with_a_denied_entry_is_denied_whole if {
	t := bundle("transaction", [{"request": {"method": "GET", "url": "Observation?patient=123"}}, {"request": {"method": "DELETE", "url": "Observation/o1"}}])
	d := decide("patient/Observation.rs", p123, t, {})
	d.decision == "deny"
	d.status == 403
	d.reasons[0].code == "transaction-entry-denied"
	ok := bundle("transaction", [{"request": {"method": "GET", "url": "Observation?patient=123"}}])
	decide("patient/Observation.rs", p123, ok, {}).decision == "allow"
}

test_a_batch_whose_every_entry_is_denied_is_denied_whole if {
	b := bundle("batch", [{"request": {"method": "GET", "url": "Patient/999"}}, {"request": {"method": "DELETE", "url": "Observation/o1"}}])
	d := decide("patient/Observation.rs", p123, b, {})
	d.decision == "deny"

	# Patient/999 could never be read with patient/ scopes for 123: 404, as if it did not exist (issue 15)
	d.status == 404
	d.reasons[0].code == "batch-every-entry-denied"
	d.outcome.resourceType == "OperationOutcome"
	[e.decision | some e in d.entries] == ["deny", "deny"]
	decide("patient/Observation.rs", p123, bundle("batch", []), {}).decision == "allow"
}

# --- Response filtering --------------------------------------------------------------------

searchset(resources) := {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} | some r in resources]}

test_bundle_responses_keep_only_what_the_token_may_see if {
	resp := searchset([
		obs("o1", "123"),
		obs("o2", "999"),
		{"resourceType": "OperationOutcome"},
		{"resourceType": "Practitioner", "id": "7"},
		{"resourceType": "Medication", "id": "m1"},
	])
	d := decide("patient/Observation.rs patient/Medication.r", p123, get("Observation?patient=123&_include=Observation:performer"), {"response": resp})
	d.decision == "filter"
	d.keep == ["Observation/o1", "entry[2]", "Medication/m1"]
	[[x.ref, x.reason, x.index] | some x in d.drop] == [["Observation/o2", "not-in-compartment", 1], ["Practitioner/7", "scope-missing", 3]]
}

test_fully_visible_and_empty_bundles_keep_the_request_decision if {
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([obs("o1", "123")])})
	d.decision == "allow"
	d.keep == ["Observation/o1"]
	e := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([])})
	e.keep == []
}

test_single_resource_responses_are_released_or_hidden if {
	decide("patient/Observation.r", p123, get("Observation/o1"), {"response": obs("o1", "123")}).keep == ["Observation/o1"]
	d := decide("patient/Observation.r", p123, get("Observation/o2"), {"response": obs("o2", "999")})
	d.decision == "deny"
	d.status == 404
	d.drop[0].ref == "Observation/o2"
}

test_constrained_grants_filter_responses if {
	d := decide(lab_scope, p123, get("Observation?patient=123"), {"response": searchset([lab_obs("o1", "123"), obs("o4", "123")])})
	d.keep == ["Observation/o1"]
	d.drop[0].reason == "constraint-mismatch"
}

test_nested_bundles_are_released_only_when_every_resource_may_be if {
	inner_ok := {"resourceType": "Bundle", "id": "b1", "entry": [{"resource": obs("o1", "123")}, {"response": {"status": "200"}}]}
	inner_bad := {"resourceType": "Bundle", "id": "b2", "entry": [{"resource": obs("o2", "999")}]}
	resp := {"resourceType": "Bundle", "type": "batch-response", "entry": [{"resource": inner_ok}, {"resource": inner_bad}, {"resource": {"resourceType": "Bundle", "id": "b3"}}]}
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": resp})
	d.keep == ["Bundle/b1", "Bundle/b3"]
	d.drop[0].reason == "nested-bundle-hidden"
}

test_patient_scope_without_context_releases_nothing if {
	d := decide("patient/Observation.rs user/Condition.rs", {"fhirUser": "Practitioner/1"}, get("Condition?code=x"), {"response": searchset([obs("o1", "123"), {"resourceType": "Condition", "id": "c1"}, {"id": "x"}])})
	d.keep == ["Condition/c1"]
	[x.reason | some x in d.drop] == ["patient-context-missing", "scope-missing"]
}

test_scopes_entry_point_parses_input_scope if {
	r := api.scopes with input as {"scope": "patient/Observation.rs launch/patient"}
	r.valid
	count(r.scopes) == 2
}

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

# --- Data the policy has not seen (H3) and history (M1) ------------------------------------------

filter_response_types(d) := [o.type | some o in object.get(d, "obligations", []); o.type == "filter-response"]

user9 := {"fhirUser": "Practitioner/9"}

# H3: every decision that releases data the policy has not seen tells the host to filter the
# response, in every scope context: labels are checked on each returned resource.
test_decisions_that_release_unseen_data_must_filter_the_response if {
	every case in [
		["patient/Observation.rs", p123, get("Observation?patient=123")],
		["patient/Observation.rs", p123, get("Observation?code=x")],
		["patient/Observation.rs", p123, get("Observation?patient=123&_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV")],
		["patient/Observation.rs", p123, get("Patient/123/Observation")],
		["patient/*.rs", p123, get("Patient/123/*")],
		["patient/*.rs", p123, get("Patient/123/$everything")],
		["patient/Medication.rs", p123, get("Medication/_history")],
		["patient/Observation.r", p123, get("Observation/o1")],
		["patient/Patient.r", p123, get("Patient/123")],
		["patient/Observation.r", p123, get("Observation/o1/_history")],
		["patient/Observation.r", p123, get("Observation/o1/_history/2")],
		["patient/Observation.rs", p123, {"method": "POST", "url": "Observation/_search", "body": "patient=123"}],
		["user/Observation.rs", user9, get("Observation/h1")],
		["user/Observation.rs", user9, get("Observation/h1/_history/1")],
		["user/Observation.rs", user9, get("Observation?code=x")],
		["user/Observation.rs", user9, get("Observation/_history")],
		["user/*.rs", user9, get("?_type=Observation")],
		["user/*.rs", user9, get("_history")],
		["user/*.rs", user9, get("Patient/456/$everything")],
		["system/*.rs", {}, get("$export")],
		["system/Observation.rs", {}, get("Observation/h1")],
		["system/Observation.rs", {}, get("Observation?code=x")],
	] {
		d := decide(case[0], case[1], case[2], {})
		d.decision != "deny"
		filter_response_types(d) == ["filter-response"]
	}
}

# Reads decided on the stored resource (labels checked on it), writes and operations that return
# computed results need no response filtering.
test_decisions_on_seen_data_carry_no_filter_obligation if {
	every case in [
		["patient/Observation.r", p123, get("Observation/o1"), {"resource": obs("o1", "123")}],
		["patient/Observation.r", p123, get("Observation/o1/_history/2"), {"resource": object.union(obs("o1", "123"), {"meta": {"versionId": "2"}})}],
		["user/Observation.r", user9, get("Observation/o2"), {"resource": obs("o2", "999")}],
		["patient/Observation.c", p123, {"method": "POST", "url": "Observation", "body": obs(null, "123")}, {}],
		["user/CodeSystem.r", user9, get("CodeSystem/$lookup?system=http://loinc.org&code=1"), {}],
		["patient/Observation.rs", p123, get("metadata"), {}],
	] {
		d := decide(case[0], case[1], case[2], case[3])
		d.decision == "allow"
		filter_response_types(d) == []
	}
}

test_batch_entries_that_release_unseen_data_must_filter_the_batch_response if {
	d := decide(
		"patient/*.cruds", p123, bundle("batch", [
			{"request": {"method": "GET", "url": "Observation?patient=123"}},
			{"request": {"method": "GET", "url": "Observation/o1"}},
			{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")},
		]),
		{},
	)
	d.decision == "filter"
	filter_response_types(d) == ["filter-response"]
	[filter_response_types(e) | some e in d.entries] == [["filter-response"], ["filter-response"], []]
	w := decide("patient/*.cruds", p123, bundle("batch", [{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")}]), {})
	w.decision == "allow"
	filter_response_types(w) == []
}

# M1: history takes no search parameters, so a type's history cannot be confined to a patient.
test_type_history_is_refused_to_patient_scopes_on_compartment_types if {
	every url in ["Observation/_history", "Patient/_history", "Observation/_history?_since=2026-01-01T00:00:00Z"] {
		d := decide("patient/*.rs", p123, get(url), {})
		d.status == 403
		d.reasons[0].code == "patient-scope-type-history"
	}
	decide("patient/Medication.rs", p123, get("Medication/_history"), {}).decision == "allow"
	decide("user/Observation.rs", user9, get("Observation/_history"), {}).decision == "allow"
}

test_constrained_scopes_cannot_narrow_type_history if {
	d := decide(concat("", ["user/Observation.rs?category=", lab]), user9, get("Observation/_history"), {})
	d.status == 403
	d.reasons[0].code == "constraint-not-applicable"
}

test_history_takes_no_search_parameters if {
	every url in ["Observation/_history?patient=123", "Observation/o1/_history?code=x", "_history?patient=123", "Observation/_history?_list=l1"] {
		d := decide("user/*.rs", user9, get(url), {})
		d.status == 400
		d.reasons[0].code == "history-parameter-unsupported"
	}
	decide("user/*.rs", user9, get("Observation/_history?_count=10&_since=2026-01-01T00:00:00Z&_at=2026"), {}).decision == "allow"
	decide("user/*.rs", user9, get("_history?_type=Observation"), {}).decision == "allow"
}

# A vread or an instance history cannot be turned into a search, so without the stored resource
# it is a filter without narrowing: only the response check releases anything.
test_versions_without_the_stored_resource_are_filtered_without_narrowing if {
	every url in ["Observation/o1/_history", "Observation/o1/_history/2"] {
		every scope in ["patient/Observation.r", lab_scope] {
			d := decide(scope, p123, get(url), {})
			d.decision == "filter"
			not d.narrow
			d.reasons[0].code == "stored-resource-not-supplied"
			filter_response_types(d) == ["filter-response"]
		}
	}
	r := decide("patient/Observation.r", p123, get("Observation/o1"), {})
	{"_id": "o1", "patient": "Patient/123"} in r.narrow
}

# --- Chains and reverse chains stay inside what the token may search (L1) ----------------------

search_codes(scope, url) := [d.decision, object.get(d, "narrow", null), [r.code | some r in d.reasons]] if {
	d := decide(scope, p123, get(url), {})
}

test_chains_through_types_a_patient_token_cannot_search_are_refused if {
	every url in [
		"Observation?patient=123&performer:Practitioner.name=Smith",
		"Observation?patient=123&performer.name=Smith",
		"Observation?subject:Patient.general-practitioner.name=x",
		"Observation?patient=123&encounter.class=x",
		"Observation?patient=123&has-member:Observation.patient=999",
		"Observation?patient=123&has-member:Observation.code=x",
		"Observation?patient=123&has-member=Observation/o1&has-member:Observation.patient=999",
	] {
		search_codes("patient/*.rs", url) == ["deny", null, ["chain-not-searchable"]]
	}
}

test_reverse_chains_must_stay_in_the_patients_compartment if {
	every url in [
		"Observation?patient=123&_has:Observation:has-member:patient=999",
		"Observation?patient=123&_has:Observation:has-member:code=x",
		"Encounter?patient=123&_has:Observation:encounter:code=x",
		"Patient?_has:Observation:patient:_has:Provenance:target:agent=Practitioner/1",
	] {
		search_codes("patient/*.rs", url) == ["deny", null, ["chain-not-searchable"]]
	}
	search_codes("patient/*.rs", "Observation?patient=123&_has:Observation:has-member:patient=123") == ["allow", null, []]
	search_codes("patient/*.rs", "Patient?_has:Observation:patient:code=1234") == ["filter", [{"_id": "123"}], []]
	search_codes("patient/*.rs", "Patient?_has:Observation:performer:code=1234") == ["filter", [{"_id": "123"}], []]
}

test_chains_that_stay_in_the_compartment_or_reach_shared_data_are_allowed if {
	search_codes("patient/*.rs", "Observation?patient=123&has-member:Observation.patient=123") == ["allow", null, []]
	search_codes("patient/*.rs", "MedicationRequest?patient=123&medication.code=x") == ["allow", null, []]
	search_codes("patient/*.rs", "Observation?patient=123&subject:Patient.name=x") == ["allow", null, []]
	search_codes("patient/*.rs", "Observation?subject:Patient.organization.name=x") == ["filter", [{"patient": "Patient/123"}], []]
}

# A chain on one linking parameter is never combined with a narrowing alternative on another:
# subject:Patient.name=x narrowed to {performer: Patient/123} would reach another patient's name.
test_a_chained_linking_parameter_is_confined_itself if {
	search_codes("patient/*.rs", "Observation?subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs", "Observation?performer=Patient/123&subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs", "Observation?patient=123&performer:Patient.name=x") == ["filter", [{"performer": "Patient/123"}], []]
	search_codes("patient/*.rs", "Patient/123/Observation?subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs", "Observation?subject:Patient.name=x&performer:Patient.name=y") == ["filter", [{"patient": "Patient/123", "performer": "Patient/123"}], []]
	search_codes("patient/*.rs", "Basic?subject:Patient.name=x") == ["filter", [{"patient": "Patient/123"}], []]
}

test_chains_reach_what_other_grants_of_the_token_may_search if {
	search_codes("patient/*.rs user/Practitioner.rs", "Observation?patient=123&performer:Practitioner.name=Smith") == ["allow", null, []]
	search_codes("user/*.rs", "Observation?patient=999&has-member:Observation.code=x") == ["allow", null, []]
	search_codes("user/Observation.rs user/Patient.rs", "Observation?subject:Patient.name=x") == ["allow", null, []]

	# A user/ search is not confined, so a chain into a type searchable only in the compartment is not.
	search_codes("user/Observation.rs patient/Patient.rs", "Observation?subject:Patient.name=x") == ["deny", null, ["chain-not-searchable"]]
}

# Adding a user/ grant never removes what the patient/ grant's confined path allowed: the chain is
# refused on the user/ path only, and the patient/ path still answers with its narrowing.
test_chains_keep_the_patient_path_when_a_user_grant_is_added if {
	search_codes("patient/*.rs user/Observation.rs", "Observation?subject:Patient.organization.name=x") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs user/Condition.rs", "Patient/123/Condition?patient.birthdate=1990") == ["filter", [{"patient": "Patient/123"}], []]
	search_codes("patient/*.rs user/Patient.rs", "Patient?_has:Observation:patient:code=1234") == ["filter", [{"_id": "123"}], []]
	search_codes("user/Observation.rs user/Patient.rs patient/*.rs", "Observation?subject:Patient.name=x") == ["allow", null, []]
}

test_chains_through_types_searchable_only_within_constraints_are_refused if {
	scopes := concat("", ["user/Observation.rs?category=", lab])
	search_codes(scopes, "Observation?category=laboratory&has-member:Observation.code=x") == ["deny", null, ["chain-not-searchable"]]
	search_codes(scopes, "Observation?_has:Observation:has-member:code=x") == ["deny", null, ["chain-not-searchable"]]
}

# --- The filter step decides every entry (L5) ---------------------------------------------------

history_bundle(entries) := {"resourceType": "Bundle", "type": "history", "entry": entries}

drops(d) := {[x.index, x.reason] | some x in d.drop}

test_every_response_entry_is_decided_and_unchecked_entries_are_dropped if {
	resp := history_bundle([
		{"fullUrl": "https://fhir.example/Observation/o999", "request": {"method": "DELETE", "url": "Observation/o999"}, "response": {"status": "204"}},
		{"resource": "junk"},
		42,
		{"response": {"status": "200 OK"}},
		{"fullUrl": "https://fhir.example/Observation/o1", "resource": obs("o1", "123")},
		{"resource": obs("o1", "123"), "response": {"outcome": {"resourceType": "Basic", "id": "b1"}}},
	])
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": resp})
	d.decision == "filter"
	drops(d) == {[0, "entry-unchecked"], [1, "unreadable-resource"], [2, "entry-malformed"], [5, "entry-reference-mismatch"]}
	d.keep == ["entry[3]", "Observation/o1"]
}

test_entries_naming_another_resource_than_they_carry_are_dropped if {
	own := obs("o1", "123")
	resp := searchset([own])
	every entry in [
		{"fullUrl": "https://fhir.example/Observation/o999", "resource": own},
		{"fullUrl": "Observation/o999", "resource": own},
		{"fullUrl": 7, "resource": own},
		{"response": {"location": "Observation/o999/_history/2"}, "resource": own},
		{"request": {"method": "PUT", "url": "Observation/o999"}, "resource": own},
		{"request": {"method": "PUT", "url": "Observation?patient=999"}, "resource": own},
		{"request": {"method": "POST", "url": "Patient"}, "resource": own},
	] {
		d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": object.union(resp, {"entry": [entry]})})
		drops(d) == {[0, "entry-reference-mismatch"]}
	}
	every entry in [
		{"fullUrl": "https://fhir.example/fhir/Observation/o1", "resource": own},
		{"fullUrl": "urn:uuid:0d1a7a46-9b3f-4f5e-8f4e-2d7c9b0f1a11", "resource": own},
		{"response": {"location": "Observation/o1/_history/2"}, "resource": own},
		{"request": {"method": "PUT", "url": "Observation/o1"}, "resource": own},
		{"request": {"method": "POST", "url": "Observation"}, "resource": own},
	] {
		d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": object.union(resp, {"entry": [entry]})})
		d.keep == ["Observation/o1"]
	}
}

test_a_bundle_whose_entry_is_not_a_list_is_refused if {
	resp := {"resourceType": "Bundle", "type": "searchset", "entry": {"resource": obs("o9", "999")}}
	d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": resp})
	d.decision == "deny"
	d.status == 500
	d.reasons[0].code == "response-malformed"
	b := decide("patient/Observation.rs", p123, bundle("batch", [{"request": {"method": "GET", "url": "Observation?patient=123"}}]), {"response": resp})
	b.reasons[0].code == "response-malformed"
}

# A history deletion names a resource without carrying it: kept only for the instance the request
# was decided on, with its stored resource.
test_history_deletions_are_kept_only_for_the_checked_instance if {
	resp := history_bundle([
		{"fullUrl": "https://fhir.example/Observation/o1", "request": {"method": "DELETE", "url": "Observation/o1"}},
		{"fullUrl": "https://fhir.example/Observation/o2", "request": {"method": "DELETE", "url": "Observation/o2"}},
	])
	d := decide("patient/Observation.r", p123, get("Observation/o1/_history"), {"resource": obs("o1", "123"), "response": resp})
	d.keep == ["entry[0]"]
	drops(d) == {[1, "entry-unchecked"]}
	n := decide("patient/Observation.r", p123, get("Observation/o1/_history"), {"response": resp})
	n.keep == []
}

# A batch-response entry without a resource may name what its request entry targeted (a created
# resource's location), if that entry was not denied; nothing else.
test_batch_response_locations_are_checked_against_their_request_entries if {
	req := bundle("batch", [
		{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")},
		{"request": {"method": "GET", "url": "Patient/999"}},
		{"request": {"method": "POST", "url": "Observation"}, "resource": obs(null, "123")},
		{"request": {"method": "DELETE", "url": "Observation/o1"}},
	])
	resp := {"resourceType": "Bundle", "type": "batch-response", "entry": [
		{"response": {"status": "201 Created", "location": "Observation/n1/_history/1"}},
		{"response": {"status": "404 Not Found", "location": "Patient/999"}},
		{"response": {"status": "201 Created", "location": "Patient/999/_history/1"}},
		{"response": {"status": "204 No Content"}},
	]}
	d := decide("patient/*.cruds", p123, req, {"response": resp})
	d.keep == ["entry[0]", "entry[3]"]
	drops(d) == {[1, "entry-unchecked"], [2, "entry-unchecked"]}
}

inner(entries) := {"resourceType": "Bundle", "id": "b1", "type": "searchset", "entry": entries}

test_nested_bundles_are_released_only_when_every_entry_is_checked if {
	ok := inner([{"fullUrl": "https://fhir.example/Observation/o1", "resource": obs("o1", "123")}, {"search": {"mode": "outcome"}}])
	every b in [
		inner([{"fullUrl": "https://fhir.example/Observation/o999", "request": {"method": "DELETE", "url": "Observation/o999"}}]),
		inner([{"fullUrl": "https://fhir.example/Observation/o999", "resource": obs("o1", "123")}]),
		inner(["junk"]),
		object.union(inner([]), {"entry": {"resource": obs("o9", "999")}}),
	] {
		d := decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([b])})
		drops(d) == {[0, "nested-bundle-hidden"]}
	}
	decide("patient/Observation.rs", p123, get("Observation?patient=123"), {"response": searchset([ok])}).keep == ["Bundle/b1"]
}
