package smart.access.writes_test

# Writes, request bodies and references (security review H1, H2, M2, M3, M4, L6, L10).

import data.smart.access
import data.smart.api
import data.smart.request

p123 := {"patient": "123"}

user := {"fhirUser": "Practitioner/9"}

# These cases use user/ scopes as unconfined grants, as they were written before the user access
# model: they run with policy.user.access: server (the model itself is tested in policies/user and
# policies/access/user_access_test.rego). Scope hints are checked for every client, registered or
# not (issue 15 has its own tests).
decide(scope, ctx, req, extra) := d if {
	d := api.decision with input as object.union({"claims": object.union(ctx, {"scope": scope}), "request": req}, extra)
		with data.config.user.access as "server"
		with data.config.outcome.hint_without_registration as true
}

code(d) := d.reasons[0].code

ref(r) := {"reference": r}

obs(id, patient) := obs_ref(id, concat("/", ["Patient", patient]))

obs_ref(id, subject) := {"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}, "subject": ref(subject)}

new_obs(subject, performers) := {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": ref(subject), "performer": performers}

post(t, body) := {"method": "POST", "url": t, "body": body}

put(url, body) := {"method": "PUT", "url": url, "body": body}

ehr := {"fhir": {"base_urls": ["https://ehr.example.org/fhir"]}}

# --- H1: a write names no patient but the one in context ---------------------------------------

test_a_created_resource_names_only_the_patient_in_context if {
	# the review's reproduction: subject another patient, performer the context patient
	d := decide("patient/Observation.crus", p123, post("Observation", new_obs("Patient/999", [ref("Patient/123")])), {})
	d.status == 403
	code(d) == "body-links-other-patient"

	# every element of an array, every linking element
	code(decide("patient/Observation.c", p123, post("Observation", new_obs("Patient/123", [ref("Practitioner/7"), ref("Patient/999")])), {})) == "body-links-other-patient"
	decide("patient/Observation.c", p123, post("Observation", new_obs("Patient/123", [ref("Practitioner/7"), ref("RelatedPerson/r1"), {"display": "Dr X"}])), {}).decision == "allow"
	comm := {"resourceType": "Communication", "status": "completed", "subject": ref("Patient/123"), "recipient": [ref("Practitioner/7"), ref("Patient/999")]}
	code(decide("patient/Communication.c", p123, post("Communication", comm), {})) == "body-links-other-patient"
	cov := {"resourceType": "Coverage", "status": "active", "beneficiary": ref("Patient/123"), "subscriber": ref("Patient/999"), "payor": [ref("Organization/o1")]}
	code(decide("patient/Coverage.c", p123, post("Coverage", cov), {})) == "body-links-other-patient"
	group := {"resourceType": "Group", "type": "person", "actual": true, "member": [{"entity": ref("Patient/123")}, {"entity": ref("Patient/999")}]}
	code(decide("patient/Group.c", p123, post("Group", group), {})) == "body-links-other-patient"
	deep := {"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": ref("Patient/123"), "activity": [{"detail": {"status": "scheduled", "performer": [ref("Patient/999")]}}]}
	code(decide("patient/CarePlan.c", p123, post("CarePlan", deep), {})) == "body-links-other-patient"
}

test_an_update_moves_nothing_between_patients if {
	moved := put("Observation/o1", object.union(obs("o1", "999"), {"performer": [ref("Patient/123")]}))
	d := decide("patient/Observation.crus", p123, moved, {"resource": obs("o1", "123")})
	d.decision == "deny"
	code(d) == "body-links-other-patient"

	# the same through a conditional update
	cond := put("Observation?identifier=x", object.union(new_obs("Patient/123", [ref("Patient/999")]), {}))
	code(decide("patient/Observation.us", p123, cond, {})) == "body-links-other-patient"
}

test_references_that_cannot_be_resolved_are_refused_in_linking_elements if {
	every r in [
		"patient/999", " Patient/999", "Patient/999 ", "Patient//999", "Patient/999/x",
		"Patient?identifier=urn:mrn|999", "#missing", "urn:uuid:6b7c", "ftp://x/Patient/999", "/Patient/999",
	] {
		code(decide("patient/Observation.c", p123, post("Observation", new_obs("Patient/123", [ref(r)])), {})) == "body-link-unverifiable"
	}
	every performer in [
		{"identifier": {"system": "urn:mrn", "value": "999"}},
		{"identifier": {"system": "urn:mrn", "value": "999"}, "type": "Patient"},
		{"reference": "Practitioner/7", "type": "Patient"},
		{"reference": 7},
		"Patient/999",
	] {
		code(decide("patient/Observation.c", p123, post("Observation", new_obs("Patient/123", [performer])), {})) == "body-link-unverifiable"
	}

	# not a patient: a logical reference typed as another resource, a conditional Practitioner
	ok := [{"identifier": {"value": "7"}, "type": "Practitioner"}, ref("Practitioner?identifier=urn:npi|7"), {"reference": "Patient/123", "type": "Patient"}]
	decide("patient/Observation.c", p123, post("Observation", new_obs("Patient/123", ok)), {}).decision == "allow"
}

test_contained_resources_are_held_to_the_same_rule if {
	pr := {"resourceType": "Practitioner", "id": "pr1"}
	body := object.union(new_obs("Patient/123", [ref("#pr1")]), {"contained": [pr]})
	decide("patient/Observation.c", p123, post("Observation", body), {}).decision == "allow"
	other := object.union(new_obs("Patient/123", [ref("#p1")]), {"contained": [{"resourceType": "Patient", "id": "p1"}]})
	code(decide("patient/Observation.c", p123, post("Observation", other), {})) == "body-links-other-patient"
	nested := object.union(new_obs("Patient/123", []), {"contained": [obs("c1", "999")]})
	code(decide("patient/Observation.c", p123, post("Observation", nested), {})) == "body-links-other-patient"
	twice := object.union(new_obs("Patient/123", [ref("#x")]), {"contained": [object.union(pr, {"id": "x"}), {"resourceType": "Patient", "id": "x"}]})
	code(decide("patient/Observation.c", p123, post("Observation", twice), {})) == "body-link-unverifiable"
	bad := object.union(new_obs("Patient/123", []), {"contained": ["Patient/999"]})
	code(decide("patient/Observation.c", p123, post("Observation", bad), {})) == "body-link-unverifiable"
}

test_absolute_references_name_this_servers_patient_only_on_a_configured_base if {
	foreign := post("Observation", new_obs("Patient/123", [ref("https://elsewhere.example/fhir/Patient/123")]))
	code(decide("patient/Observation.c", p123, foreign, {})) == "body-links-other-patient"
	local := post("Observation", new_obs("Patient/123", [ref("https://ehr.example.org/fhir/Patient/123")]))
	code(decide("patient/Observation.c", p123, local, {})) == "body-links-other-patient"
	d := decide("patient/Observation.c", p123, local, {}) with data.config as ehr
	d.decision == "allow"
	only_foreign := post("Observation", new_obs("https://elsewhere.example/fhir/Patient/123", []))
	code(decide("patient/Observation.c", p123, only_foreign, {})) == "body-outside-compartment"
	practitioner := post("Observation", new_obs("Patient/123", [ref("https://elsewhere.example/fhir/Practitioner/7")]))
	decide("patient/Observation.c", p123, practitioner, {}).decision == "allow"
}

test_the_patient_resource_links_no_other_patient if {
	own := {"resourceType": "Patient", "id": "123", "link": [{"other": ref("RelatedPerson/r1"), "type": "seealso"}]}
	decide("patient/Patient.u", p123, put("Patient/123", own), {"resource": own}).decision == "allow"
	linked := {"resourceType": "Patient", "id": "123", "link": [{"other": ref("Patient/999"), "type": "seealso"}]}
	code(decide("patient/Patient.u", p123, put("Patient/123", linked), {})) == "body-links-other-patient"
	stored := object.union(own, {"link": [{"other": ref("Patient/999"), "type": "replaces"}]})
	code(decide("patient/Patient.u", p123, put("Patient/123", own), {"resource": stored})) == "resource-links-other-patient"
	decide("patient/Patient.r", p123, {"method": "GET", "url": "Patient/123"}, {"resource": stored}).decision == "allow"
	code(decide("patient/Patient.u", p123, {"method": "PUT", "url": "Patient/123"}, {})) == "body-outside-compartment"
}

test_a_stored_resource_shared_with_another_patient_is_read_only if {
	stored := {"resourceType": "Communication", "id": "m1", "status": "completed", "subject": ref("Patient/123"), "recipient": [ref("Patient/999")]}
	decide("patient/Communication.r", p123, {"method": "GET", "url": "Communication/m1"}, {"resource": stored}).decision == "allow"
	own := object.union(stored, {"recipient": [ref("Practitioner/7")]})
	every req in [
		put("Communication/m1", own),
		{"method": "DELETE", "url": "Communication/m1"},
		{"method": "PATCH", "url": "Communication/m1", "body": [{"op": "replace", "path": "/status", "value": "stopped"}]},
	] {
		d := decide("patient/Communication.rud", p123, req, {"resource": stored})
		d.status == 403
		code(d) == "resource-links-other-patient"
	}
	unverifiable := object.union(stored, {"recipient": [{"identifier": {"value": "x"}}]})
	code(decide("patient/Communication.d", p123, {"method": "DELETE", "url": "Communication/m1"}, {"resource": unverifiable})) == "resource-link-unverifiable"
}

test_a_patch_cannot_add_a_patient_link if {
	stored := obs("o1", "123")
	every ops in [
		[{"op": "add", "path": "/performer/-", "value": ref("Patient/999")}],
		[{"op": "add", "path": "/performer", "value": [ref("Patient/999")]}],
		[{"op": "add", "path": "/contained/-", "value": obs("c1", "999")}],
		[{"op": "copy", "from": "/focus/0", "path": "/performer/0"}],
	] {
		code(decide("patient/Observation.u", p123, {"method": "PATCH", "url": "Observation/o1", "body": ops}, {"resource": stored})) == "patch-touches-compartment-link"
	}
	add := {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
		{"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Observation"},
		{"name": "name", "valueString": "performer"}, {"name": "value", "valueReference": ref("Patient/999")},
	]}]}
	code(decide("patient/Observation.u", p123, {"method": "PATCH", "url": "Observation/o1", "body": add}, {"resource": stored})) == "patch-touches-compartment-link"
}

