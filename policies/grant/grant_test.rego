package smart.grant_test

import data.smart.grant
import data.smart.scope

with_scope(claim) := {"claims": {"scope": claim, "patient": "123"}}

test_scopes_that_differ_only_in_letters_are_one_grant if {
	gs := grant.for("Observation", "r") with input as with_scope("patient/Observation.r patient/Observation.s user/Observation.read")
	gs == [
		{"context": "patient", "type": "Observation", "constraints": [], "letters": {"r", "s"}, "scopes": ["patient/Observation.r", "patient/Observation.s"]},
		{"context": "user", "type": "Observation", "constraints": [], "letters": {"r", "s"}, "scopes": ["user/Observation.read"]},
	]
}

test_grants_on_a_type_include_the_wildcard_scopes_once if {
	claim := "patient/*.rs patient/Observation.rs?category=laboratory user/Condition.read"
	[g.type | some g in grant.for("Observation", "s")] == ["*", "Observation"] with input as with_scope(claim)
	[g.type | some g in grant.for("Condition", "r")] == ["*", "Condition"] with input as with_scope(claim)
	[g.type | some g in grant.for("*", "r")] == ["*"] with input as with_scope(claim)
	[g.type | some g in grant.for("Patient", "r")] == ["*"] with input as with_scope(claim)
	grant.for("Observation", "c") == [] with input as with_scope(claim)
}

test_constrained_scopes_keep_their_constraints if {
	claim := "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs&status=final"
	gs := grant.for_any("Observation", ["r", "s"]) with input as with_scope(claim)
	{g.constraints | some g in gs} == {
		[{"param": "category", "values": ["laboratory"]}],
		[{"param": "category", "values": ["vital-signs"]}, {"param": "status", "values": ["final"]}],
	}
}

test_malformed_scopes_are_reported_in_token_order_and_grant_nothing if {
	claim := "patient/Observation.sr  openid patient/Foo.rs patient/Observation.sr patient/Condition.rs"
	grant.parsed.errors == [
		{"scope": "patient/Observation.sr", "error": scope.permission_message("sr")},
		{"scope": "patient/Foo.rs", "error": scope.unknown_type_message("Foo")},
		{"scope": "patient/Observation.sr", "error": scope.permission_message("sr")},
	] with input as with_scope(claim)
	grant.parsed.valid == false with input as with_scope(claim)
	grant.for("Observation", "r") == [] with input as with_scope(claim)
	count(grant.for("Condition", "r")) == 1 with input as with_scope(claim)
}

# A query the cheap path cannot vouch for (not printable ASCII, percent-encoded, with a comma) is
# parsed in full: reported when malformed or unsafe to append (L8: non-ASCII values), granted when
# well-formed.
test_queries_are_parsed_in_full_when_they_need_it if {
	claim := "patient/Observation.rs?code=\tx patient/Observation.rs?code=%C3%A9 patient/Observation.rs?status=final,amended user/Condition.rs?code=é"
	[e.scope | some e in grant.parsed.errors] == ["patient/Observation.rs?code=\tx", "patient/Observation.rs?code=%C3%A9", "user/Condition.rs?code=é"] with input as with_scope(claim)
	{g.constraints[0].values | some g in grant.for("Observation", "r")} == {["final", "amended"]} with input as with_scope(claim)
}

# A malformed query elsewhere in the claim does not stop the well-formed ones from being recognised.
test_one_unprintable_query_does_not_hide_the_others if {
	claim := "patient/Observation.rs?category=laboratory patient/Condition.rs?code=\u007f"
	count(grant.for("Observation", "r")) == 1 with input as with_scope(claim)
	[e.scope | some e in grant.parsed.errors] == ["patient/Condition.rs?code=\u007f"] with input as with_scope(claim)
}

test_claim_shapes if {
	count(grant.for("Observation", "r")) == 1 with input as with_scope(["patient/Observation.rs", 7, ""])
	count(grant.for("Observation", "r")) == 1 with input as {"claims": {"scp": "patient/Observation.rs"}}
	grant.parsed == {"valid": true, "errors": []} with input as {"claims": {}}
	grant.parsed.errors == [{"scope": "", "error": "the scope claim must be a space-separated string or an array of strings"}] with input as with_scope(42)
	grant.parsed.valid with input as with_scope("  openid   launch/patient ")
}

test_used_contexts_follow_patient_user_system if {
	grant.used_contexts == ["user", "system"] with input as with_scope("system/Observation.rs openid user/*.read")
	grant.used_contexts == [] with input as with_scope("openid fhirUser patient/Foo.rs")
}

test_all_grants_over_every_type if {
	gs := grant.grants with input as with_scope("user/Observation.rs openid patient/*.read patient/Condition.rs?category=x user/Observation.c")
	[[g.context, g.type, g.letters] | some g in gs] == [
		["patient", "*", {"r", "s"}],
		["patient", "Condition", {"r", "s"}],
		["user", "Observation", {"c", "r", "s"}],
	]
}

# The cost of a decision is linear in the number of scopes; its result does not depend on how many
# unrelated scopes come with the ones that matter.
many_scopes := concat(" ", [concat("", [c, "/", t, ".rs"]) |
	some t, _ in data.fhir.r4.resource_types
	t != "Observation"
	some c in ["patient", "user"]
])

test_unrelated_scopes_change_nothing if {
	few := "patient/Observation.rs?category=laboratory user/Observation.read"
	alone := grant.for("Observation", "r") with input as with_scope(few)
	among_many := grant.for("Observation", "r") with input as with_scope(concat(" ", [many_scopes, few]))
	count(alone) == 2
	alone == among_many
	grant.parsed.valid with input as with_scope(concat(" ", [many_scopes, few]))
}

# Grants are computed once per decision for the types of a response's entries (and for every type
# when the token has few resource scopes): the same grants as computed on demand.
test_cached_grants_are_the_grants_on_demand if {
	claim := concat(" ", [many_scopes, "patient/Observation.rs?category=laboratory user/Observation.read"])
	response := {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation"}}, {"resource": {"resourceType": "Condition"}}]}
	on_demand := [grant.for_any(t, ["r", "s"]) | some t in ["Observation", "Condition", "Patient", "*"]] with input as with_scope(claim)
	cached := [grant.for_any(t, ["r", "s"]) | some t in ["Observation", "Condition", "Patient", "*"]] with input as object.union(with_scope(claim), {"response": response})
	count({g | some g in on_demand[0]}) == 2
	on_demand == cached
	few := object.union(with_scope("patient/Observation.rs?category=laboratory user/Observation.read patient/*.s"), {"request": {"body": {"resourceType": "Bundle"}}})
	count(grant.cached_grants) == 2 with input as few
	[grant.for(t, "s") | some t in ["Observation", "Condition"]] == [grant.type_grants(t) | some t in ["Observation", "Condition"]] with input as few
}
