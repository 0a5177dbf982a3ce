# METADATA
# title: Verdict algebra
# description: |
#   A verdict is {"decision": "allow"}, {"decision": "filter", "narrow": [alternative, …]} or
#   {"decision": "deny", "status": n, "reason": {code, message}}. An alternative is an object of
#   search parameters that are ANDed; alternatives are ORed. Scopes that each grant an
#   interaction are ORed (any_of); conditions that must all hold are ANDed (all_of).
package smart.verdict

allow := {"decision": "allow"}

filter(narrow) := {"decision": "filter", "narrow": narrow}

deny(status, code, message) := {"decision": "deny", "status": status, "reason": {"code": code, "message": message}}

# METADATA
# title: all_of
# description: |
#   Both verdicts must hold: the first deny wins; narrowing alternatives are combined pairwise.
all_of(a, b) := a if {
	a.decision == "deny"
} else := b if {
	b.decision == "deny"
} else := a if {
	b.decision == "allow"
} else := b if {
	a.decision == "allow"
} else := filter(pruned(combined)) if {
	combined := [object.union(x, y) | some x in a.narrow; some y in b.narrow; compatible(x, y)]
	count(combined) > 0
} else := deny(403, "constraints-unsatisfiable", "the granted constraints cannot be met together by any resource")

# METADATA
# title: all_of_list
# description: |
#   Every verdict must hold. Narrowing from more than four verdicts at once is refused rather than
#   approximated.
all_of_list(vs) := [v | some v in vs; v.decision == "deny"][0] if {
	some v in vs
	v.decision == "deny"
} else := allow if {
	every v in vs {
		v.decision == "allow"
	}
} else := fold_filters([v | some v in vs; v.decision == "filter"])

fold_filters(fs) := fs[0] if count(fs) == 1

fold_filters(fs) := all_of(fs[0], fs[1]) if count(fs) == 2

fold_filters(fs) := all_of(all_of(fs[0], fs[1]), fs[2]) if count(fs) == 3

fold_filters(fs) := all_of(all_of(all_of(fs[0], fs[1]), fs[2]), fs[3]) if count(fs) == 4

fold_filters(fs) := deny(403, "narrowing-too-complex", "too many independent narrowings to combine safely") if count(fs) > 4

# Two alternatives can be ANDed into one object when they agree on every shared parameter.
compatible(x, y) if {
	every k, v in x {
		object.get(y, k, v) == v
	}
}

# METADATA
# title: any_of
# description: |
#   At least one verdict must hold: any allow wins; otherwise the narrowing alternatives of every
#   filter are ORed; otherwise the most telling deny (404 hides existence, so it wins).
any_of(vs) := allow if {
	some v in vs
	v.decision == "allow"
} else := filter(pruned([x | some v in vs; v.decision == "filter"; some x in v.narrow])) if {
	some v in vs
	v.decision == "filter"
} else := strongest_deny(vs)

strongest_deny(vs) := d if {
	denies := [v | some v in vs; v.decision == "deny"]
	count(denies) > 0
	statuses := [v.status | some v in denies]
	top := status_rank_max(statuses)
	d := [v | some v in denies; status_rank[v.status] == top][0]
}

status_rank := {400: 1, 401: 2, 403: 3, 404: 4, 500: 5}

status_rank_max(statuses) := max([status_rank[s] | some s in statuses])

# Drops duplicate alternatives and those implied by a less restrictive one (a superset of
# another alternative's parameters narrows more, so ORing it adds nothing).
pruned(alternatives) := [x |
	some i, x in alternatives
	not duplicate_before(alternatives, i, x)
	not implied_by_other(alternatives, x)
]

duplicate_before(alternatives, i, x) if {
	some j, y in alternatives
	j < i
	y == x
}

implied_by_other(alternatives, x) if {
	some y in alternatives
	y != x
	count(y) < count(x)
	every k, v in y {
		x[k] == v
	}
}
