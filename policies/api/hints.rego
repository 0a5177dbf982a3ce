# Scope hints that never mislead and never leak (issue 15); part of smart.api.
#   A denial that proposes scopes (smart.access scope_missing) names one only when, added to the
#   token's scopes with everything else equal, it turns the decision into allow or filter: the
#   request is decided again with the candidate, in this same evaluation. Candidates come from
#   smart.hint (narrowest first, in the client's syntax, only what the client may obtain). When
#   the proposed scope would not help, the answer is the denial the request deserves: the hidden
#   status (404) when the stored resource shows it could never succeed, else the denial without
#   a hint. Batches: per entry; a transaction names the scopes that make every entry pass, or none.
package smart.api

import data.smart.config
import data.smart.grant
import data.smart.hint
import data.smart.outcome

hinted(d) := transaction_hinted(d) if {
	classified.interaction == "transaction"
} else := d if {
	classified.interaction == "batch"
} else := d if {
	not asks_hint(d)
} else := with_instance_note(hinted_answer(
	d,
	[{"scopes": set, "decision": single_retry(set)} | some set in hint.candidates(d.required_scopes)],
	single_retry(d.required_scopes),
))

entry_hinted(e, d) := d if {
	not asks_hint(d)
} else := hinted_answer(
	d,
	[{"scopes": set, "decision": entry_retry(e, set)} | some set in hint.candidates(d.required_scopes)],
	entry_retry(e, d.required_scopes),
)

# The token's scopes with `extra` added, everything else equal.
with_scopes(extra) := concat(" ", array.concat(grant.tokens, extra))

single_retry(extra) := d if {
	d := unhinted with input.claims.scope as with_scopes(extra)
}

entry_retry(e, extra) := d if {
	d := entry_decision(e) with input.claims.scope as with_scopes(extra)
}

asks_hint(d) if {
	d.decision == "deny"
	count(object.get(d, "required_scopes", [])) > 0
}

# METADATA
# title: hinted_answer
# description: |
#   `tried`: each candidate with the decision it leads to; `proposed`: the decision with the
#   proposed scope itself, whether or not the client may obtain it. The first candidate that works
#   (allow or filter) is named; else, when the client may obtain some candidate and the proposed
#   scope meets a denial that depends on the stored instance (another patient's resource, a label
#   no grant lifts, outside a constraint), that denial (the hidden status, no hint), so that it
#   looks like the missing resource a hint for it is checked against; else the denial without a
#   hint. A client that may obtain no candidate gets no hint for any instance, so it gets the same
#   403 for its own record, another patient's and a missing one: a 404 there would tell another
#   patient's existing record (decided on it) from a missing one (decided without it, 403).
hinted_answer(d, tried, proposed) := with_hint(d, working[0]) if {
	working := [x.scopes | some x in tried; x.decision.decision != "deny"]
	count(working) > 0
} else := object.remove(proposed, ["required_scopes"]) if {
	count(tried) > 0
	proposed.decision == "deny"
	proposed.status == config.hidden_status
	proposed.reasons[0].code != "scope-missing"
} else := without_hint(d)

with_hint(d, scopes) := object.union(d, {
	"required_scopes": scopes,
	"outcome": outcome.for_deny({"status": d.status, "reason": d.reasons[0], "required_scopes": scopes}),
})

without_hint(d) := object.union(object.remove(d, ["required_scopes"]), {"outcome": outcome.for_deny({"status": d.status, "reason": d.reasons[0]})})

# An instance interaction decided without its stored resource: the hint holds only if that
# resource is within the token's reach, which the host checks (supplying it, or answering 404
# when it does not exist).
with_instance_note(d) := object.union(d, {"reasons": array.concat(d.reasons, [{
	"code": "stored-resource-not-supplied",
	"message": "the scope named works only if the stored resource is within this token's reach: decide again with it (or answer 404 when it does not exist) before naming the scope",
}])}) if {
	d.required_scopes
	classified.level == "instance"
	not input_resource
} else := d

# METADATA
# title: transaction_hinted
# description: |
#   A denied transaction names scopes only when every denied entry has a hint and the union of
#   those hints, added together, lets every entry pass; otherwise none.
transaction_hinted(d) := d if {
	d.decision != "deny"
} else := with_hint(d, scopes) if {
	denied := [x | some x in d.entries; x.decision == "deny"]
	every x in denied {
		count(object.get(x, "required_scopes", [])) > 0
	}
	scopes := sort({s | some x in denied; some s in x.required_scopes})
	n := denied_entries with input.claims.scope as with_scopes(scopes)
	n == 0
} else := d

denied_entries := count([e | some e in classified.entries; entry_decision(e).decision == "deny"])
