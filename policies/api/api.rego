# METADATA
# title: Entry points
# description: |
#   The decision contract (v1): `smart/api/decision` turns an input document
#   {claims, request, resource?, response?, now?} into a decision document; `smart/api/scopes`
#   parses {"scope": "…"}. Hosts in every language call these two entry points.
package smart.api

import data.smart.access
import data.smart.grant
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

# The decision obliges the host to send the response through the filter step.
has_filter_response(d) if {
	some o in object.get(d, "obligations", [])
	o.type == "filter-response"
}

stored_resource_message(d) := "the stored resource was not supplied: allowed only where it matches `narrow` (use a conditional interaction or check the response with the filter step)" if {
	d.narrow
} else := "the stored resource was not supplied: a write by id is decided only on the stored resource it changes (its patient links and security labels); decide again with it as `resource`" if {
	not has_filter_response(d)
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
