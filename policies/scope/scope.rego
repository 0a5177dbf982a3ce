# METADATA
# title: SMART scope grammar
# description: |
#   Parses OAuth scope strings as SMART App Launch 2.2 defines them ("Scopes and Launch Context").
#   Resource scopes: ( patient | user | system ) "/" ( <FHIR resource type> | "*" ) "."
#   then v1 "read" | "write" | "*", or a v2 non-empty subset of "cruds" in that order,
#   optionally followed by "?" param=value ( "&" param=value )*.
#   Every token gets exactly one parse; a malformed one is reported with a reason and grants nothing.
package smart.scope

import data.smart.lib.fhir
import data.smart.lib.text

contexts := ["patient", "user", "system"]

# v1 permissions and their v2 meaning (SLC: ".read ⇒ .rs, .write ⇒ .cud, .* ⇒ .cruds").
v1_permissions := {"read": ["r", "s"], "write": ["c", "u", "d"], "*": ["c", "r", "u", "d", "s"]}

v2_letters := ["c", "r", "u", "d", "s"]

letter_rank := {l: i | some i, l in v2_letters}

identity_scopes := {"openid", "fhirUser", "profile"}

refresh_scopes := {"offline_access", "online_access"}

# METADATA
# title: tokens
# description: |
#   The scope tokens of a scope claim (space-separated string, or an array of strings).
tokens(claim) := [t | some t in split(claim, " "); t != ""] if is_string(claim)

tokens(claim) := [t | some t in claim; is_string(t); t != ""] if is_array(claim)

# METADATA
# title: parse
# description: |
#   One scope token to its meaning.
parse(t) := {"kind": "identity", "scope": t} if {
	identity_scopes[t]
} else := {"kind": "refresh", "scope": t} if {
	refresh_scopes[t]
} else := {"kind": "launch", "scope": t} if {
	launch_scope(t)
} else := {"kind": "extension", "scope": t} if {
	extension_scope(t)
} else := parse_resource_scope(t, context) if {
	some context in contexts
	startswith(t, concat("", [context, "/"]))
} else := invalid(t, "unrecognized scope: not a SMART resource, launch, identity or refresh scope, nor an extension (full URI or __ prefix)")

launch_scope(t) if t == "launch"

launch_scope(t) if startswith(t, "launch/")

extension_scope(t) if startswith(t, "__")

