# METADATA
# title: Entry points
# description: |
#   The decision contract (v1): `smart/api/decision` turns an input document
#   {claims, request, resource?, response?, now?} into a decision document; `smart/api/scopes`
#   parses {"scope": "…"}. Hosts in every language call these two entry points.
package smart.api

import data.smart.access
import data.smart.config
import data.smart.grant
import data.smart.label
import data.smart.lib.fhir
import data.smart.outcome
import data.smart.request
import data.smart.scope
import data.smart.verdict

contract_version := "1"

# METADATA
# title: scopes
# description: |
#   Entry point: the parse of input.scope, every token with its meaning or error.
# entrypoint: true
scopes := scope.parse_all(input.scope)

# METADATA
# title: decision
# description: |
#   Entry point: the decision document for input. A denial names a scope only where that scope
#   would work and the client may obtain it (hints.rego).
# entrypoint: true
decision := hinted(unhinted)

# The decision before its scope hints are checked (hints.rego re-decides it with a candidate).
unhinted := document(verdict.deny(400, "input-invalid", input_problem), {}) if {
	input_problem
} else := batch_decision if {
	classified.interaction in {"batch", "transaction"}
} else := audited(search_body_guard(classified_decision(classified, input.request, object.get(input, "resource", null), object.get(input, "response", null))))

# The input request, classified once (a rule is evaluated once per query; a function call is not).
classified := request.classify(input.request)

input_problem := "input must be a JSON object with 'claims' and 'request' objects" if {
	not fhir.object_member(input, "claims")
} else := "input must be a JSON object with 'claims' and 'request' objects" if {
	not fhir.object_member(input, "request")
}

# --- One interaction ----------------------------------------------------------------------

classified_decision(c, _, _, _) := document(verdict.deny(400, "request-unclassifiable", c.error), {}) if c.error

classified_decision(c, req, resource, response) := verdict_document(
	object.union(c, {"stored_resource": is_object(resource)}),
	decided(c, req, resource),
	resource,
	response,
) if {
	not c.error
}

# The decision document for a verdict, computed once: with a server response to check, or alone.
verdict_document(c, v, _, response) := response_decision(c, v, response) if checks_response(v, response)

verdict_document(c, v, resource, response) := with_stored_resource_note(document(v, c), c, resource) if {
	not checks_response(v, response)
}

checks_response(v, response) if {
	v.decision != "deny"
	is_object(response)
}

# Scopes first, then the stored instance's security labels. A write by id (update, patch, delete)
# changes a stored resource whose labels only the stored resource shows: without it, no narrowing
# can stand in for that check (a conditional write would still change a labelled record), so it is
# allowed only once decided again with the stored resource.
decided(c, req, resource) := unseen_write_verdict(access.decide(c, req, resource)) if {
	c.level == "instance"
	c.interaction in access.write_interactions
	resource == null
	not access.creates_absent_resource(c)
} else := access.label_gate(access.decide(c, req, resource), resource, access.label_letters(c)) if {
	c.level == "instance"
} else := access.decide(c, req, resource)

unseen_write_verdict(v) := v if v.decision == "deny"

unseen_write_verdict(v) := verdict.filter([{}]) if v.decision != "deny"

# An instance interaction decided without the stored resource says so: it is allowed only in the
# narrowed form (as a conditional interaction, or by checking the response).
with_stored_resource_note(d, c, resource) := object.union(d, {"reasons": array.concat(d.reasons, [{
	"code": "stored-resource-not-supplied",
	"message": stored_resource_message(d),
}])}) if {
	d.decision == "filter"
	c.level == "instance"
	resource == null
} else := d

filter_response(d) if {
	some o in object.get(d, "obligations", [])
	o.type == "filter-response"
}

