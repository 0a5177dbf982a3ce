# METADATA
# title: Entry points
# description: |
#   The decision contract (v1): `smart/api/decision` turns an input document
#   {claims, request, resource?, response?, now?} into a decision document; `smart/api/scopes`
#   parses {"scope": "…"}. Hosts in every language call these two entry points.
package smart.api

import data.smart.access
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
#   Entry point: the decision document for input.
# entrypoint: true
decision := document(verdict.deny(400, "input-invalid", input_problem), {}) if {
	input_problem
} else := batch_decision if {
	classified.interaction in {"batch", "transaction"}
} else := audited(classified_decision(classified, input.request, object.get(input, "resource", null), object.get(input, "response", null)))

# The input request, classified once (a rule is evaluated once per query; a function call is not).
classified := request.classify(input.request)

input_problem := "input must be a JSON object with 'claims' and 'request' objects" if {
	not fhir.object_member(input, "claims")
} else := "input must be a JSON object with 'claims' and 'request' objects" if {
	not fhir.object_member(input, "request")
}

# --- One interaction ----------------------------------------------------------------------

classified_decision(c, _, _, _) := document(verdict.deny(400, "request-unclassifiable", c.error), {}) if c.error

classified_decision(c, req, resource, response) := verdict_document(c, decided(c, req, resource), resource, response) if {
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

# Scopes first, then the stored instance's security labels.
decided(c, req, resource) := access.label_gate(access.decide(c, req, resource), resource) if {
	c.level == "instance"
} else := access.decide(c, req, resource)

# An instance interaction decided without the stored resource says so: it is allowed only in the
# narrowed form (as a conditional interaction, or by checking the response).
with_stored_resource_note(d, c, resource) := object.union(d, {"reasons": array.concat(d.reasons, [{
	"code": "stored-resource-not-supplied",
	"message": "the stored resource was not supplied: allowed only where it matches `narrow` (use a conditional interaction or check the response with the filter step)",
}])}) if {
	d.decision == "filter"
	c.level == "instance"
	resource == null
} else := d

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

# Searches that pull in other resources (_include, _revinclude) must have their responses
# filtered: the host is told so with an obligation.
obligations(c) := {"obligations": [{
	"type": "filter-response",
	"reason": "the search includes related resources; release only what the filter step keeps",
}]} if {
	some p in object.get(c, "params", [])
	p.base in {"_include", "_revinclude"}
}

obligations(c) := {} if {
	not includes_related(c)
}

includes_related(c) if {
	some p in object.get(c, "params", [])
	p.base in {"_include", "_revinclude"}
}

# --- Response filtering -------------------------------------------------------------------

# METADATA
# title: response_decision
# description: |
#   With a server response: every resource in it (matches, includes, a single resource) is
#   checked on its own. A Bundle gives `keep`/`drop`; a single resource that may not be released
#   is a deny that reveals nothing (404 by default).
response_decision(c, v, response) := object.union(document(v, c), {"keep": [], "drop": []}) if {
	response.resourceType == "Bundle"
	count(bundle_items(response)) == 0
} else := bundle_response(c, v, count(bundle_items(response)), [check_item(item) | some item in bundle_items(response)]) if {
	response.resourceType == "Bundle"
} else := object.union(document(v, c), {"keep": [ref_of(response, -1)], "drop": []}) if {
	access.visibility(response).decision == "allow"
} else := object.union(
	document(object.union(access.visibility(response), {"status": hidden_status}), c),
	{"keep": [], "drop": [{"ref": ref_of(response, -1), "reason": access.visibility(response).reason.code, "index": -1}]},
)

hidden_status := data.smart.config.hidden_status

bundle_response(c, v, n, checked) := document(verdict.deny(500, "policy-incomplete", "not every response entry could be checked"), c) if {
	count(checked) != n
} else := bundle_split(c, v, [x.ref | some x in checked; x.visible], [{"ref": x.ref, "reason": x.reason, "index": x.index} | some x in checked; not x.visible])

bundle_split(c, v, keep, drop) := object.union(document(v, c), {"keep": keep, "drop": drop}) if {
	count(drop) == 0
} else := object.union(document(verdict.filter(object.get(v, "narrow", [])), c), {"keep": keep, "drop": drop})

bundle_items(bundle) := [{"index": i, "resource": e.resource} |
	some i, e in object.get(bundle, "entry", [])
	is_object(e.resource)
]

check_item(item) := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": true} if {
	item.resource.resourceType == "Bundle"
	bundle_visible(item.resource)
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": "nested-bundle-hidden"} if {
	item.resource.resourceType == "Bundle"
} else := r if {
	r := resource_check(item, access.visibility(item.resource))
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": "unreadable-resource"}

resource_check(item, vis) := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": true} if {
	vis.decision == "allow"
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": vis.reason.code} if {
	vis.decision == "deny"
}

# A Bundle inside a response (e.g. a batch-response entry) is released only if every resource
# in it may be; deeper nesting is not inspected and so not released.
bundle_visible(resource) if {
	every e in object.get(resource, "entry", []) {
		nested_visible(e)
	}
}

nested_visible(e) if not fhir.object_member(e, "resource")

nested_visible(e) if {
	e.resource.resourceType != "Bundle"
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
	entries := [entry_decision(e) | some e in classified.entries]
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

batch_summary(kind, entries) := {"decision": overall_decision(entries), "reasons": scope_reasons} if {
	not transaction_denied(kind, entries)
	not batch_denied(kind, entries)
}

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
	label.audit_all_decisions
} else := []

# Only labelled resources can need a label audit record: skip the work when nothing is labelled.
any_labelled_input if {
	some r in array.concat([x | x := input_resource], response_resources)
	count(object.get(r, ["meta", "security"], [])) > 0
}

any_labelled_input if {
	some r in array.concat([x | x := input_resource], response_resources)
	count(object.get(r, "contained", [])) > 0
}

btg_obligations(d) := [label.audit_obligation("btg-access", [ref_of(r, -1) | some r in lifted], overridden, "0") |
	lifted := [r | some r in released(d); label.resource_verdict(r).btg]
	count(lifted) > 0
	overridden := sort({l | some r in lifted; some l in label.resource_verdict(r).overridden})
]

label_denied_obligations(d) := [label.audit_obligation("label-denied", [ref_of(r, -1) | some r in hidden], labels, "4") |
	hidden := label_hidden(d)
	count(hidden) > 0
	labels := sort({l | some r in hidden; some l in label.protected_labels(r)})
]

input_resource := input.resource if is_object(input.resource)

input_response := input.response if is_object(input.response)

response_resources := [item.resource | some item in bundle_items(input_response)] if {
	input_response.resourceType == "Bundle"
}

response_resources := [input_response] if {
	input_response.resourceType != "Bundle"
}

response_resources := [] if not input_response

# Resources the decision releases: the stored instance of an allowed interaction, and every
# response resource that was not dropped.
released(d) := array.concat(released_stored(d), released_response(d))

released_stored(d) := [input_resource] if {
	d.decision != "deny"
	input_resource
} else := []

released_response(d) := [item.resource | some item in bundle_items(input_response); not item.index in dropped] if {
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
