# Denials that do not depend on grants: unsupported, unknown and malformed search parameters,
# history parameters, chains and reverse chains through types the token cannot search.
package smart.access

import data.smart.compartment
import data.smart.config
import data.smart.grant
import data.smart.lib.fhir
import data.smart.request
import data.smart.verdict

hidden(c, code) := verdict.deny(config.hidden_status, code, concat("", [c.type, "/", c.id, " is not available to this token"]))

# Unsupported or unknown search parameters, chains and reverse chains through types the token
# cannot search (FHIR R4 security: "Chained search provides the ability to disclose information
# on related resources"). History takes no search parameters (FHIR R4 3.1.0.12: _count,
# _since, _at, _list): a server ignores or rejects the others, so they can never narrow it.
request_level_denial(c) := verdict.deny(400, "history-parameter-unsupported", concat("", [
	"the parameter ", p.name, " cannot be used with ", c.interaction,
	" (history takes only _count, _since and _at)",
])) if {
	c.interaction in history_interactions
	some p in c.params
	not history_parameter(c, p.name)
} else := denials[0] if {
	searchy(c)
	denials := [v | some p in c.params; v := param_denial(c, p)]
	count(denials) > 0
}

history_interactions := {"history-instance", "history-type", "history-system"}

history_parameter(_, name) if name in {"_count", "_since", "_at", "_format", "_pretty"}

history_parameter(c, "_type") if c.interaction == "history-system"

searchy(c) if c.interaction in search_interactions

searchy(c) if c.interaction in system_interactions

searchy(c) if c.conditional

unsupported_params := {"_filter", "_query", "_contained", "_containedType"}

param_denial(c, p) := verdict.deny(403, "search-parameter-unsupported", concat("", ["the search parameter ", p.name, " cannot be authorized and is refused"])) if {
	p.name in unsupported_params
} else := v if {
	startswith(p.name, "_has:")
	v := has_denial(c, p)
} else := v if {
	not startswith(p.name, "_has:")
	p.chain != ""
	v := chain_denial(c, p)
} else := verdict.deny(400, "include-malformed", concat("", ["cannot authorize ", p.name, "=", concat(",", p.values)])) if {
	p.base in {"_include", "_revinclude"}
	some v in p.values
	not include_value_ok(v)
} else := verdict.deny(400, "search-parameter-unknown", concat("", ["unknown search parameter '", p.name, "' for ", c.type])) if {
	config.unknown_search_parameters == "deny"
	not startswith(p.name, "_has:")
	p.chain == ""
	not known_param(c, p.base)
}

known_param(_, name) if name in request.result_parameters

known_param(_, name) if data.fhir.r4.search_params.Resource[name]

known_param(c, name) if data.fhir.r4.search_params[c.type][name]

known_param(c, name) if {
	c.interaction in system_interactions
	some t in c.types
	data.fhir.r4.search_params[t][name]
}

include_value_ok(v) if {
	parts := split(v, ":")
	count(parts) in {2, 3}
	fhir.resource_type(parts[0])
	parts[1] != "*"
}

# _has:Type:param:… reveals Type's data: the token must be able to search Type.
has_denial(c, p) := verdict.deny(400, "search-parameter-malformed", concat("", ["malformed reverse chain ", p.name])) if {
	some t in has_types(p.name)
	not fhir.resource_type(t)
} else := verdict.deny(400, "search-parameter-malformed", concat("", ["malformed reverse chain ", p.name])) if {
	count(split(p.name, ":")) < 4
} else := object.union(scope_missing(c, missing[0], ["s"]), {"required_scopes": [required_scope(t, ["s"]) | some t in missing]}) if {
	missing := [t | some t in has_types(p.name); count(grant.for(t, "s")) == 0]
	count(missing) > 0
} else := chain_not_searchable(p, unreachable[0]) if {
	unreachable := [t | some i, t in has_types(p.name); not has_type_reachable(c, p, i, t)]
	count(unreachable) > 0
}