stored_resource_message(d) := "the stored resource was not supplied: allowed only where it matches `narrow` (use a conditional interaction or check the response with the filter step)" if {
	d.narrow
} else := "the stored resource was not supplied: a write by id is decided only on the stored resource it changes (its patient links and security labels); decide again with it as `resource`" if {
	not filter_response(d)
} else := "the stored resource was not supplied: allowed only by checking the response with the filter step (this interaction cannot be narrowed)"

# METADATA
# title: document
# description: |
#   The contract's decision document for a verdict: allow, filter with `narrow`, or deny with
#   status, reasons, required_scopes and an OperationOutcome. Malformed scopes are always reported.
document(v, c) := object.union(
	{"decision": "allow", "reasons": scope_reasons},
	obligations(c),
) if {
	v.decision == "allow"
} else := object.union(
	{"decision": "filter", "narrow": v.narrow, "reasons": scope_reasons},
	obligations(c),
) if {
	v.decision == "filter"
	count(v.narrow) > 0
	v.narrow != [{}]
} else := object.union({"decision": "filter", "reasons": scope_reasons}, obligations(c)) if {
	v.decision == "filter"
} else := object.union(
	{
		"decision": "deny",
		"status": v.status,
		"reasons": array.concat([v.reason], scope_reasons),
		"outcome": outcome.for_deny(v),
	},
	required_scopes(v),
)

required_scopes(v) := {"required_scopes": v.required_scopes} if v.required_scopes

required_scopes(v) := {} if not v.required_scopes

scope_reasons := [{"code": "scope-invalid", "scope": e.scope, "message": e.error} | some e in grant.parsed.errors]

# METADATA
# title: obligations
# description: |
#   A decision that releases data the policy has not seen carries a `filter-response` obligation:
#   the host must send the response through the filter step and release only what it keeps.
#   That is every search and history (each entry may be another patient's or carry a security
#   label), every read or vread decided without the stored resource, and every operation whose
#   response holds stored resources ($everything, $export). Security labels cannot be switched
#   off (smart.label), so this holds in every configuration; searches with _include/_revinclude
#   would need it even without labels (included resources are checked like any other).
obligations(c) := {"obligations": [{"type": "filter-response", "reason": reason}]} if {
	reason := filter_response_reason(c)
} else := {}

filter_response_reason(c) := "the search includes related resources; release only what the filter step keeps" if {
	includes_related(c)
} else := "the response holds resources the policy has not seen (other patients' data, security labels); release only what the filter step keeps" if {
	releases_unseen(c)
}

includes_related(c) if {
	some p in object.get(c, "params", [])
	p.base in {"_include", "_revinclude"}
}

releases_unseen(c) if c.interaction in {
	"search-type", "search-system", "search-compartment",
	"history-type", "history-system", "history-instance",
}

releases_unseen(c) if {
	c.interaction in {"read", "vread"}
	not c.stored_resource
}

releases_unseen(c) if {
	c.interaction == "operation"
	access.operation_returns_resources(c)
}

# --- Response filtering -------------------------------------------------------------------

# METADATA
# title: response_decision
# description: |
#   With a server response: every resource in it (matches, includes, a single resource) is
#   checked on its own. A Bundle gives `keep`/`drop`; a single resource that may not be released
#   is a deny that reveals nothing (404 by default).
response_decision(c, v, response) := document(response_malformed, c) if {
	not bundle_entries_readable(response)
} else := object.union(document(v, c), {"keep": [], "drop": []}) if {
	response.resourceType == "Bundle"
	count(bundle_items(response)) == 0
} else := bundle_response(c, v, count(bundle_items(response)), linked_checks(bundle_items(response))) if {
	response.resourceType == "Bundle"
} else := single_response(c, v, response, access.response_visibility(c, response))

single_response(c, v, response, vis) := object.union(document(v, c), {"keep": [ref_of(response, -1)], "drop": []}) if {
	vis.decision == "allow"
} else := object.union(
	document(object.union(vis, {"status": hidden_status}), c),
	{"keep": [], "drop": [{"ref": ref_of(response, -1), "reason": vis.reason.code, "index": -1}]},
)

