package smart.scope_test

import data.smart.scope

kind(t) := scope.parse(t).kind

test_v2_permission_subsets_in_order_are_valid if {
	every t in ["patient/Observation.rs", "patient/Observation.cruds", "user/Appointment.cud", "system/*.s", "patient/Observation.c", "patient/Observation.rd"] {
		kind(t) == "resource"
	}
}

test_v2_permissions_out_of_order_or_repeated_are_invalid if {
	every t in ["patient/Observation.sr", "patient/Observation.rrs", "patient/Observation.dus", "patient/Observation.RS", "patient/Observation.xyz", "patient/Observation.", "patient/Observation.rs.x"] {
		kind(t) == "invalid"
	}
}

test_v1_permissions_map_to_v2_letters if {
	scope.parse("patient/Observation.read").permissions == ["r", "s"]
	scope.parse("patient/Observation.write").permissions == ["c", "u", "d"]
	scope.parse("user/*.*").permissions == ["c", "r", "u", "d", "s"]
	scope.parse("patient/Observation.read").syntax == "v1"
}

test_v1_permissions_take_no_query if {
	p := scope.parse("patient/Observation.read?category=x")
	p.kind == "invalid"
	contains(p.error, "v1")
}

test_contexts_and_types_are_case_sensitive if {
	kind("Patient/Observation.read") == "invalid"
	kind("doctor/Observation.rs") == "invalid"
	p := scope.parse("patient/observation.read")
	p.kind == "invalid"
	contains(p.error, "unknown resource type 'observation'")
}

test_non_resource_scopes_are_recognised if {
	kind("openid") == "identity"
	kind("fhirUser") == "identity"
	kind("profile") == "identity"
	kind("launch") == "launch"
	kind("launch/patient") == "launch"
	kind("launch/relatedperson?role=friend") == "launch"
	kind("offline_access") == "refresh"
	kind("online_access") == "refresh"
	kind("__profilePhoto.manage") == "extension"
	kind("https://ehr.example.org/scopes/profilePhoto.manage") == "extension"
}

test_unknown_words_are_reported if {
	p := scope.parse("superuser")
	p.kind == "invalid"
	contains(p.error, "unrecognized scope")
}

test_query_constraints_parse_into_anded_params_with_ored_values if {
	p := scope.parse("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory&status=final,amended")
	p.constraints == [
		{"param": "category", "values": ["http://terminology.hl7.org/CodeSystem/observation-category|laboratory"]},
		{"param": "status", "values": ["final", "amended"]},
	]
}

test_query_values_are_percent_decoded if {
	p := scope.parse("patient/Observation.rs?category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory")
	p.constraints[0].values == ["http://terminology.hl7.org/CodeSystem/observation-category|laboratory"]
}

test_malformed_queries_are_invalid if {
	every t in ["patient/Observation.rs?", "patient/Observation.rs?category", "patient/Observation.rs?=x", "patient/Observation.rs?category=", "patient/Observation.rs?a=b&", "patient/Observation.rs?code=%zz"] {
		kind(t) == "invalid"
	}
}

# L8: constraint values become `narrow` values that hosts append to URLs as they are: a value that
# could inject or cut off parameters makes the scope invalid.
test_constraint_values_that_are_unsafe_in_a_url_make_the_scope_invalid if {
	every q in [
		"category=laboratory%26patient%3D999", "category=laboratory%23", "category=a%3Db", "category=a%25",
		"category=a%2Bb", "category=a+b", "category=a%3Fb", "category=a%20b",
		"category=%C3%A9", "category=a%5Cb", "category=a%22b", "category=a%3Cb",
		"category=a%5Eb", "category=a%60b", "category=a%7Bb", "category=a%5Bb",
		"category=ok,bad%26x",
	] {
		p := scope.parse(concat("", ["patient/Observation.rs?", q]))
		p.kind == "invalid"
		startswith(p.error, "query constraint values may contain only")
	}

	# Control characters are refused by percent-decoding itself.
	every q in ["category=a%0Ab", "category=a%09b", "category=a%00b", "category=a%7Fb"] {
		scope.parse(concat("", ["patient/Observation.rs?", q])).kind == "invalid"
	}
}

test_constraint_values_of_real_tokens_are_safe if {
	every q in [
		"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"code=http%3A%2F%2Floinc.org%7C1234-5", "code=urn:oid:2.16.840.1.113883.6.1|1234-5",
		"category=|laboratory", "status=final,amended", "code=a_b~c.d!$'()*;@", "category=a%5C,b",
	] {
		scope.parse(concat("", ["patient/Observation.rs?", q])).kind == "resource"
	}
}

