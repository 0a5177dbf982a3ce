# Patient/ grants: confined to the launch patient's compartment (instances, creates, conditional
# writes, searches, chains on linking parameters, the types outside the compartment).
package smart.access

import data.smart.compartment
import data.smart.config
import data.smart.grant
import data.smart.verdict

# system/ grants are unconfined; user/ grants are confined to the user (user_access.rego).
context_verdict(g, c, req, resource, l) := open_search_chain_verdict(c) if {
	g.context == "system"
} else := user_context_verdict(c, req, resource, l) if {
	g.context == "user"
} else := patient_context_missing if {
	not grant.patient_id
} else := patient_verdict(c, req, resource, l, grant.patient_id)

patient_verdict(c, req, resource, l, pid) := v if {
	c.interaction in instance_interactions
	c.level == "instance"
	v := patient_instance_verdict(c, req, resource, l, pid)
} else := v if {
	c.interaction == "create"
	l == "c"
	v := verdict.all_of(patient_type_writable(c.type), patient_body_verdict(c, req, pid))
} else := v if {
	c.interaction in {"update", "patch", "delete"}
	c.conditional
	l != "s"
	v := verdict.all_of_list([
		patient_type_writable(c.type),
		patient_search_verdict(c.type, c.params, pid),
		patient_body_verdict(c, req, pid),
		patient_patch_verdict(c, req),
	])
} else := v if {
	c.interaction in search_interactions
	v := patient_search_verdict_for(c, pid)
} else := patient_search_verdict(c.type, c.params, pid) if {
	l == "s"
	c.conditional
} else := verdict.deny(403, "patient-scope-system-search", "a patient/ scope cannot be used for a system-wide search or history; search the compartment instead (Patient/[id]/*)") if {
	c.interaction in system_interactions
} else := verdict.deny(403, "patient-scope-not-applicable", concat("", ["a patient/ scope does not cover ", c.interaction]))

patient_instance_verdict(c, req, resource, l, pid) := patient_type_verdict(c.type, referenced_letter(c, l)) if {
	not patient_type(c.type)
} else := hidden(c, "not-in-compartment") if {
	c.type == "Patient"
	c.id != pid
	not linked_patient_readable(c)
} else := verdict.all_of_list([
	patient_stored_verdict(c, resource, pid),
	patient_body_verdict(c, req, pid),
	patient_patch_verdict(c, req),
])

# Types whose instances belong to a patient: Patient itself and the compartment's members.
patient_type("Patient")

patient_type(t) if compartment.member_type(t)

# Outside the compartment: shared (master-file) types are readable, nothing else.
patient_type_verdict(t, l) := verdict.allow if {
	config.shared_type(t)
	l in {"r", "s"}
} else := verdict.deny(403, "shared-type-read-only", concat("", [t, " is shared data: patient/ scopes may read it, not change it"])) if {
	config.shared_type(t)
} else := referenced_type_verdict(t, l) if {
	t in referenced_types
} else := verdict.deny(403, "type-outside-patient-compartment", concat("", [t, " is not in the Patient compartment and is not configured as shared with patient/ scopes"]))

patient_type_writable(t) := verdict.deny(403, "patient-scope-cannot-create-patient", "a patient/ scope cannot create or conditionally change Patient resources") if {
	t == "Patient"
} else := verdict.allow if {
	compartment.member_type(t)
} else := patient_type_verdict(t, "c")

# The stored instance must be in the compartment; without it, only a narrowed form is allowed.
# A write changes it: then it must name no other patient either.
patient_stored_verdict(c, resource, pid) := stored_links_verdict(c, resource, pid) if {
	c.type == "Patient"
	c.id == pid
} else := stored_links_verdict(c, resource, pid) if {
	is_object(resource)
	compartment.member(resource, pid)
} else := hidden(c, "not-in-compartment") if {
	is_object(resource)
} else := verdict.allow if {
	creates_absent_resource(c)
} else := unnarrowed if {
	not narrowable(c)
} else := verdict.filter([{"_id": c.id, "link": concat("/", ["Patient", pid])}]) if {
	c.type == "Patient"
} else := verdict.filter([object.union({"_id": c.id}, alt) | some alt in compartment.narrowing(c.type, pid)])

