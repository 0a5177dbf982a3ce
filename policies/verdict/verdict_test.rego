package smart.verdict_test

import data.smart.verdict

f(narrow) := verdict.filter(narrow)

d403 := verdict.deny(403, "x", "m")

d404 := verdict.deny(404, "y", "m")

test_all_of_lets_the_first_deny_win if {
	verdict.all_of(d403, d404) == d403
	verdict.all_of(verdict.allow, d404) == d404
	verdict.all_of(f([{"a": "1"}]), d403) == d403
}

test_all_of_keeps_the_narrower_side if {
	verdict.all_of(verdict.allow, verdict.allow) == verdict.allow
	verdict.all_of(verdict.allow, f([{"a": "1"}])) == f([{"a": "1"}])
	verdict.all_of(f([{"a": "1"}]), verdict.allow) == f([{"a": "1"}])
}

test_all_of_combines_alternatives_pairwise if {
	v := verdict.all_of(f([{"p": "1"}, {"q": "1"}]), f([{"c": "lab"}]))
	v == f([{"p": "1", "c": "lab"}, {"q": "1", "c": "lab"}])
}

test_all_of_drops_contradictory_pairs if {
	verdict.all_of(f([{"c": "lab"}, {"c": "vs"}]), f([{"c": "lab"}])) == f([{"c": "lab"}])
	v := verdict.all_of(f([{"c": "vs"}]), f([{"c": "lab"}]))
	v.decision == "deny"
	v.reason.code == "constraints-unsatisfiable"
}

test_all_of_list_handles_up_to_four if {
	verdict.all_of_list([]) == verdict.allow
	verdict.all_of_list([d403]) == d403
	verdict.all_of_list([verdict.allow, verdict.allow, d404]) == d404
	verdict.all_of_list([verdict.allow, verdict.allow, verdict.allow, f([{"a": "1"}])]) == f([{"a": "1"}])
}

test_any_of_prefers_allow_then_filter_then_the_strongest_deny if {
	verdict.any_of([d403, verdict.allow]) == verdict.allow
	verdict.any_of([d403, f([{"a": "1"}]), f([{"b": "2"}])]) == f([{"a": "1"}, {"b": "2"}])
	verdict.any_of([d403, d404]) == d404
	verdict.any_of([verdict.deny(401, "c", "m"), d403]) == d403
}

test_pruning_removes_duplicates_and_implied_alternatives if {
	verdict.pruned([{"a": "1"}, {"a": "1"}, {"a": "1", "b": "2"}, {"c": "3"}]) == [{"a": "1"}, {"c": "3"}]
}
