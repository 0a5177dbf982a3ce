# METADATA
# title: Conformance vectors
# description: |
#   Runs the conformance vectors of test/vectors (the public set in public/, the project's own
#   beside it; format in test/vectors/README.md)
#   through the decision entry point. The test target wraps the vector files as
#   data.vectors.<set> (OPA data must be an object); failures are listed by id.
package smart.conformance_test

import data.smart.api

vector_input(v) := object.union(
	{
		"claims": object.union(object.get(v, "context", {}), {"scope": v.scopes}),
		"request": object.union({"headers": {}}, v.request),
		"now": object.get(v, "now", "2026-11-22T10:00:00Z"),
	},
	object.filter(v, ["resource", "resource_absent", "response"]),
)

outcome(v) := result if {
	v.parse
	result := api.scopes with input as {"scope": v.scopes}
}

outcome(v) := result if {
	v.request
	result := api.decision with input as vector_input(v)
		with data.config as object.get(v, "config", {})
		with data.relationships as object.get(v, "relationships", null)
		with data.clients as object.get(v, "clients", {})
}

expectation_met(v) if {
	v.parse
	valid := v.expect == "valid"
	outcome(v).valid == valid
}

expectation_met(v) if {
	v.request
	is_string(v.expect)
	outcome(v).decision == v.expect
}

expectation_met(v) if {
	v.request
	want := v.expect.filter.narrow
	d := outcome(v)
	d.decision == "filter"
	some alternative in d.narrow
	every k, value in want {
		same_param_value(alternative[k], value)
	}
}

expectation_met(v) if {
	v.request
	want := v.expect.filter.keep
	d := outcome(v)
	d.decision == "filter"
	{k | some k in d.keep} == {k | some k in want}
	{x.ref | some x in d.drop} == {x | some x in v.expect.filter.drop}
}

expectation_met(v) if {
	v.request
	want := v.expect.entries
	d := outcome(v)
	[e.decision | some e in d.entries] == want
}

# A vector passes when its expectation is met and, when it lists `obligations` (the project's own
# vectors), the decision carries exactly those obligation types; `status`, `reason`,
# `required_scopes`, `entry_required_scopes` and `outcome_code`, when given, must match too.
passes(v) if {
	expectation_met(v)
	obligations_met(v)
	details_met(v)
}

details_met(v) if {
	d := outcome(v)
	every k in ["status", "required_scopes", "entry_required_scopes", "reason", "outcome_code"] {
		detail_met(v, d, k)
	}
}

detail_met(v, _, k) if not k in object.keys(v)

detail_met(v, d, "status") if d.status == v.status

detail_met(v, d, "reason") if d.reasons[0].code == v.reason

detail_met(v, d, "required_scopes") if object.get(d, "required_scopes", []) == v.required_scopes

detail_met(v, d, "entry_required_scopes") if {
	[object.get(e, "required_scopes", []) | some e in d.entries] == v.entry_required_scopes
}

detail_met(v, d, "outcome_code") if {
	some c in d.outcome.issue[0].details.coding
	c.code == v.outcome_code
}

obligations_met(v) if not v.obligations

obligations_met(v) if {
	v.obligations
	{o.type | some o in object.get(outcome(v), "obligations", [])} == {t | some t in v.obligations}
}

# A patient reference may be written Patient/123 or 123.
same_param_value(a, b) if a == b

same_param_value(a, b) if concat("/", ["Patient", b]) == a

same_param_value(a, b) if concat("/", ["Patient", a]) == b

failures(set) := [{"id": v.id, "expect": v.expect, "got": outcome(v)} | some v in set; not passes(v)]

test_public_vectors_pass if {
	failed := failures(data.vectors.public)
	print("public vector failures:", count(failed), failed)
	count(data.vectors.public) > 0
	count(failed) == 0
}

# The project's own vectors (test/vectors/*.json), when the test target provides them.
test_own_vectors_pass if {
	failed := [f | some set_name, set in data.vectors; set_name != "public"; some f in failures(set)]
	print("own vector failures:", count(failed), failed)
	count(failed) == 0
}

# Every vector's outcome by id, for hosts to compare against OPA's own evaluator.
all_outcomes := {v.id: outcome(v) | some set in data.vectors; some v in set}