test_transaction_entries_resolve_bundle_local_references if {
	patient := {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "123"}, "request": {"method": "PUT", "url": "Patient/123"}}
	o := {"fullUrl": "urn:uuid:o", "resource": new_obs("Patient/123", [ref("urn:uuid:p")]), "request": {"method": "POST", "url": "Observation"}}
	tx := {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "transaction", "entry": [patient, o]}}
	[e.decision | some e in decide("patient/Patient.u patient/Observation.c", p123, tx, {}).entries] == ["filter", "allow"]

	# an entry of another type needs no id (it is being created); a new Patient is another patient
	pr := {"fullUrl": "urn:uuid:pr", "resource": {"resourceType": "Practitioner"}, "request": {"method": "POST", "url": "Practitioner"}}
	o2 := object.union(o, {"resource": new_obs("Patient/123", [ref("urn:uuid:pr")])})
	tx2 := {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "transaction", "entry": [pr, o2]}}
	decide("user/Practitioner.c patient/Observation.c", object.union(p123, user), tx2, {}).decision == "allow"
	np := {"fullUrl": "urn:uuid:np", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
	o3 := object.union(o, {"resource": new_obs("Patient/123", [ref("urn:uuid:np")])})
	tx3 := decide("system/Patient.c patient/Observation.c", p123, {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "transaction", "entry": [np, o3]}}, {})
	code(tx3.entries[1]) == "body-links-other-patient"

	# in a batch, entries are independent: the reference cannot be resolved
	batch := {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "batch", "entry": [patient, o]}}
	b := decide("patient/Patient.u patient/Observation.c", p123, batch, {})
	code(b.entries[1]) == "body-link-unverifiable"

	# another patient's entry; a repeated fullUrl is ambiguous
	other := object.union(patient, {"resource": {"resourceType": "Patient", "id": "999"}, "request": {"method": "PUT", "url": "Patient/999"}})
	t2 := decide("patient/Patient.u patient/Observation.c", p123, {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "transaction", "entry": [other, o]}}, {})
	t2.decision == "deny"
	code(t2.entries[1]) == "body-links-other-patient"
	t3 := decide("patient/Patient.u patient/Observation.c", p123, {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "transaction", "entry": [patient, patient, o]}}, {})
	code(t3.entries[2]) == "body-link-unverifiable"
}