# METADATA
# title: linked_checks
# description: |
#   Every entry checked on its own, then those hidden only for being outside the compartment
#   looked up in an index of what the visible ones reference (smart.access linked.rego): first
#   the Provenance of visible resources, then the resources the visible ones and that Provenance
#   reference. Each entry is visited a fixed number of times: linear in the Bundle.
linked_checks(items) := [linked_check(x, items[i], index, provenance) | some i, x in direct] if {
	direct := [check_item(item) | some item in items]
	first := access.linked_index([items[i].resource | some i, x in direct; x.visible])
	provenance := {i |
		some i, x in direct
		linkable(x, items[i])
		items[i].resource.resourceType == "Provenance"
		access.linked_visibility(items[i].resource, first).decision == "allow"
	}
	index := access.linked_index_with(first, [items[i].resource | some i in provenance])
}

linkable(x, item) if {
	not x.visible
	x.reason in access.linkable_reasons
	access.may_link(item.resource)
}

# A Provenance already found visible is not decided again; lookups index the set (see linked.rego).
linked_check(x, item, index, provenance) := {"ref": x.ref, "index": x.index, "visible": true} if {
	provenance[item.index]
} else := resource_check(item, access.linked_visibility(item.resource, index)) if {
	linkable(x, item)
} else := x

hidden_status := data.smart.config.hidden_status

bundle_response(c, v, n, checked) := document(verdict.deny(500, "policy-incomplete", "not every response entry could be checked"), c) if {
	count(checked) != n
} else := bundle_split(c, v, [x.ref | some x in checked; x.visible], [{"ref": x.ref, "reason": x.reason, "index": x.index} | some x in checked; not x.visible])

bundle_split(c, v, keep, drop) := object.union(document(v, c), {"keep": keep, "drop": drop}) if {
	count(drop) == 0
} else := object.union(document(verdict.filter(object.get(v, "narrow", [])), c), {"keep": keep, "drop": drop})

# A Bundle's `entry` is a list, or absent; anything else cannot be checked entry by entry.
bundle_entries_readable(response) if response.resourceType != "Bundle"

bundle_entries_readable(response) if not present(response, "entry")

bundle_entries_readable(response) if is_array(response.entry)

response_malformed := verdict.deny(500, "response-malformed", "the response Bundle's entry is not a list, so its entries cannot be checked")

# Every entry of a Bundle, each decided: `resource` is set only when the entry holds one.
bundle_items(bundle) := [object.union({"index": i, "entry": e}, entry_resource(e)) | some i, e in bundle.entry] if {
	is_array(bundle.entry)
} else := []

entry_resource(e) := {"resource": e.resource} if is_object(e.resource)

else := {}

# An explicit JSON null holds nothing (FHIR JSON has no nulls).
present(x, k) if {
	is_object(x)
	object.get(x, k, null) != null
}

# METADATA
# title: check_item
# description: |
#   Whether one Bundle entry may be released. Nothing passes by default: an entry that is not an
#   object, whose `resource` is not one, or whose `fullUrl`, `request.url` or `response.location`
#   name another resource than the one it carries is dropped; an entry without a resource (a
#   history deletion, a batch-response status) is kept only when it names no resource, or only
#   the resource the request itself was decided on (smart.api `names_checked_target`).
check_item(item) := hidden_item(item, "entry-malformed") if {
	not is_object(item.entry)
} else := hidden_item(item, "unreadable-resource") if {
	present(item.entry, "resource")
	not item.resource
} else := resourceless_check(item) if {
	not present(item.entry, "resource")
} else := hidden_item(item, "entry-reference-mismatch") if {
	not entry_refs_consistent(item.entry)
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": true} if {
	item.resource.resourceType == "Bundle"
	bundle_visible(item.resource)
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": "nested-bundle-hidden"} if {
	item.resource.resourceType == "Bundle"
} else := r if {
	r := resource_check(item, access.visibility(item.resource))
} else := hidden_item(item, "unreadable-resource")

