# METADATA
# title: Grants
# description: |
#   What the token's resource scopes grant. Scopes that differ only in their letters are one
#   grant ("Observation.rs" is equivalent to "Observation.r Observation.s", SLC "Scope
#   equivalence"); separate grants are ORed. Malformed scopes grant nothing and are reported.
#
#   The cost is linear in the number of scopes, and a decision parses in full only the scopes
#   that matter to it: every token is recognised once, cheaply, when it has one of the common
#   well-formed forms (resource_types), and a scope is parsed in full only when it is not (to
#   report why when it is malformed) or when it is about the resource type a decision asks for
#   (grants_of).
package smart.grant

import data.smart.lib.fhir
import data.smart.lib.text
import data.smart.scope

claims := object.get(input, "claims", {})

scope_claim := claims.scope

scope_claim := claims.scp if not claims.scope

# The token's scopes, in order, as split from the claim: a string claim split at every space
# (empty strings between repeated spaces included: they are no scope and never match below),
# the strings of an array claim; none when the claim is missing or has the wrong shape.
default tokens := []

tokens := split(scope_claim, " ") if is_string(scope_claim)

tokens := [t | some t in scope_claim; is_string(t); t != ""] if is_array(scope_claim)

claim_shape_errors := [{"scope": "", "error": "the scope claim must be a space-separated string or an array of strings"}] if {
	_ := scope_claim
	not scope.claim_shape_ok(scope_claim)
} else := []

# METADATA
# title: quick_types
# description: |
#   One entry per token: its type when it is a well-formed resource scope without a query
#   ("<context>/<type>.<permissions>": one split and two table lookups), "?" when it has a query
#   (constrained_types looks closer), "" for a common well-formed non-resource scope (and for the ""
#   of repeated spaces), null otherwise (fully_parsed parses it).
quick_types := [quick_type(heads, permissions, common, t) |
	heads := scope.heads
	permissions := scope.permissions
	common := scope.common_scopes
	some t in tokens
]

quick_type(heads, permissions, common, t) := heads[head] if {
	[head, letters] := split(t, ".")
	permissions[letters]
} else := "?" if {
	contains(t, "?")
} else := "" if {
	common[t]
} else := "" if {
	t == ""
} else := null

# Tokens with a query: recognised without a full parse when well-formed, needing no decoding,
# printable ASCII and with values safe to append (each checked once for all of them).
constrained_types := {i: x[0] | some i, x in constrained_candidates} if {
	text.printable(concat(" ", [x[1] | some x in constrained_candidates]))
	scope.narrow_safe(concat("", [x[2] | some x in constrained_candidates]))
} else := {}

constrained_candidates := scope.constrained_resource_types({i: tokens[i] | some i in query_positions})

query_positions := [i | some i, type in quick_types; type == "?"]

# METADATA
# title: positions_of_type
# description: |
#   type -> the positions in `tokens` of its well-formed resource scopes ("*" included).
#   Positions, not tokens, are the keys: hashing a number is cheaper than hashing a scope.
positions_of_type[type] contains i if {
	some i, type in quick_types
	type != null
	type != ""
	type != "?"
}

positions_of_type[type] contains i if some i, type in constrained_types

positions_of_type[p.type] contains i if {
	some i, p in fully_parsed
	p.kind == "resource"
}

# position -> full parse, for every token not recognised above (malformed ones among them).
fully_parsed := object.union(
	{i: scope.parse(tokens[i]) | some i, type in quick_types; type == null},
	{i: scope.parse(tokens[i]) | constrained := constrained_types; some i in query_positions; not constrained[i]},
)

# METADATA
# title: parsed
# description: |
#   {valid, errors}: every malformed scope (and a claim of the wrong shape), in token order.
parsed := {"valid": count(errors) == 0, "errors": errors}

errors := array.concat(claim_shape_errors, [{"scope": p.scope, "error": p.error} |
	parses := fully_parsed
	count(parses) > 0
	some i, _ in tokens
	p := parses[i]
	p.kind == "invalid"
])

# The contexts of the resource scopes.
resource_contexts := {split(tokens[i], "/")[0] | some i in resource_positions}

resource_positions := [i | some _, positions in positions_of_type; some i in positions]

# METADATA
# title: grants_of
# description: |
#   The grants on resource type t (its own scopes and the "*" ones): one per distinct
#   (context, type, constraints), with the union of their letters and their scopes, in sorted order
#   (a set's iteration order differs between OPA's evaluator and its WASM target). A Bundle filter
#   or a batch asks for the same types again and again: for those the grants are computed once per
#   decision, for the types of the response's entries, and for every type of a batch when the token
#   has few resource scopes; otherwise each time, for the type asked about.
grants_of(t) := g if {
	g := cached_grants[t]
} else := type_grants(t) if {
	object.get(positions_of_type, t, false)
} else := wildcard_grants

cached_grants := {t: type_grants(t) | some t, _ in positions_of_type} if {
	input.request.body.resourceType == "Bundle"
	count(resource_positions) <= 8
} else := {t: type_grants(t) | some t in response_types; object.get(positions_of_type, t, false)}

response_types := {t | some e in input.response.entry; t := e.resource.resourceType; is_string(t)}

type_grants(t) := group(array.concat([scope.parse(tokens[i]) | some i in positions_of_type[t]], wildcard_scopes_unless(t)))

# "*" is itself a type name only in the wildcard scopes: they are counted once.
wildcard_scopes_unless(t) := [] if t == "*"

wildcard_scopes_unless(t) := wildcard_scopes if t != "*"

wildcard_scopes := [scope.parse(tokens[i]) | some i in object.get(positions_of_type, "*", set())]

# The grants on a type without scopes of its own.
wildcard_grants := group(wildcard_scopes)

# METADATA
# title: grants
# description: |
#   [{context, type, constraints, letters, scopes}], one per distinct (context, type, constraints)
#   over all types, in sorted order. Parses every resource scope: decisions use grants_of.
grants := group([scope.parse(tokens[i]) | some i in resource_positions])

# Groups parsed resource scopes by (context, type, constraints) in linear time after one sort:
# the rows of a key are consecutive, and each key's first row differs from the row before it.
group(ps) := [grant(array.slice(rows, start, ends[j])) | some j, start in starts] if {
	rows := sort([[p.context, p.type, p.constraints, p.scope, p.permissions] | some p in ps])
	keys := [[r[0], r[1], r[2]] | some r in rows]
	previous := array.concat([null], keys)
	starts := [i | some i, k in keys; previous[i] != k]
	ends := array.concat(array.slice(starts, 1, count(starts)), [count(rows)])
}

grant(run) := {
	"context": run[0][0],
	"type": run[0][1],
	"constraints": run[0][2],
	"letters": {l | some r in run; some l in r[4]},
	"scopes": [r[3] | some r in run],
}

# Grants that give `letter` on resource type `t` (a "*" grant covers every type).
for(t, letter) := [g | some g in grants_of(t); letter in g.letters]

# Grants that give any of `letters` on `t`.
for_any(t, letters) := [g | some g in grants_of(t); some l in letters; l in g.letters]

# The launch patient, when the token carries a well-formed one. Never taken from fhirUser.
patient_id := claims.patient if {
	is_string(claims.patient)
	fhir.valid_id(claims.patient)
}

# The contexts the token already uses, in the order a client would most likely ask for more.
used_contexts := [c | some c in scope.contexts; c in resource_contexts]
