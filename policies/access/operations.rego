# FHIR operations: the permissions each configured operation needs, and its patient.
package smart.access

import data.smart.config
import data.smart.grant
import data.smart.verdict

operation_verdict(c, _, _) := verdict.deny(403, "operation-not-permitted", concat("", ["the operation ", c.operation, " is not enabled for SMART tokens here"])) if {
	not operation_enabled(c)
} else := scope_missing(c, operation_target(c), missing) if {
	missing := [l | some l in config.operations[c.operation].letters; count(operation_grants(c, l)) == 0]
	count(missing) > 0
} else := verdict.all_of_list([
verdict.any_of([operation_grant_verdict(c, g) | some g in operation_grants(c, l)]) |
	some l in config.operations[c.operation].letters
])

operation_enabled(c) if {
	spec := config.operations[c.operation]
	c.level in spec.levels
	operation_type_ok(c, spec)
}

operation_type_ok(c, _) if c.level == "system"

operation_type_ok(c, spec) if c.type in spec.types

# METADATA
# title: operation_returns_resources
# description: |
#   The operation's response carries stored resources (`returns` in the operations table; anything
#   but "computed", or nothing, counts as resources), so it must be filtered like a search's.
operation_returns_resources(c) if object.get(config.operations[c.operation], "returns", "resources") != "computed"

operation_target(c) := "*" if config.operations[c.operation].on == "*"

operation_target(c) := c.type if config.operations[c.operation].on == "self"

operation_grants(c, l) := [g |
	some g in grant.for(operation_target(c), l)
	operation_context_ok(c, g)
]

operation_context_ok(c, _) if not config.operations[c.operation].contexts

operation_context_ok(c, g) if g.context in config.operations[c.operation].contexts

operation_grant_verdict(_, g) := verdict.deny(403, "constraint-not-applicable", "a constrained scope does not cover operations") if {
	count(g.constraints) > 0
}

operation_grant_verdict(c, g) := operation_context_verdict(c, g) if count(g.constraints) == 0

operation_context_verdict(_, g) := verdict.allow if g.context == "system"

operation_context_verdict(c, g) := user_operation_verdict(c) if g.context == "user"

operation_context_verdict(c, g) := patient_context_missing if {
	g.context == "patient"
	not grant.patient_id
} else := verdict.allow if {
	g.context == "patient"
	c.type == "Patient"
	c.id == grant.patient_id
} else := verdict.allow if {
	g.context == "patient"
	config.operations[c.operation].on == "self"
	config.shared_type(c.type)
} else := verdict.deny(403, "operation-other-patient", "the operation targets a patient other than the one in context") if {
	g.context == "patient"
}