# The host read the stored resource and there is none (input `resource_absent`): an update creates
# it, so nothing stored is in the way; its body is checked like a create's (patient_body_verdict).
# The input speaks of the request's own target: never of a batch or transaction entry (whose
# classification carries `bundle`), which the host has not read.
creates_absent_resource(c) if {
	c.interaction == "update"
	input.resource_absent == true
	not "bundle" in object.keys(c)
}

# With Patient.link followed (R4), another Patient that links to the patient is in its compartment:
# it may be read (decided on the stored resource), never changed through the link.
linked_patient_readable(c) if {
	config.follow_patient_link
	c.interaction in {"read", "vread", "history-instance"}
}

# A read can be narrowed by turning it into a search ([type]?_id=…&patient=…); a vread or an
# instance history cannot (no search selects versions): without the stored resource they are
# allowed only by checking the response, a filter without narrowing.
narrowable(c) if not c.interaction in {"vread", "history-instance"}

unnarrowed := verdict.filter([{}])

# A submitted resource (create, update) must stay in, or enter, the patient's compartment, and
# name no other patient in any element that links it to a patient: a write never crosses patients.
patient_body_verdict(c, req, pid) := verdict.allow if {
	not c.interaction in {"create", "update"}
} else := verdict.deny(403, "body-outside-compartment", "the submitted resource does not belong to the patient in context") if {
	not body_in_compartment(c, object.get(req, "body", null), pid)
} else := links_verdict(req.body, pid, object.get(c, "bundle", {}), "body", "the submitted resource")

body_in_compartment(c, body, pid) if {
	c.type == "Patient"
	body.id == pid
}

body_in_compartment(c, body, pid) if {
	c.type != "Patient"
	compartment.member(body, pid)
}

# METADATA
# title: links_verdict
# description: |
#   Every Reference in a linking element of a resource that is written (its new body, or the stored
#   instance an update, patch or delete changes) must name the patient in context, a resource of
#   another type, or nothing: another patient (here or on another server) is refused, and so is
#   any reference the policy cannot resolve.
links_verdict(resource, pid, bundle, what, name) := kinds_verdict(compartment.link_kinds(resource, pid, bundle), what, name)

# The reason codes, by what is written: the submitted body or the stored resource it replaces.
link_codes := {
	"body": {"other": "body-links-other-patient", "unverifiable": "body-link-unverifiable"},
	"resource": {"other": "resource-links-other-patient", "unverifiable": "resource-link-unverifiable"},
}

kinds_verdict(kinds, what, name) := verdict.deny(403, link_codes[what].other, concat("", [name, " links to a patient other than the one in context"])) if {
	"other-patient" in kinds
} else := verdict.deny(403, link_codes[what].unverifiable, concat("", [name, " has a patient-linking reference the policy cannot resolve (malformed, unresolved, conditional or identifier-only)"])) if {
	"unverifiable" in kinds
} else := verdict.allow

stored_links_verdict(c, resource, pid) := links_verdict(resource, pid, {}, "resource", "the stored resource") if {
	c.interaction in write_interactions
	is_object(resource)
} else := verdict.allow

# A patch must not rewrite the elements that place the resource in the compartment, nor add
# contained resources (whose links are checked like the resource's own on every other write).
patient_patch_verdict(c, req) := verdict.allow if {
	c.interaction != "patch"
} else := patch_guard(c.type, req, compartment.linking_elements(c.type) | {"contained"}, "patch-touches-compartment-link")

# History cannot be narrowed (it takes no search parameters), and a type's history spans every
# patient: answering it by checking each entry would page through everyone's records and, once an
# entry is dropped, lose the paging links, so the patient's own history would silently be cut
# short. It is refused; the history of each of the patient's resources can be read on its own.
patient_search_verdict_for(c, pid) := verdict.deny(403, "patient-scope-type-history", concat("", [
	"a patient/ scope cannot read the history of every ", c.type,
	" (history cannot be confined to the patient); read the history of each resource instead (",
	c.type, "/[id]/_history)",
])) if {
	c.interaction == "history-type"
	patient_type(c.type)
} else := patient_own_compartment_search(c, pid) if {
	c.interaction == "search-compartment"
	c.compartment.type == "Patient"
	c.compartment.id == pid
} else := verdict.deny(403, "compartment-other-patient", "the compartment searched is not the patient in context") if {
	c.interaction == "search-compartment"
	c.compartment.type == "Patient"
} else := verdict.deny(403, "compartment-not-patient", "a patient/ scope can search only the Patient compartment, not every type at once") if {
	c.type == "*"
} else := patient_search_verdict(c.type, c.params, pid)

