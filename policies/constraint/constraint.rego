# METADATA
# title: Query-parameter constraints (SMART v2 "finer-grained resource constraints")
# description: |
#   A constrained grant `T.letters?p1=v1&p2=v2` covers exactly the T instances that match every
#   p=v under FHIR search semantics (AND across &, OR across commas). Supported: token search
#   parameters whose path the policy can read (CodeableConcept, Coding, Identifier, code, string,
#   boolean elements), without modifiers or chains. Anything else makes the grant cover nothing
#   (never the unconstrained type).
package smart.constraint

import data.smart.lib.fhir

search_param(t, name) := data.fhir.r4.search_params[t][name]

search_param(t, name) := data.fhir.r4.search_params.Resource[name] if not data.fhir.r4.search_params[t][name]

# A constraint the policy can evaluate exactly on type t.
supported(t, c) if {
	not contains(c.param, ":")
	not contains(c.param, ".")
	sp := search_param(t, c.param)
	sp.type == "token"
	is_array(sp.paths)
}

# A parameter repeated inside one scope (category=a&category=b: both at once) is matched exactly
# on resources but cannot be expressed as one narrowing object, so such a scope grants nothing.
all_supported(t, constraints) if {
	every c in constraints {
		supported(t, c)
	}
	count({c.param | some c in constraints}) == count(constraints)
}

unsupported_params(t, constraints) := [c.param | some c in constraints; not supported(t, c)] if {
	count({c.param | some c in constraints}) == count(constraints)
}

unsupported_params(_, constraints) := ["repeated parameters"] if {
	count({c.param | some c in constraints}) != count(constraints)
}

# METADATA
# title: resource_matches
# description: The resource satisfies every constraint (each by any of its values).
resource_matches(resource, constraints) if {
	t := resource.resourceType
	every c in constraints {
		constraint_matches(resource, t, c)
	}
}

constraint_matches(resource, t, c) if {
	some path in search_param(t, c.param).paths
	some element in fhir.values_at(resource, path)
	some value in c.values
	fhir.token_matches(element, value)
}

# METADATA
# title: search_implies
# description: |
#   A search already stays inside a constraint when it carries the same parameter, unmodified,
#   with values that are all among the constraint's values.
search_implies(params, c) if {
	some p in params
	p.name == c.param
	count(p.values) > 0
	every v in p.values {
		v in c.values
	}
}

# The narrowing alternative that confines a search to the constraints it does not already imply.
narrowing(params, constraints) := {c.param: concat(",", [replace(v, ",", "\\,") | some v in c.values]) |
	some c in constraints
	not search_implies(params, c)
}

# Element names a patch must not touch: the first element of every constraint's path.
guarded_elements(t, constraints) := {path[0] | some c in constraints; some path in search_param(t, c.param).paths}