test_constrained_grants_check_the_body_of_the_url_type if {
	s := "user/Observation.cu?category=laboratory"
	lab := {"category": [{"coding": [{"code": "laboratory"}]}]}
	decide(s, user, post("Observation", object.union(new_obs("Patient/1", []), lab)), {}).decision == "allow"
	code(decide(s, user, post("Observation", object.union({"resourceType": "Condition", "subject": ref("Patient/1")}, lab)), {})) == "body-mismatch"
	code(decide(s, user, post("Observation", new_obs("Patient/1", [])), {})) == "body-outside-constraint"
}

# --- H2: nested bundles, and interactions that need no letters ---------------------------------

bundle(type, entries) := {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": type, "entry": entries}}

inner := {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "DELETE", "url": "Patient/999"}}]}

test_a_bundle_in_an_entry_is_refused_whatever_its_url if {
	every url in ["", "/", "?", "/?", "?_format=json", "?anything", "%3F", "%3F_format=json", "Observation", "Bundle"] {
		d := decide("patient/*.cruds", p123, bundle("batch", [{"request": {"method": "POST", "url": url}, "resource": inner}]), {})
		d.decision == "deny"
		code(d.entries[0]) == "nested-batch"
	}
	every t in ["batch", "transaction", "collection", "document", "searchset"] {
		d := decide("user/*.cruds", user, bundle("transaction", [{"request": {"method": "POST", "url": "?"}, "resource": object.union(inner, {"type": t})}]), {})
		d.decision == "deny"
		code(d.entries[0]) == "nested-batch"
	}

	# storing a Bundle resource is a create of type Bundle, not a nested batch
	doc := {"resourceType": "Bundle", "type": "document", "entry": []}
	decide("user/Bundle.c", user, bundle("batch", [{"request": {"method": "POST", "url": "Bundle"}, "resource": doc}]), {}).entries[0].decision == "allow"
	decide("user/Bundle.u", user, bundle("batch", [{"request": {"method": "PUT", "url": "Bundle/b1"}, "resource": object.union(doc, {"id": "b1"})}]), {}).entries[0].reasons[0].code == "stored-resource-not-supplied"
}