hidden_item(item, reason) := {"ref": ref_of(object.get(item, "resource", null), item.index), "index": item.index, "visible": false, "reason": reason}

resourceless_check(item) := {"ref": ref_of(null, item.index), "index": item.index, "visible": true} if {
	outcome_visible(item.entry)
	every ref in entry_named_refs(item.entry) {
		names_checked_target(ref, item.index)
	}
} else := hidden_item(item, "entry-unchecked")

# The references an entry makes besides its resource; a member of another JSON type is kept as
# it is, so that it matches nothing.
entry_named_refs(e) := [r |
	some path in [["fullUrl"], ["request", "url"], ["response", "location"]]
	r := object.get(e, path, null)
	r != null
]

# A resource's entry names only that resource: fullUrl (or a bundle-local urn:uuid:/urn:oid:),
# response.location (possibly versioned) and request.url (its type or itself, without a query).
entry_refs_consistent(e) if {
	outcome_visible(e)
	full_url_consistent(object.get(e, "fullUrl", null), e.resource)
	location_consistent(object.get(e, ["response", "location"], null), e.resource)
	request_url_consistent(object.get(e, ["request", "url"], null), e.resource)
}

full_url_consistent(null, _)

full_url_consistent(url, _) if {
	is_string(url)
	startswith(url, "urn:uuid:")
}

full_url_consistent(url, _) if {
	is_string(url)
	startswith(url, "urn:oid:")
}

full_url_consistent(url, r) if url_names(url, r.resourceType, r.id)

location_consistent(null, _)

location_consistent(url, r) if url_names(url, r.resourceType, r.id)

request_url_consistent(null, _)

request_url_consistent(url, r) if {
	is_string(url)
	not contains(url, "?")
	trim_prefix(url, "/") == r.resourceType
}

request_url_consistent(url, r) if {
	not contains(url, "?")
	url_names(url, r.resourceType, r.id)
}

# `url` names type/id: relative (t/id, t/id/_history/v) or an absolute URL ending so.
# The common spelling, an absolute URL ending in /<type>/<id>, without splitting it.
url_names(url, t, id) if {
	is_string(url)
	is_string(t)
	fhir.valid_id(id)
	some scheme in ["http://", "https://"]
	startswith(url, scheme)
	endswith(url, concat("/", ["", t, id]))
	not contains(url, "#")
} else if {
	is_string(id)
	id in url_ids(url, t)
}

url_ids(url, t) := {segments[(n - k) + 1] |
	is_string(url)
	is_string(t)
	segments := split(trim_prefix(split(url, "#")[0], "/"), "/")
	n := count(segments)
	some k in [2, 4]
	n >= k
	url_tail_ok(url, n, k)
	segments[n - k] == t
	fhir.valid_id(segments[(n - k) + 1])
	url_version_ok(segments, n, k)
}

url_tail_ok(_, n, k) if n == k

url_tail_ok(url, n, k) if {
	n > k
	some scheme in ["http://", "https://"]
	startswith(url, scheme)
}

url_version_ok(_, _, 2)

url_version_ok(segments, n, 4) if {
	segments[n - 2] == "_history"
	segments[n - 1] != ""
}

# An OperationOutcome in response.outcome is checked like any resource.
outcome_visible(e) if not present(object.get(e, "response", {}), "outcome")

outcome_visible(e) if access.visibility(e.response.outcome).decision == "allow"

# A resourceless entry may name the resource the request itself was decided on: in a
# batch/transaction response, what entry i of the request targeted (its type for a create),
# if that entry was not denied; in an instance interaction's response (history), the instance,
# if the decision was made on its stored resource.
names_checked_target(ref, index) if {
	classified.interaction in {"batch", "transaction"}
	req := entry_request(classified.entries[index])
	c := request.classify(req)
	not c.error
	not c.interaction in {"batch", "transaction"}
	access.decide(c, req, null).decision != "deny"
	entry_target_named(ref, c)
}

