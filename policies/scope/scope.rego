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

identity_scopes := {"openid", "fhirUser", "profile"}

refresh_scopes := {"offline_access", "online_access"}

# Scopes that are well-formed without being resource scopes, common enough to recognise in bulk.
common_scopes := (identity_scopes | refresh_scopes) | {"launch", "launch/patient", "launch/encounter"}

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
} else := parse_resource_scope(t, context, trim_prefix(t, prefix)) if {
	some prefix, context in context_prefixes
	startswith(t, prefix)
} else := invalid(t, "unrecognized scope: not a SMART resource, launch, identity or refresh scope, nor an extension (full URI or __ prefix)")

context_prefixes := {"patient/": "patient", "user/": "user", "system/": "system"}

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

# `rest` is t without its context prefix: "<type>.<permissions>" and an optional "?<query>".
# The pieces are computed once and handed on (each parse step used to split the token again).
parse_resource_scope(t, context, rest) := resource_body(t, context, split(split(rest, "?")[0], "."))

resource_body(t, context, parts) := invalid(t, "missing '.' between resource type and permissions") if {
	count(parts) == 1
} else := invalid(t, "more than one '.' in the resource part") if {
	count(parts) > 2
} else := invalid(t, unknown_type_message(parts[0])) if {
	not known_type(parts[0])
} else := resource_permissions(t, context, parts[0], parts[1])

resource_permissions(t, _, _, "") := invalid(t, "empty permissions")

resource_permissions(t, context, type, p) := v1_scope(t, context, type, v1_permissions[p]) if v1_permissions[p]

resource_permissions(t, context, type, p) := v2_scope(t, context, type, p) if {
	p != ""
	not v1_permissions[p]
}

v1_scope(t, context, type, letters) := invalid(t, "v1 permissions (read, write, *) take no query constraints") if {
	contains(t, "?")
} else := resource_scope(t, context, type, "v1", letters, []) if {
	not contains(t, "?")
}

v2_scope(t, context, type, p) := invalid(t, permission_message(p)) if {
	not permissions[p] == "v2"
} else := v2_constrained_scope(t, context, type, p, scope_query(t)) if {
	contains(t, "?")
} else := resource_scope(t, context, type, "v2", split(p, ""), [])

v2_constrained_scope(t, context, type, p, query) := invalid(t, "malformed query constraint: expected ?param=value(&param=value)* with percent-encoding") if {
	not constraints(query)
} else := invalid(t, unsafe_value_message) if {
	some c in constraints(query)
	some v in c.values
	not narrow_safe(v)
} else := resource_scope(t, context, type, "v2", split(p, ""), constraints(query))

resource_scope(t, context, type, syntax, permissions, constraints) := {
	"kind": "resource",
	"scope": t,
	"context": context,
	"type": type,
	"permissions": permissions,
	"syntax": syntax,
	"constraints": constraints,
}

scope_query(t) := substring(t, indexof(t, "?") + 1, -1)

known_type("*")

known_type(t) if fhir.resource_type(t)

unknown_type_message(t) := concat("", ["unknown resource type '", t, "' (FHIR type names are case-sensitive)"])

permission_message(p) := concat("", [
	"invalid permissions '", p,
	"': expected read, write, * (v1) or a subset of c, r, u, d, s in that order without repeats (v2)",
])

# A constraint value becomes a `narrow` value, which hosts append to a URL as it is. It may hold
# only characters that mean the same whether a host percent-encodes them or not: letters, digits
# and - . _ ~ ! $ ' ( ) * , / : ; @ | (a comma is escaped in `narrow`). Anything else — & = # % +
# ? space, other ASCII punctuation, control or non-ASCII characters — could inject or cut off
# parameters in a host that concatenates, so such a scope grants nothing.
narrow_safe(v) if {
	v != ""
	substring(v, 100, 1) == ""
	trim(v, narrow_safe_chars) == ""
} else if {
	substring(v, 100, 1) != ""
	regex.match(`^[A-Za-z0-9._~!$'()*,/:;@|-]+$`, v)
}

# Short values are checked with trim (a regular expression is compiled on every evaluation in
# WASM, which costs more than a read decision); long ones, such as every value of a large token
# at once, with the expression, whose matching is faster per character.
narrow_safe_chars := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~!$'()*,/:;@|-"

unsafe_value_message := concat("", [
	"query constraint values may contain only letters, digits and - . _ ~ ! $ ' ( ) * , / : ; @ | ",
	"after percent-decoding (anything else could be injected into the narrowed search)",
])

# Tables (data, generated by scripts/generate-policy-tables.mjs, checked by scope_test.rego):
# heads["<context>/<type>"] = type for every context and known type; permissions[p] = "v1" or "v2"
# for every well-formed permission string. Lookups into data cost nothing to set up, where a Rego
# set literal is rebuilt on every evaluation.
heads := data.scope.tables.heads

permissions := data.scope.tables.permissions

# METADATA
# title: plain_resource_types
# description: |
#   position -> type for the tokens (an array, or an object position -> token) that are
#   well-formed resource scopes without a query
#   ("patient/*.rs", "user/Observation.read"): one split and two lookups each; parse agrees on them.
#   Other tokens are left out (parse decides those).
plain_resource_types(tokens) := {i: type |
	h := heads
	p := permissions
	some i, t in tokens
	[head, letters] := split(t, ".")
	p[letters]
	type := h[head]
}

# METADATA
# title: constrained_resource_types
# description: |
#   position -> [type, query] for the tokens (an array, or an object position -> token) that are
#   well-formed v2 resource scopes with a query that needs no decoding
#   ("patient/Observation.rs?category=http://...|laboratory": one "?", name=value items, no "%",
#   no ","), provided the queries are printable ASCII and the values narrow_safe (the third item:
#   the values concatenated): the caller checks both for all of them at once. Then parse agrees on
#   them. Other tokens are left out.
constrained_resource_types(tokens) := {i: [type, query, concat("", values)] |
	h := heads
	p := permissions
	some i, t in tokens
	[body, query] := split(t, "?")
	[head, letters] := split(body, ".")
	p[letters] == "v2"
	type := h[head]
	not contains(query, "%")
	not contains(query, ",")
	values := plain_query_values(query)
}

# The values of one name=value item, or of several joined by "&", each with exactly one "="
# between non-empty parts. Every value must also be safe to append as it is (narrow_safe), as
# parse demands: the caller checks that once for all of them (their concatenation).
plain_query_values(q) := [value] if {
	not contains(q, "&")
	[name, value] := split(q, "=")
	name != ""
	value != ""
} else := values if {
	items := split(q, "&")
	values := [value | some item in items; [name, value] := split(item, "="); name != ""; value != ""]
	count(values) == count(items)
}

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