test_tokens_split_on_spaces_and_accept_arrays if {
	scope.tokens("a  b ") == ["a", "b"]
	scope.tokens(["a", 1, "b"]) == ["a", "b"]
	not scope.tokens(42)
}

test_parse_all_reports_every_error_and_keeps_valid_scopes if {
	r := scope.parse_all("patient/Observation.rs patient/Condition.sr openid")
	r.valid == false
	r.errors == [{"scope": "patient/Condition.sr", "error": scope.permission_message("sr")}]
	count(r.scopes) == 3
}

test_parse_all_rejects_non_string_claims if {
	r := scope.parse_all({"x": 1})
	r.valid == false
	count(r.errors) == 1
}

test_missing_dot_is_reported if {
	contains(scope.parse("patient/Observation").error, "missing '.'")
}

# data.scope.tables is generated (scripts/generate-policy-tables.mjs); recomputed here.
test_permission_table_is_v1_and_every_ordered_subset_of_cruds if {
	letters := ["c", "r", "u", "d", "s"]
	v2 := {concat("", [l | some i, l in letters; bits.and(mask, bits.lsh(1, 4 - i)) != 0]) | some mask in numbers.range(1, 31)}
	count(v2) == 31
	scope.permissions == object.union({"read": "v1", "write": "v1", "*": "v1"}, {p: "v2" | some p in v2})
}

test_heads_table_has_every_context_and_resource_type if {
	types := {t | some t, _ in data.fhir.r4.resource_types} | {"*"}
	scope.heads == {concat("/", [c, t]): t | some c in scope.contexts; some t in types}
}

# Tokens the cheap recognisers accept (grant.rego relies on them) and what parse says of them.
quick_cases := [
	"patient/*.rs", "user/*.cruds", "system/*.read", "patient/*.*", "user/*.write",
	"patient/Observation.rs", "patient/Observation.read", "user/Observation.cud", "system/Condition.s",
	"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
	"patient/Observation.rs?category=laboratory&status=final",
	"user/Condition.cruds?clinical-status=active&category=problem-list-item",
]

# Tokens they must leave to parse: malformed ones, and forms that need decoding or more checks.
not_quick_cases := [
	"patient/Observation", "patient/Observation.", "patient/Observation.sr", "patient/Observation.RS",
	"patient/observation.rs", "Patient/Observation.rs", "patient/Foo.rs", "patient/Observation.rs.x",
	"patient/Observation.read?category=x", "patient/Observation.rs?", "patient/Observation.rs?category",
	"patient/Observation.rs?=x", "patient/Observation.rs?category=", "patient/Observation.rs?a=b&",
	"patient/Observation.rs?a=b&&c=d", "patient/Observation.rs?code=%zz", "patient/Observation.rs?code=%C3%A9",
	"patient/Observation.rs?status=final,amended", "patient/Observation.rs?code=a=b", "patient/Observation.rs?a=b?c=d",
	"patient://x.rs", "launch/patient", "openid", "superuser", "",
]

test_quick_recognisers_agree_with_parse if {
	plain := scope.plain_resource_types(quick_cases)
	constrained := scope.constrained_resource_types(quick_cases)
	every i, t in quick_cases {
		p := scope.parse(t)
		p.kind == "resource"
		object.get(plain, i, object.get(constrained, [i, 0], null)) == p.type
	}
}

test_quick_recognisers_leave_other_forms_to_parse if {
	count(scope.plain_resource_types(not_quick_cases)) == 0
	count(scope.constrained_resource_types(not_quick_cases)) == 0
}

test_constrained_recogniser_returns_the_query_for_the_printable_check if {
	scope.constrained_resource_types(["user/Condition.rs?category=x|y&code=z"]) == {0: ["Condition", "category=x|y&code=z", "x|yz"]}
}

test_narrow_safe_checks_short_and_long_values_alike if {
	long := concat("", [x | some _ in numbers.range(1, 30); x := "ab|c."])
	scope.narrow_safe("http://loinc.org|1234-5")
	scope.narrow_safe(long)
	not scope.narrow_safe("")
	not scope.narrow_safe("a b")
	not scope.narrow_safe(concat("", [long, "&x"]))
	not scope.narrow_safe(concat("", [long, "é"]))
}
