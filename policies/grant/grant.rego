# METADATA
# title: Grants
# description: |
#   What the token's resource scopes grant. Scopes that differ only in their letters are one
#   grant ("Observation.rs" is equivalent to "Observation.r Observation.s", SLC "Scope
#   equivalence"); separate grants are ORed. Malformed scopes grant nothing and are reported.
package smart.grant

import data.smart.lib.fhir
import data.smart.scope

claims := object.get(input, "claims", {})

scope_claim := claims.scope

scope_claim := claims.scp if not claims.scope

parsed := scope.parse_all(scope_claim)

parsed := scope.parse_all("") if {
	not claims.scope
	not claims.scp
}

resource_scopes := [p | some p in parsed.scopes; p.kind == "resource"]

grant_keys := {[p.context, p.type, p.constraints] | some p in resource_scopes}

# METADATA
# title: grants
# description: |
#   [{context, type, constraints, letters, scopes}], one per distinct (context, type, constraints),
#   in sorted order (a set's iteration order differs between OPA's evaluator and its WASM target).
grants := [g |
	some key in sort(grant_keys)
	members := [p | some p in resource_scopes; [p.context, p.type, p.constraints] == key]
	g := {
		"context": key[0],
		"type": key[1],
		"constraints": key[2],
		"letters": {l | some p in members; some l in p.permissions},
		"scopes": sort([p.scope | some p in members]),
	}
]

# Grants that give `letter` on resource type `t` (a "*" grant covers every type).
for(t, letter) := [g | some g in grants; g.type in {t, "*"}; letter in g.letters]

# Grants that give any of `letters` on `t`.
for_any(t, letters) := [g | some g in grants; g.type in {t, "*"}; some l in letters; l in g.letters]

# The launch patient, when the token carries a well-formed one. Never taken from fhirUser.
patient_id := claims.patient if {
	is_string(claims.patient)
	fhir.valid_id(claims.patient)
}

# The contexts the token already uses, in the order a client would most likely ask for more.
used_contexts := [c | some c in scope.contexts; some g in grants; g.context == c]