# METADATA
# title: has_type_reachable
# description: |
#   The records a reverse chain examines at step i (type t) are ones this token could search
#   itself: t is searchable without confinement, or t is searchable only inside the patient's
#   compartment and the reverse chain stays there: it starts from the patient's own Patient
#   resource through a linking parameter (Patient?_has:Observation:patient:code=x), or its own
#   condition names only the patient (_has:Observation:has-member:patient=123).
has_type_reachable(c, p, i, t) if has_type_reachable_openly(c, p, i, t)

has_type_reachable(c, p, 0, t) if {
	compartment_searchable(t)
	c.type == "Patient"
	patient_search_path(c)
	split(p.name, ":")[2] in compartment.linking_params(t)
}

# Reachable on every grant's path, not only on a patient/ grant's (whose search is confined).
has_type_reachable_openly(_, _, _, t) if open_searchable(t)

has_type_reachable_openly(_, p, 0, t) if {
	compartment_searchable(t)
	has_confined_to_patient(p, grant.patient_id)
}

# t can be searched with no confinement: an unconstrained user/ or system/ grant, or a patient/
# grant on a type outside the compartment that is shared with patient/ scopes.
open_searchable(t) if {
	some g in grant.for(t, "s")
	count(g.constraints) == 0
	unconfined_context(g)
}

open_searchable(t) if {
	not patient_type(t)
	config.shared_type(t)
	some g in grant.for(t, "s")
	count(g.constraints) == 0
}

# t can be searched only inside the patient's compartment (an unconstrained patient/ grant).
compartment_searchable(t) if {
	patient_type(t)
	grant.patient_id
	some g in grant.for(t, "s")
	count(g.constraints) == 0
	g.context == "patient"
}

# A patient/ grant may search c.type: on its path the search is confined to the patient (the
# chained link too, see chained_link_verdict). Whether other grants may search the same way is
# decided per grant (open_search_chain_verdict), so adding a grant never removes this path.
patient_search_path(c) if {
	grant.patient_id
	some g in grant.for(c.type, "s")
	g.context == "patient"
}

chain_not_searchable(p, t) := verdict.deny(403, "chain-not-searchable", concat("", [
	"the chained parameter ", p.name, " reaches ", t,
	" records this token may not search that way (only inside the patient's compartment or its scope constraints, or not at all)",
]))

# METADATA
# title: open_search_chain_verdict
# description: |
#   On the path of a user/ or system/ grant the search is not confined to a patient, so a chain
#   or reverse chain may only pass through types this token can search openly; one that reaches a
#   type searchable only inside the patient's compartment is left to the patient/ grant's path
#   (which confines it) and refused on this one.
open_search_chain_verdict(c) := chain_not_searchable(refused[0].param, refused[0].type) if {
	searchy(c)
	refused := sort([{"param": p, "type": t} | some p in c.params; some t in openly_unreachable(c, p)])
	count(refused) > 0
} else := verdict.allow

openly_unreachable(c, p) := {t |
	some i, t in has_types(p.name)
	not has_type_reachable_openly(c, p, i, t)
} if {
	startswith(p.name, "_has:")
} else := {t |
	some i, level in chain_levels(c, p)
	some t in level
	not chain_type_reachable_openly(c, p, i, t)
} if {
	p.chain != ""
}

# The types a reverse chain passes through: _has:Observation:patient:_has:AuditEvent:entity:agent.
has_types(name) := [parts[i + 1] | parts := split(name, ":"); some i, x in parts; x == "_has"]