test_batch_entries_are_never_skipped if {
	d := decide("patient/Observation.rs", p123, bundle("batch", ["x", 5, null, [], {"request": {"method": "GET", "url": "Observation?patient=123"}}]), {})
	[e.decision | some e in d.entries] == ["deny", "deny", "deny", "deny", "allow"]
	code(d.entries[0]) == "entry-malformed"
	t := decide("patient/Observation.rs", p123, bundle("transaction", [{"request": {"method": "GET", "url": "Observation?patient=123"}}, 7]), {})
	t.decision == "deny"
}

test_an_interaction_needing_no_letters_is_allowed_only_when_public if {
	decide("", {}, {"method": "GET", "url": "metadata"}, {}).decision == "allow"
	decide("", {}, {"method": "HEAD", "url": ".well-known/smart-configuration"}, {}).decision == "allow"
	decide("patient/Observation.rs", p123, bundle("batch", [{"request": {"method": "GET", "url": "metadata"}}]), {}).entries[0].decision == "allow"
	c := request.classify({"method": "POST", "url": "?", "body": inner})
	c.letters == []
	v := access.decide(c, {}, null) with input as {"claims": {"scope": "patient/*.cruds", "patient": "123"}}
	v.decision == "deny"
	v.reason.code == "interaction-not-permitted"
	not access.complete_all_of([], 0)
}

# --- M2: the body is of the URL's type, and an update names the URL's id -----------------------

test_the_submitted_resource_must_be_of_the_url_type if {
	every scope in ["patient/Observation.c", "user/Observation.c", "system/*.cruds"] {
		every body in [
			{"resourceType": "Patient", "id": "123", "name": [{"family": "x"}]},
			{"resourceType": "Condition", "subject": ref("Patient/123")},
			{"status": "final", "subject": ref("Patient/123")},
			{"resourceType": ["Observation"], "subject": ref("Patient/123")},
			"<Observation/>",
			false,
			[],
		] {
			d := decide(scope, object.union(p123, user), post("Observation", body), {})
			d.status == 400
			code(d) == "body-mismatch"
		}
	}
	code(decide("patient/Patient.u patient/Observation.u", p123, put("Patient/123", obs("123", "999")), {})) == "body-mismatch"
	code(decide("user/Observation.us", user, put("Observation?identifier=x", {"resourceType": "Condition"}), {})) == "body-mismatch"
}