names_checked_target(ref, _) if {
	classified.level == "instance"
	input_resource
	url_names(ref, classified.type, classified.id)
}

entry_target_named(ref, c) if {
	c.level == "instance"
	url_names(ref, c.type, c.id)
}

entry_target_named(ref, c) if {
	c.interaction == "create"
	count(url_ids(ref, c.type)) > 0
}

resource_check(item, vis) := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": true} if {
	vis.decision == "allow"
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": vis.reason.code} if {
	vis.decision == "deny"
}

# A Bundle inside a response (e.g. a batch-response entry) is released only if every resource
# in it may be; deeper nesting is not inspected and so not released.
bundle_visible(resource) if {
	bundle_entries_readable(resource)
	every e in object.get(resource, "entry", []) {
		nested_visible(e)
	}
}

nested_visible(e) if {
	is_object(e)
	not present(e, "resource")
	count(entry_named_refs(e)) == 0
	outcome_visible(e)
}

nested_visible(e) if {
	e.resource.resourceType != "Bundle"
	entry_refs_consistent(e)
	access.visibility(e.resource).decision == "allow"
}

ref_of(resource, _) := concat("/", [resource.resourceType, resource.id]) if {
	is_string(resource.resourceType)
	is_string(resource.id)
}

ref_of(resource, index) := concat("", ["entry[", format_int(index, 10), "]"]) if {
	not ref_with_id(resource)
}

ref_with_id(resource) if {
	is_string(resource.resourceType)
	is_string(resource.id)
}

# --- Batch and transaction ----------------------------------------------------------------

# METADATA
# title: batch_decision
# description: |
#   SMART: "batch and transaction requests should be validated based on the actual requests
#   within them". One decision per entry, in order. A transaction is all-or-nothing: any denied
#   entry denies it. A batch is allowed as a whole, with its denied entries answered one by one.
batch_decision := with_batch_response(object.union(summary, {"entries": entries}), object.get(input, "response", null)) if {
	entries := [entry_hinted(e, entry_decision(e)) | some e in classified.entries]
	count(entries) == count(classified.entries)
	summary := batch_summary(classified.interaction, entries)
} else := document(verdict.deny(500, "policy-incomplete", "not every batch/transaction entry could be decided"), {})

# A transaction's entries may reference each other by fullUrl ("urn:uuid:…"): the resources by
# fullUrl, for resolving those references. None when fullUrls repeat (ambiguous), and none in a
# batch, whose entries are independent.
bundle_resources := {e.fullUrl: e.resource |
	some e in classified.entries
	is_string(e.fullUrl)
	is_object(e.resource)
} if {
	classified.interaction == "transaction"
	urls := [e.fullUrl | some e in classified.entries; is_string(e.fullUrl)]
	count(urls) == count({u | some u in urls})
} else := {}

# The server's batch-response is filtered like any other Bundle: every resource in it (and in
# Bundles nested in it) is checked on its own.
with_batch_response(d, response) := d if {
	not is_object(response)
} else := d if {
	d.decision == "deny"
} else := document(response_malformed, {}) if {
	not bundle_entries_readable(response)
} else := document(verdict.deny(500, "policy-incomplete", "not every response entry could be checked"), {}) if {
	count([check_item(item) | some item in bundle_items(response)]) != count(bundle_items(response))
} else := object.union(d, {"keep": keep, "drop": drop, "decision": batch_filtered_decision(d, drop)}) if {
	checked := [check_item(item) | some item in bundle_items(response)]
	keep := [x.ref | some x in checked; x.visible]
	drop := [{"ref": x.ref, "reason": x.reason, "index": x.index} | some x in checked; not x.visible]
}

batch_filtered_decision(_, drop) := "filter" if count(drop) > 0