# _has:MedicationRequest:medication:patient=123 looks only at the context patient's records.
has_confined_to_patient(p, pid) if {
	parts := split(p.name, ":")
	count(parts) == 4
	inner := {"base": parts[3], "modifier": "", "chain": "", "values": p.values}
	compartment.linking_param_occurrence(parts[1], inner)
	count(p.values) > 0
	every v in p.values {
		compartment.value_kind(parts[1], inner, v, pid) == "ours"
	}
}

# Patient/[pid]/[type]: confined by the server for member types; Patient/[pid]/Patient would list
# linked patients (not followed by default), so it is narrowed to the patient itself; other types
# follow the rules for types outside the compartment.
patient_own_compartment_search(c, pid) := v if {
	c.type == "Patient"
	v := patient_search_verdict("Patient", c.params, pid)
} else := verdict.allow if {
	c.type == "*"
} else := chained_link_verdict(c.type, c.params, pid) if {
	compartment.member_type(c.type)
} else := patient_type_verdict(c.type, "s")

patient_search_verdict(t, params, pid) := verdict.all_of(patient_search_scope_verdict(t, params, pid), chained_link_verdict(t, params, pid))

# A chain on a linking parameter (Observation?subject:Patient.name=x) looks into the resource
# that parameter references. Narrowing the search by another linking parameter (performer) would
# let it reach another patient's name, so when the chain can reach a type this token searches only
# inside the compartment, the chained parameter's own link is confined to the patient, ANDed with
# the rest, unless the request already confines that link.
chained_link_verdict(t, params, pid) := verdict.allow if {
	count(unconfined_chained_links(t, params, pid)) == 0
} else := verdict.filter([{compartment.links(t)[l].narrow_param: concat("/", ["Patient", pid]) | some l in unconfined_chained_links(t, params, pid)}])

unconfined_chained_links(t, params, pid) := chained_links(t, params) - confined_links(t, params, pid)

chained_links(t, params) := {l |
	some p in params
	p.chain != ""
	not startswith(p.name, "_has:")
	some target in chain_targets({"type": t}, p)
	not open_searchable(target)
	some l in links_of_param(t, p.base)
}

confined_links(t, params, pid) := {l |
	some p in params
	compartment.linking_param_occurrence(t, p)
	count(p.values) > 0
	every v in p.values {
		compartment.value_kind(t, p, v, pid) == "ours"
	}
	links := links_of_param(t, p.base)
	count(links) == 1
	some l in links
}

# The compartment links (CompartmentDefinition parameters) a search parameter of t reads: by its
# name, as the link's narrowing parameter, or by the element paths it shares with the link.
links_of_param(t, name) := {l |
	some l, link in object.get(data.fhir.r4.patient_compartment, t, {})
	param_in_link(t, name, l, link)
}

param_in_link(_, name, l, _) if name == l

param_in_link(_, name, _, link) if name == link.narrow_param

param_in_link(t, name, _, link) if {
	sp := data.fhir.r4.search_params[t][name]
	sp.type == "reference"
	some path in sp.paths
	path in link.paths
}

patient_search_scope_verdict(t, params, pid) := verdict.deny(403, "reverse-chain-outside-compartment", "a reverse chain (_has) on data outside the patient's compartment would search other patients' records") if {
	not patient_type(t)
	some p in params
	startswith(p.name, "_has:")
	not has_confined_to_patient(p, pid)
} else := patient_type_verdict(t, "s") if {
	not patient_type(t)
} else := verdict.deny(403, "search-other-patient", "the search names a patient other than the one in context") if {
	compartment.search_scope(t, params, pid) == "other"
} else := verdict.allow if {
	compartment.search_scope(t, params, pid) == "confined"
} else := verdict.filter(compartment.narrowing(t, pid))
