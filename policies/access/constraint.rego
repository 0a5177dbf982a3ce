# v2 query constraints: a constrained grant reaches only the instances that match it.
package smart.access

import data.smart.constraint
import data.smart.verdict

constraint_verdict(g, c, req, resource, l) := verdict.allow if {
	count(g.constraints) == 0
} else := verdict.deny(403, "constraint-unsupported", concat("", [
	"the scope constraint(s) ", concat(", ", constraint.unsupported_params(c.type, g.constraints)),
	" cannot be enforced on ", c.type, ", so the scope grants nothing here",
])) if {
	not constraint.all_supported(c.type, g.constraints)
} else := v if {
	c.interaction in instance_interactions
	c.level == "instance"
	v := verdict.all_of_list([
		constraint_stored_verdict(g, c, resource),
		constraint_body_verdict(g, c, req),
		constraint_patch_verdict(g, c, req),
	])
} else := v if {
	c.interaction == "create"
	l == "c"
	v := constraint_body_verdict(g, c, req)
} else := v if {
	c.interaction in {"update", "patch", "delete"}
	l != "s"
	v := verdict.all_of_list([
		constraint_search_verdict(g, c.params),
		constraint_body_verdict(g, c, req),
		constraint_patch_verdict(g, c, req),
	])
} else := verdict.deny(403, "constraint-not-applicable", "a constrained scope cannot be applied to the history of a type: history takes no search parameters") if {
	c.interaction == "history-type"
} else := constraint_search_verdict(g, c.params) if {
	c.interaction in search_interactions
} else := constraint_search_verdict(g, c.params) if {
	l == "s"
	c.conditional
} else := verdict.deny(403, "constraint-not-applicable", concat("", ["a constrained scope does not cover ", c.interaction]))

constraint_stored_verdict(g, c, resource) := verdict.allow if {
	is_object(resource)
	constraint.resource_matches(resource, g.constraints)
} else := hidden(c, "constraint-mismatch") if {
	is_object(resource)
} else := unnarrowed if {
	not narrowable(c)
} else := verdict.all_of(verdict.filter([{"_id": c.id}]), verdict.filter([constraint.narrowing([], g.constraints)]))

constraint_body_verdict(g, c, req) := verdict.allow if {
	not c.interaction in {"create", "update"}
} else := verdict.allow if {
	constraint.resource_matches(req.body, g.constraints)
} else := verdict.deny(403, "body-outside-constraint", "the submitted resource does not match the granted scope's constraints")

constraint_patch_verdict(g, c, req) := verdict.allow if {
	c.interaction != "patch"
} else := patch_guard(c.type, req, constraint.guarded_elements(c.type, g.constraints), "patch-touches-constraint")

constraint_search_verdict(g, params) := verdict.allow if {
	count(constraint.narrowing(params, g.constraints)) == 0
} else := verdict.filter([constraint.narrowing(params, g.constraints)])