batch_filtered_decision(d, drop) := d.decision if count(drop) == 0

entry_decision(e) := document(verdict.deny(400, "entry-malformed", "a batch/transaction entry must be an object with request.method and request.url"), {}) if {
	not is_object(e)
} else := document(verdict.deny(400, "entry-malformed", "a batch/transaction entry needs request.method and request.url"), {}) if {
	not fhir.string_member(object.get(e, "request", {}), "method")
} else := document(verdict.deny(400, "entry-malformed", "a batch/transaction entry needs request.method and request.url"), {}) if {
	not fhir.string_member(object.get(e, "request", {}), "url")
} else := entry_classified_decision(e, object.union(request.classify(entry_request(e)), {"bundle": bundle_resources}))

# Batches are decided entry by entry, never skipped: a Bundle in an entry is refused unless the
# entry stores it as a Bundle resource (POST Bundle, PUT Bundle/id) that is no batch or
# transaction, whatever its URL spells (base, "?", "?_format=json", "%3F"…); a create or update
# entry must carry its resource.
entry_classified_decision(e, c) := document(verdict.deny(400, "nested-batch", "a batch or transaction may not contain another one"), {}) if {
	c.interaction in {"batch", "transaction"}
} else := document(verdict.deny(400, "nested-batch", "a batch or transaction may not contain another one"), {}) if {
	e.resource.resourceType == "Bundle"
	not bundle_stored_as_resource(c, e.resource)
} else := document(verdict.deny(400, "body-mismatch", concat("", ["a ", c.interaction, " entry must carry the resource it writes"])), {}) if {
	c.interaction in {"create", "update"}
	not fhir.object_member(e, "resource")
} else := classified_decision(c, entry_request(e), null, null)

bundle_stored_as_resource(c, bundle) if {
	c.interaction in {"create", "update"}
	c.type == "Bundle"
	not bundle.type in {"batch", "transaction"}
}

entry_request(e) := {
	"method": e.request.method,
	"url": trim_prefix(e.request.url, "/"),
	"headers": entry_headers(e.request),
	"body": object.get(e, "resource", null),
}

entry_headers(r) := {"if-none-exist": r.ifNoneExist} if "ifNoneExist" in object.keys(r)

entry_headers(r) := {} if not "ifNoneExist" in object.keys(r)

batch_summary("transaction", entries) := document(
	verdict.deny(strongest.status, "transaction-entry-denied", "a transaction is atomic and at least one of its entries is denied"),
	{},
) if {
	denied := [e | some e in entries; e.decision == "deny"]
	count(denied) > 0
	strongest := verdict.strongest_deny([{"decision": "deny", "status": e.status} | some e in denied])
}

# A batch none of whose entries may run is refused as a whole: answering it 2xx would tell a
# gateway that only looks at the status to forward it.
batch_summary("batch", entries) := document(
	verdict.deny(strongest.status, "batch-every-entry-denied", "every entry of the batch is denied"),
	{},
) if {
	count(entries) > 0
	every e in entries {
		e.decision == "deny"
	}
	strongest := verdict.strongest_deny([{"decision": "deny", "status": e.status} | some e in entries])
}

batch_summary(kind, entries) := object.union({"decision": overall_decision(entries), "reasons": scope_reasons}, batch_obligations(entries)) if {
	not transaction_denied(kind, entries)
	not batch_denied(kind, entries)
}

# Entries whose responses must be filtered make the whole batch-response one to filter.
batch_obligations(entries) := {"obligations": [{
	"type": "filter-response",
	"reason": "entries of this batch release data the policy has not seen; release only what the filter step keeps of the batch-response",
}]} if {
	some e in entries
	some o in object.get(e, "obligations", [])
	o.type == "filter-response"
} else := {}

batch_denied("batch", entries) if {
	count(entries) > 0
	every e in entries {
		e.decision == "deny"
	}
}