extension_scope(t) if {
	i := indexof(t, "://")
	i > 0
	trim(substring(t, 0, 1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == ""
	trim(substring(t, 0, i), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-") == ""
}

invalid(t, why) := {"kind": "invalid", "scope": t, "error": why}

parse_resource_scope(t, context) := invalid(t, "missing '.' between resource type and permissions") if {
	not contains(scope_body(t, context), ".")
} else := invalid(t, "more than one '.' in the resource part") if {
	count(split(scope_body(t, context), ".")) > 2
} else := invalid(t, unknown_type_message(scope_type(t, context))) if {
	not known_type(scope_type(t, context))
} else := invalid(t, "empty permissions") if {
	scope_permission_text(t, context) == ""
} else := invalid(t, "v1 permissions (read, write, *) take no query constraints") if {
	v1_permissions[scope_permission_text(t, context)]
	contains(t, "?")
} else := resource_scope(t, context, "v1", v1_permissions[p], []) if {
	p := scope_permission_text(t, context)
	v1_permissions[p]
} else := invalid(t, permission_message(scope_permission_text(t, context))) if {
	not v2_permissions(scope_permission_text(t, context))
} else := invalid(t, "malformed query constraint: expected ?param=value(&param=value)* with percent-encoding") if {
	contains(t, "?")
	not constraints(scope_query(t))
} else := invalid(t, unsafe_value_message) if {
	contains(t, "?")
	some c in constraints(scope_query(t))
	some v in c.values
	not narrow_safe(v)
} else := resource_scope(t, context, "v2", split(scope_permission_text(t, context), ""), scope_constraints(t))

resource_scope(t, context, syntax, permissions, constraints) := {
	"kind": "resource",
	"scope": t,
	"context": context,
	"type": scope_type(t, context),
	"permissions": permissions,
	"syntax": syntax,
	"constraints": constraints,
}

# "<type>.<permissions>" without the context prefix and the query.
scope_body(t, context) := split(substring(t, count(context) + 1, -1), "?")[0]

scope_query(t) := substring(t, indexof(t, "?") + 1, -1)

scope_constraints(t) := [] if not contains(t, "?")

scope_constraints(t) := constraints(scope_query(t)) if contains(t, "?")

scope_type(t, context) := split(scope_body(t, context), ".")[0]

scope_permission_text(t, context) := split(scope_body(t, context), ".")[1]

known_type("*")

known_type(t) if fhir.resource_type(t)

unknown_type_message(t) := concat("", ["unknown resource type '", t, "' (FHIR type names are case-sensitive)"])

# A v2 permission string: a non-empty subset of c, r, u, d, s in that order, each at most once.
v2_permissions(p) if {
	letters := split(p, "")
	count(letters) > 0
	every l in letters {
		letter_rank[l] >= 0
	}
	every i in numbers.range(1, count(letters) - 1) {
		letter_rank[letters[i]] > letter_rank[letters[i - 1]]
	}
}

# numbers.range(1, 0) is [1, 0]: a single letter needs no order check.
v2_permissions(p) if {
	count(p) == 1
	letter_rank[p] >= 0
}

permission_message(p) := concat("", [
	"invalid permissions '", p,
	"': expected read, write, * (v1) or a subset of c, r, u, d, s in that order without repeats (v2)",
])

# A constraint value becomes a `narrow` value, which hosts append to a URL as it is. It may hold
# only characters that mean the same whether a host percent-encodes them or not: letters, digits
# and - . _ ~ ! $ ' ( ) * , / : ; @ | (a comma is escaped in `narrow`). Anything else — & = # % +
# ? space, other ASCII punctuation, control or non-ASCII characters — could inject or cut off
# parameters in a host that concatenates, so such a scope grants nothing.
narrow_safe(v) if regex.match(`^[A-Za-z0-9._~!$'()*,/:;@|-]+$`, v)

unsafe_value_message := concat("", [
	"query constraint values may contain only letters, digits and - . _ ~ ! $ ' ( ) * , / : ; @ | ",
	"after percent-decoding (anything else could be injected into the narrowed search)",
])

# METADATA
# title: constraints
# description: |
#   The query suffix as a list of {param, values}: & separates ANDed parameters, commas inside one
#   value are ORed alternatives (FHIR search). Values are percent-decoded.
constraints(query) := cs if {
	items := split(query, "&")
	cs := [c | some item in items; c := constraint(item)]
	count(cs) == count(items)
}

constraint(item) := {"param": name, "values": values} if {
	i := indexof(item, "=")
	i > 0
	name := substring(item, 0, i)
	raw := substring(item, i + 1, -1)
	raw != ""
	values := fhir.decoded_values(raw)
	every v in values {
		v != ""
	}
	text.percent_decode(name) == name
}

# METADATA
# title: parse_all
# description: |
#   The parse of every token of a scope claim, with a summary.
parse_all(claim) := {
	"scopes": parsed,
	"valid": count(errors) == 0,
	"errors": errors,
} if {
	claim_shape_ok(claim)
	parsed := [parse(t) | some t in tokens(claim)]
	errors := [{"scope": p.scope, "error": p.error} | some p in parsed; p.kind == "invalid"]
}

parse_all(claim) := {
	"scopes": [],
	"valid": false,
	"errors": [{"scope": "", "error": "the scope claim must be a space-separated string or an array of strings"}],
} if {
	not claim_shape_ok(claim)
}

claim_shape_ok(claim) if is_string(claim)

claim_shape_ok(claim) if is_array(claim)