test_an_update_carries_the_id_of_the_url if {
	code(decide("user/Observation.u", user, put("Observation/o1", obs("o2", "1")), {})) == "body-mismatch"
	code(decide("user/Observation.u", user, put("Observation/o1", object.remove(obs("o1", "1"), ["id"])), {})) == "body-mismatch"
	code(decide("patient/Patient.u", p123, put("Patient/123", {"resourceType": "Patient", "id": "999"}), {})) == "body-mismatch"
	decide("user/Observation.u", user, put("Observation/o1", obs("o1", "1")), {"resource": obs("o1", "1")}).decision == "allow"
	decide("user/Observation.us", user, put("Observation?identifier=x", object.remove(obs("o1", "1"), ["id"])), {}).decision == "allow"
}

test_an_absent_body_is_decided_on_what_is_known if {
	# the plain REST endpoint checks the type itself; nothing the grant depends on is unseen
	decide("user/Observation.c", user, {"method": "POST", "url": "Observation"}, {}).decision == "allow"
	code(decide("patient/Observation.c", p123, {"method": "POST", "url": "Observation"}, {})) == "body-outside-compartment"
}

test_batch_entries_carry_a_resource_of_their_url_type if {
	entries := [
		{"request": {"method": "POST", "url": "Observation"}, "resource": {"resourceType": "Patient"}},
		{"request": {"method": "PUT", "url": "Observation/o1"}, "resource": obs("o2", "123")},
		{"request": {"method": "POST", "url": "Observation"}},
		{"request": {"method": "PUT", "url": "Observation/o1"}, "resource": "x"},
		{"request": {"method": "POST", "url": "Observation"}, "resource": new_obs("Patient/123", [])},
	]
	d := decide("user/*.cruds", user, bundle("batch", entries), {})
	[e.decision | some e in d.entries] == ["deny", "deny", "deny", "deny", "allow"]
	every e in array.slice(d.entries, 0, 4) {
		code(e) == "body-mismatch"
	}
}

# --- M3: If-None-Exist as a string or a list ----------------------------------------------------

cond_create(headers) := {"method": "POST", "url": "Observation", "headers": headers, "body": new_obs("Patient/123", [])}

test_if_none_exist_as_a_list_is_a_conditional_create if {
	every h in [
		{"if-none-exist": ["patient=999&code=http://loinc.org|75622-1"]},
		{"If-None-Exist": "patient=999"},
		{"IF-NONE-EXIST": ["", "patient=999"]},
		{"if-none-exist": "patient=999", "If-None-Exist": ["patient=999"]},
	] {
		code(decide("patient/Observation.crs", p123, cond_create(h), {})) == "search-other-patient"
	}
	decide("patient/Observation.crs", p123, cond_create({"if-none-exist": ["patient=123"]}), {}).decision == "allow"
	decide("patient/Observation.c", p123, cond_create({"if-none-exist": ["patient=123"]}), {}).required_scopes == ["patient/Observation.s"]
	every h in [{"if-none-exist": []}, {"if-none-exist": ""}, {"if-none-exist": [""]}, {}] {
		decide("patient/Observation.c", p123, cond_create(h), {}).decision == "allow"
	}
}

test_if_none_exist_of_another_kind_or_with_several_searches_is_a_400 if {
	every h in [
		{"if-none-exist": 5},
		{"if-none-exist": null},
		{"if-none-exist": {"patient": "123"}},
		{"if-none-exist": ["patient=123", 5]},
		{"if-none-exist": ["patient=123", "patient=999"]},
		{"if-none-exist": "patient=123", "If-None-Exist": "code=x"},
	] {
		d := decide("patient/Observation.crs", p123, cond_create(h), {})
		d.status == 400
		code(d) == "request-unclassifiable"
	}
}