# subject:Patient.name=x (or subject.name=x, or subject:Patient.organization.name=x) reveals the
# data of every type the chain passes through: each must be searchable by the token, and the
# final parameter must exist on the last types.
chain_denial(c, p) := verdict.deny(400, "search-parameter-unknown", concat("", ["cannot resolve the chained parameter ", p.name])) if {
	not chain_resolves(c, p)
} else := object.union(scope_missing(c, missing[0], ["s"]), {"required_scopes": [required_scope(t, ["s"]) | some t in missing]}) if {
	missing := sort({t | some level in chain_levels(c, p); some t in level; count(grant.for(t, "s")) == 0})
	count(missing) > 0
} else := chain_not_searchable(p, unreachable[0]) if {
	unreachable := sort({t | some i, level in chain_levels(c, p); some t in level; not chain_type_reachable(c, p, i, t)})
	count(unreachable) > 0
}

# METADATA
# title: chain_type_reachable
# description: |
#   The resources a chain reaches at step i (type t) are ones this token could search itself:
#   t is searchable without confinement, or t is searchable only inside the patient's compartment
#   and the chain stays there: its first step follows a linking parameter of a search that is
#   itself confined (the parameter's own link is then confined, see chained_link_verdict), or it
#   has one step whose condition names only the patient (has-member:Observation.patient=123).
chain_type_reachable(c, p, i, t) if chain_type_reachable_openly(c, p, i, t)

chain_type_reachable(c, p, 0, t) if {
	compartment_searchable(t)
	p.base in compartment.linking_params(c.type)
	patient_type(c.type)
	patient_search_path(c)
}

# Reachable on every grant's path, not only on a patient/ grant's (whose search is confined).
chain_type_reachable_openly(_, _, _, t) if open_searchable(t)

chain_type_reachable_openly(_, p, 0, t) if {
	compartment_searchable(t)
	count(chain_segments(p)) == 1
	final := {"base": split(p.chain, ":")[0], "modifier": substring(p.chain, count(split(p.chain, ":")[0]) + 1, -1), "chain": "", "values": p.values}
	compartment.linking_param_occurrence(t, final)
	count(p.values) > 0
	every v in p.values {
		compartment.value_kind(t, final, v, grant.patient_id) == "ours"
	}
}

chain_resolves(c, p) if {
	levels := chain_levels(c, p)
	count(levels) == count(split(p.chain, "."))
	every level in levels {
		count(level) > 0
	}
	final := split(split(p.chain, ".")[count(levels) - 1], ":")[0]
	some t in levels[count(levels) - 1]
	known_param(object.union(c, {"type": t, "interaction": "search-type"}), final)
}

chain_segments(p) := split(p.chain, ".")

# The types reached at each step: first by the parameter itself, then by each intermediate
# segment of the chain (at most four steps).
chain_levels(c, p) := [chain_targets(c, p)] if count(chain_segments(p)) == 1

chain_levels(c, p) := [l1, chain_step(l1, chain_segments(p)[0])] if {
	count(chain_segments(p)) == 2
	l1 := chain_targets(c, p)
}

chain_levels(c, p) := [l1, l2, chain_step(l2, chain_segments(p)[1])] if {
	count(chain_segments(p)) == 3
	l1 := chain_targets(c, p)
	l2 := chain_step(l1, chain_segments(p)[0])
}

chain_levels(c, p) := [l1, l2, l3, chain_step(l3, chain_segments(p)[2])] if {
	count(chain_segments(p)) == 4
	l1 := chain_targets(c, p)
	l2 := chain_step(l1, chain_segments(p)[0])
	l3 := chain_step(l2, chain_segments(p)[1])
}

chain_step(types, segment) := [m] if {
	m := substring(segment, indexof(segment, ":") + 1, -1)
	contains(segment, ":")
	fhir.resource_type(m)
} else := [] if {
	contains(segment, ":")
} else := sort({t | some from in types; some t in object.get(object.get(data.fhir.r4.search_params, from, {}), [segment, "targets"], [])})

chain_targets(c, p) := [p.modifier] if {
	fhir.resource_type(p.modifier)
} else := [] if {
	p.modifier != ""
} else := object.get(object.get(data.fhir.r4.search_params, c.type, {}), [p.base, "targets"], [])
