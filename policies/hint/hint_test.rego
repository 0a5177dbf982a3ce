package smart.hint_test

import data.smart.hint

registration(scopes) := {"clients": {"app": {"scopes": scopes}}}

claims(scope) := {"client_id": "app", "patient": "123", "scope": scope}

test_v1_words_cover_the_letters_needed if {
	hint.v1_word(["r"]) == "read"
	hint.v1_word(["s"]) == "read"
	hint.v1_word(["c", "u"]) == "write"
	hint.v1_word(["r", "c"]) == "*"
}

test_a_wildcard_registration_covers_a_type_but_not_another_context if {
	c := {"context": "patient", "type": "Condition", "permissions": ["r"], "constraints": []}
	hint.obtainable(c) with data.clients as registration(["patient/*.rs"]) with input.claims as claims("")
	not hint.obtainable(object.union(c, {"context": "user"})) with data.clients as registration(["patient/*.rs"]) with input.claims as claims("")
	not hint.obtainable(object.union(c, {"permissions": ["u"]})) with data.clients as registration(["patient/*.rs"]) with input.claims as claims("")
}

test_a_constrained_registration_covers_only_its_constraint if {
	lab := [{"param": "category", "values": ["lab"]}]
	c := {"context": "patient", "type": "Observation", "permissions": ["r"], "constraints": lab}
	reg := registration(["patient/Observation.rs?category=lab"])
	hint.obtainable(c) with data.clients as reg with input.claims as claims("")
	not hint.obtainable(object.union(c, {"constraints": []})) with data.clients as reg with input.claims as claims("")
}

test_no_registration_no_hint_unless_configured if {
	c := {"context": "patient", "type": "Condition", "permissions": ["r"], "constraints": []}
	not hint.obtainable(c) with input.claims as claims("")
	hint.obtainable(c) with input.claims as claims("") with data.config.outcome.hint_without_registration as true
}

test_candidates_offer_the_token_constraint_first if {
	cands := hint.candidates(["patient/Observation.r"]) with data.clients as registration(["patient/*.rs"])
		with input.claims as claims("patient/Observation.s?category=lab")
	cands == [["patient/Observation.r?category=lab"], ["patient/Observation.r"]]
}

test_candidates_follow_a_v1_token if {
	cands := hint.candidates(["patient/Condition.r"]) with data.clients as registration(["patient/*.read"])
		with input.claims as claims("patient/Observation.read")
	cands == [["patient/Condition.read"]]
}