test_batch_entries_take_if_none_exist_as_a_list_too if {
	e := {"request": {"method": "POST", "url": "Observation", "ifNoneExist": ["patient=999"]}, "resource": new_obs("Patient/123", [])}
	code(decide("patient/Observation.crs", p123, bundle("batch", [e]), {}).entries[0]) == "search-other-patient"
	bad := {"request": {"method": "POST", "url": "Observation", "ifNoneExist": 1}, "resource": new_obs("Patient/123", [])}
	decide("patient/Observation.crs", p123, bundle("batch", [bad]), {}).entries[0].status == 400
}

# --- M4: a PATCH is decided only on a body the policy can read ----------------------------------

test_a_patch_without_a_readable_body_is_refused if {
	stored := obs("o1", "123")
	every scope_ctx in [["patient/Observation.ru", p123], ["user/Observation.ru", user], ["user/Observation.ru?category=laboratory", user]] {
		every req in [
			{"method": "PATCH", "url": "Observation/o1"},
			{"method": "PATCH", "url": "Observation/o1", "body": null},
			{"method": "PATCH", "url": "Observation/o1", "body": false},
			{"method": "PATCH", "url": "Observation/o1", "body": ""},
			{"method": "PATCH", "url": "Observation/o1", "body": "<diff/>"},
			{"method": "PATCH", "url": "Observation/o1", "body": {"op": "replace", "path": "/status", "value": "x"}},
			{"method": "PATCH", "url": "Observation/o1", "body": [{"op": "replace", "value": "x"}]},
			{"method": "PATCH", "url": "Observation/o1", "body": [{"op": "rewrite", "path": "/status"}]},
			{"method": "PATCH", "url": "Observation/o1", "body": ["replace /status"]},
			{"method": "PATCH", "url": "Observation/o1", "body": {"resourceType": "Parameters", "parameter": [{"name": "other"}]}},
			{"method": "PATCH", "url": "Observation/o1", "body": {"resourceType": "Parameters", "parameter": {"name": "operation", "part": []}}},
			{"method": "PATCH", "url": "Observation?identifier=x"},
		] {
			d := decide(scope_ctx[0], scope_ctx[1], req, {"resource": stored})
			d.decision == "deny"
			code(d) == "patch-body-unavailable"
		}
	}
	decide("user/Observation.u", user, {"method": "PATCH", "url": "Observation/o1", "body": [{"op": "replace", "path": "/status", "value": "amended"}]}, {"resource": stored}).decision == "allow"
	decide("user/Observation.u", user, {"method": "PATCH", "url": "Observation/o1", "body": {"resourceType": "Parameters"}}, {"resource": stored}).decision == "allow"
}

# --- L6: a vread is decided on the version it names ---------------------------------------------

test_a_vread_is_decided_on_the_version_it_names if {
	v2 := object.union(obs("o1", "123"), {"meta": {"versionId": "2"}})
	decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1/_history/2"}, {"resource": v2}).decision == "allow"
	every r in [v2, obs("o1", "123"), object.union(obs("o1", "123"), {"meta": {"versionId": 1}})] {
		d := decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1/_history/1"}, {"resource": r})
		d.status == 400
		code(d) == "resource-mismatch"
	}
	decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1/_history/1"}, {}).decision == "filter"
	decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1"}, {"resource": v2}).decision == "allow"
}

# --- L10: another server's patient is not this patient -----------------------------------------

test_another_servers_patient_is_not_in_this_patients_compartment if {
	foreign := obs_ref("o1", "https://other-ehr.example.net/fhir/Patient/123")
	d := decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1"}, {"resource": foreign})
	d.status == 404
	code(d) == "not-in-compartment"
	local := obs_ref("o1", "https://ehr.example.org/fhir/Patient/123")
	decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1"}, {"resource": local}).status == 404
	l := decide("patient/Observation.r", p123, {"method": "GET", "url": "Observation/o1"}, {"resource": local}) with data.config as ehr
	l.decision == "allow"
}

test_a_search_naming_another_servers_patient_is_not_confined if {
	every url in ["Observation?subject=http://other/fhir/Patient/123", "Observation?patient=https://other.example/fhir/Patient/123"] {
		code(decide("patient/Observation.rs", p123, {"method": "GET", "url": url}, {})) == "search-other-patient"
	}
	d := decide("patient/Observation.rs", p123, {"method": "GET", "url": "Observation?patient=https://ehr.example.org/fhir/Patient/123"}, {}) with data.config as ehr
	d.decision == "allow"
}