transaction_denied("transaction", entries) if {
	some e in entries
	e.decision == "deny"
}

overall_decision(entries) := "allow" if {
	every e in entries {
		e.decision == "allow"
	}
} else := "filter"

# --- Audit obligations (break-the-glass and label denials) --------------------------------

# METADATA
# title: audited
# description: |
#   Every access that break-the-glass made possible, and every denial or drop because of a
#   security label, carries an `audit` obligation with an AuditEvent that the host must write
#   before it answers. Other decisions carry none unless `audit.all_decisions` is configured.
audited(d) := with_obligations(d, audit_obligations(d))

with_obligations(d, obligations) := object.union(d, {"obligations": array.concat(object.get(d, "obligations", []), obligations)}) if {
	count(obligations) > 0
} else := d

audit_obligations(d) := label_obligations if {
	any_labelled_input
	label_obligations := array.concat(btg_obligations(d), label_denied_obligations(d))
	count(label_obligations) > 0
} else := [label.audit_obligation("access", decision_refs(d), [], access_outcome(d))] if {
	config.audit_all_decisions
} else := []

# Only labelled resources can need a label audit record: skip the work when nothing is labelled.
any_labelled_input if {
	some r in array.concat([x | x := input_resource], response_resources)
	label.may_carry_labels(r)
}

btg_obligations(d) := [label.audit_obligation("btg-access", [ref_of(x.resource, -1) | some x in lifted], overridden, "0") |
	lifted := [x | some x in released_label_verdicts(d); x.verdict.btg]
	count(lifted) > 0
	overridden := sort({l | some x in lifted; some l in x.verdict.overridden})
]

# The label verdict of every released resource, for the access that released it (smart.access).
released_label_verdicts(d) := array.concat(
	[{"resource": r, "verdict": access.label_verdict(r, access.label_letters(classified))} | some r in released_stored(d)],
	[{"resource": r, "verdict": access.label_verdict(r, ["r", "s"])} | some r in released_response(d)],
)

label_denied_obligations(d) := [label.audit_obligation("label-denied", [ref_of(r, -1) | some r in hidden], labels, "4") |
	hidden := label_hidden(d)
	count(hidden) > 0
	labels := sort({l | some r in hidden; some l in label.protected_labels(r)})
]

input_resource := input.resource if is_object(input.resource)

input_response := input.response if is_object(input.response)

response_resources := [item.resource | some item in bundle_items(input_response); item.resource] if {
	input_response.resourceType == "Bundle"
}

response_resources := [input_response] if {
	input_response.resourceType != "Bundle"
}

response_resources := [] if not input_response

# Resources the decision releases: the stored instance of an allowed interaction, and every
# response resource that was not dropped.
released_stored(d) := [input_resource] if {
	d.decision != "deny"
	input_resource
} else := []

# `dropped[i]` indexes the set: OPA's WASM target answers `i in dropped` by scanning it.
released_response(d) := [item.resource | some item in bundle_items(input_response); item.resource; not dropped[item.index]] if {
	d.decision != "deny"
	input_response.resourceType == "Bundle"
	dropped := {x.index | some x in object.get(d, "drop", [])}
} else := response_resources if {
	d.decision != "deny"
} else := []

label_hidden(d) := [r |
	some x in object.get(d, "drop", [])
	x.reason == "label-restricted"
	r := dropped_resource(x)
] if {
	d.decision != "deny"
} else := [r | some r in array.concat([x | x := input_resource], [x | x := input_response])] if {
	d.reasons[0].code == "label-restricted"
} else := []

dropped_resource(x) := input_response if x.index == -1

dropped_resource(x) := input_response.entry[x.index].resource if x.index >= 0

decision_refs(_) := [ref_of(input_resource, -1)] if {
	input_resource
} else := [input.request.url] if {
	is_string(input.request.url)
} else := []

access_outcome(d) := "4" if d.decision == "deny"

access_outcome(d) := "0" if d.decision != "deny"
