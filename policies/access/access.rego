# METADATA
# title: Access decisions for one interaction
# description: |
#   Combines the parts: the letters an interaction needs (smart.request), the grants that give
#   them (smart.grant), and for each grant what its context and constraints demand of the data
#   (patient compartment, query-parameter constraints). Each needed letter must be granted (AND);
#   any grant that gives a letter may do so (OR). Result: a verdict (smart.verdict).
package smart.access

import data.smart.compartment
import data.smart.config
import data.smart.constraint
import data.smart.grant
import data.smart.label
import data.smart.lib.fhir
import data.smart.request
import data.smart.scope
import data.smart.verdict

instance_interactions := {"read", "vread", "history-instance", "update", "patch", "delete"}

search_interactions := {"search-type", "history-type", "search-compartment"}

system_interactions := {"search-system", "history-system"}

# METADATA
# title: decide
# description: The verdict for a classified request `c`, its raw request and the stored resource (or null).
decide(c, req, resource) := verdict.allow if {
	c.interaction in public_interactions
} else := verdict.deny(400, "resource-mismatch", "the supplied stored resource is not the one the URL names") if {
	c.level == "instance"
	is_object(resource)
	not stored_resource_matches(c, resource)
} else := v if {
	v := request_level_denial(c)
} else := v if {
	v := body_denial(c, req)
} else := verdict.deny(403, "interaction-not-permitted", concat("", [c.interaction, " needs no SMART permission and is not a public interaction: refused"])) if {
	count(c.letters) == 0
	c.interaction != "operation"
} else := v if {
	c.interaction in system_interactions
	v := complete_all_of([letter_verdict(object.union(c, {"type": t}), req, resource, "s") | some t in c.types], count(c.types))
} else := v if {
	not c.interaction in system_interactions
	c.interaction != "operation"
	v := complete_all_of([letter_verdict(c, req, resource, l) | some l in c.letters], count(c.letters))
} else := v if {
	c.interaction == "operation"
	v := operation_verdict(c, req, resource)
} else := verdict.deny(500, "policy-incomplete", "the policy could not decide every part of this request")

# Interactions allowed to every caller (the CapabilityStatement and SMART's discovery document).
# Everything else needs letters or an operation rule: an interaction that needs neither is refused.
public_interactions := {"capabilities"}

# All verdicts must hold, and there must be one for every part: a part the policy could not
# decide is a deny, never a silently smaller conjunction; a conjunction of nothing is no allow.
complete_all_of(vs, expected) := verdict.all_of_list(vs) if {
	expected > 0
	count(vs) == expected
}

# The stored resource is the one the URL names; for a vread, the very version it names.
stored_resource_matches(c, resource) if {
	resource.resourceType == c.type
	resource.id == c.id
	stored_version_matches(c, resource)
}

stored_version_matches(c, _) if c.interaction != "vread"

stored_version_matches(c, resource) if {
	c.interaction == "vread"
	resource.meta.versionId == c.vid
}

# --- The request body -------------------------------------------------------------------------

write_interactions := {"update", "patch", "delete"}

# METADATA
# title: body_denial
# description: |
#   Denials the body alone decides. A submitted resource (create, update, conditional update,
#   batch entry) must be of the URL's type, and on update carry the URL's id (FHIR R4 update:
#   else 400); an absent body is decided on what is known. A PATCH must come with a body the policy
#   can read (JSON Patch or FHIRPath Patch): what it would change decides whether it may.
body_denial(c, req) := verdict.deny(400, "body-mismatch", concat("", ["the submitted resource must be a ", c.type, " resource (a JSON object with resourceType ", c.type, ")"])) if {
	c.interaction in {"create", "update"}
	body := object.get(req, "body", null)
	body != null
	not body_of_type(body, c.type)
} else := verdict.deny(400, "body-mismatch", concat("", ["the submitted resource's id must be ", c.id, ", the id in the URL"])) if {
	c.interaction == "update"
	c.level == "instance"
	body := object.get(req, "body", null)
	body != null
	object.get(body, "id", null) != c.id
} else := verdict.deny(403, "patch-body-unavailable", "a PATCH is decided only on its body as JSON Patch (an array of operations) or FHIRPath Patch (a Parameters resource); without it the policy cannot tell what would change") if {
	c.interaction == "patch"
	not readable_patch(object.get(req, "body", null))
}

body_of_type(body, t) if {
	is_object(body)
	body.resourceType == t
}

readable_patch(body) if {
	is_array(body)
	every op in body {
		is_object(op)
		op.op in {"add", "remove", "replace", "move", "copy", "test"}
		is_string(op.path)
	}
}

readable_patch(body) if {
	is_object(body)
	body.resourceType == "Parameters"
	is_array(object.get(body, "parameter", []))
	every p in object.get(body, "parameter", []) {
		is_object(p)
		p.name == "operation"
		is_array(p.part)
	}
}

# --- Letters and grants -------------------------------------------------------------------

letter_verdict(c, req, resource, l) := scope_missing(c, c.type, [l]) if {
	count(grant.for(c.type, l)) == 0
} else := verdict.any_of([grant_verdict(g, c, req, resource, l) | some g in grant.for(c.type, l)])

grant_verdict(g, c, req, resource, l) := verdict.all_of(
	context_verdict(g, c, req, resource, l),
	constraint_verdict(g, c, req, resource, l),
)

# METADATA
# title: scope_missing
# description: |
#   403 insufficient_scope, naming the smallest scope that would allow the request (progressive
#   authorization, RFC 6750 §3.1): the token's own context, the type, the missing letters.
scope_missing(c, t, letters) := object.union(
	verdict.deny(403, "scope-missing", concat("", ["no granted scope allows ", c.interaction, " on ", t])),
	{"required_scopes": [required_scope(t, letters)]},
)

required_scope(t, letters) := concat("", [suggested_context, "/", t, ".", concat("", ordered_letters(letters))])

ordered_letters(letters) := [l | some l in scope.v2_letters; l in letters]

suggested_context := grant.used_contexts[0]

suggested_context := "patient" if {
	count(grant.used_contexts) == 0
	grant.patient_id
}

suggested_context := "user" if {
	count(grant.used_contexts) == 0
	not grant.patient_id
	grant.claims.fhirUser
}

suggested_context := "system" if {
	count(grant.used_contexts) == 0
	not grant.patient_id
	not grant.claims.fhirUser
}

# SLC: "the EHR SHALL establish a patient in context" for patient/ scopes; without one they grant nothing.
patient_context_missing := verdict.deny(401, "patient-context-missing", "a patient/ scope was granted without a patient in the token's launch context")

# --- Context: patient/ grants are confined to the launch patient's compartment -------------

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
	t in config.shared_types
	l in {"r", "s"}
} else := verdict.deny(403, "shared-type-read-only", concat("", [t, " is shared data: patient/ scopes may read it, not change it"])) if {
	t in config.shared_types
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
creates_absent_resource(c) if {
	c.interaction == "update"
	input.resource_absent == true
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

# --- Constraints: a v2 query suffix limits a grant to the matching instances --------------

constraint_verdict(g, c, req, resource, l) := verdict.allow if {
	count(g.constraints) == 0
} else := verdict.deny(403, "constraint-unsupported", concat("", [
	"the scope constraint(s) ", concat(", ", constraint.unsupported_params(c.type, g.constraints)),
	" cannot be enforced on ", c.type, ", so the scope grants nothing here",
])) if {
	not constraint.all_supported(c.type, g.constraints)
} else := v if {
	c.interaction in instance_interactions
	c.level == "instance"
	v := verdict.all_of_list([
		constraint_stored_verdict(g, c, resource),
		constraint_body_verdict(g, c, req),
		constraint_patch_verdict(g, c, req),
	])
} else := v if {
	c.interaction == "create"
	l == "c"
	v := constraint_body_verdict(g, c, req)
} else := v if {
	c.interaction in {"update", "patch", "delete"}
	l != "s"
	v := verdict.all_of_list([
		constraint_search_verdict(g, c.params),
		constraint_body_verdict(g, c, req),
		constraint_patch_verdict(g, c, req),
	])
} else := verdict.deny(403, "constraint-not-applicable", "a constrained scope cannot be applied to the history of a type: history takes no search parameters") if {
	c.interaction == "history-type"
} else := constraint_search_verdict(g, c.params) if {
	c.interaction in search_interactions
} else := constraint_search_verdict(g, c.params) if {
	l == "s"
	c.conditional
} else := verdict.deny(403, "constraint-not-applicable", concat("", ["a constrained scope does not cover ", c.interaction]))

constraint_stored_verdict(g, c, resource) := verdict.allow if {
	is_object(resource)
	constraint.resource_matches(resource, g.constraints)
} else := hidden(c, "constraint-mismatch") if {
	is_object(resource)
} else := unnarrowed if {
	not narrowable(c)
} else := verdict.all_of(verdict.filter([{"_id": c.id}]), verdict.filter([constraint.narrowing([], g.constraints)]))

constraint_body_verdict(g, c, req) := verdict.allow if {
	not c.interaction in {"create", "update"}
} else := verdict.allow if {
	constraint.resource_matches(req.body, g.constraints)
} else := verdict.deny(403, "body-outside-constraint", "the submitted resource does not match the granted scope's constraints")

constraint_patch_verdict(g, c, req) := verdict.allow if {
	c.interaction != "patch"
} else := patch_guard(c.type, req, constraint.guarded_elements(c.type, g.constraints), "patch-touches-constraint")

constraint_search_verdict(g, params) := verdict.allow if {
	count(constraint.narrowing(params, g.constraints)) == 0
} else := verdict.filter([constraint.narrowing(params, g.constraints)])

# --- Patches --------------------------------------------------------------------------------

# METADATA
# title: patch_guard
# description: |
#   JSON Patch (an array of operations) and FHIRPath Patch (a Parameters resource) are checked:
#   no operation may address a guarded element. Any other body is refused (a PATCH without a
#   readable body never gets here: body_denial).
patch_guard(t, req, guarded, code) := verdict.allow if {
	is_array(req.body)
	every op in req.body {
		json_patch_op_safe(op, guarded)
	}
} else := verdict.allow if {
	req.body.resourceType == "Parameters"
	every p in object.get(req.body, "parameter", []) {
		fhirpath_patch_op_safe(t, p, guarded)
	}
} else := verdict.deny(403, code, "the patch would change elements that decide who may see this resource")

# A JSON Patch operation addresses a named top-level element (never the whole document, "" or
# "/"), and neither its target nor its source is guarded.
json_patch_op_safe(op, guarded) if {
	json_pointer_element_safe(op.path, guarded)
	not json_patch_from_unsafe(op, guarded)
}

json_patch_from_unsafe(op, guarded) if {
	op.from
	not json_pointer_element_safe(op.from, guarded)
}

json_pointer_element_safe(pointer, guarded) if {
	is_string(pointer)
	startswith(pointer, "/")
	first := split(substring(pointer, 1, -1), "/")[0]
	first != ""
	not first in guarded
}

# A FHIRPath Patch path is accepted only in the plain form Type.element(.element)*: indexers,
# functions and quoting could otherwise reach a guarded element under another spelling.
fhirpath_patch_op_safe(t, p, guarded) if {
	paths := [part.valueString | some part in p.part; part.name == "path"]
	count(paths) == 1
	startswith(paths[0], concat("", [t, "."]))
	regex.match(`^[A-Z][A-Za-z]*(\.[a-z][A-Za-z0-9]*)+$`, paths[0])
	element := split(paths[0], ".")[1]
	not element in guarded
	names := [part.valueString | some part in p.part; part.name == "name"]
	every n in names {
		not n in guarded
	}
}

# --- Denials that do not depend on grants ---------------------------------------------------

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
	t in config.shared_types
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

# --- Operations -----------------------------------------------------------------------------

operation_verdict(c, _, _) := verdict.deny(403, "operation-not-permitted", concat("", ["the operation ", c.operation, " is not enabled for SMART tokens here"])) if {
	not operation_enabled(c)
} else := scope_missing(c, operation_target(c), missing) if {
	missing := [l | some l in config.operations[c.operation].letters; count(operation_grants(c, l)) == 0]
	count(missing) > 0
} else := verdict.all_of_list([
verdict.any_of([operation_grant_verdict(c, g) | some g in operation_grants(c, l)]) |
	some l in config.operations[c.operation].letters
])

operation_enabled(c) if {
	spec := config.operations[c.operation]
	c.level in spec.levels
	operation_type_ok(c, spec)
}

operation_type_ok(c, _) if c.level == "system"

operation_type_ok(c, spec) if c.type in spec.types

# METADATA
# title: operation_returns_resources
# description: |
#   The operation's response carries stored resources (`returns` in the operations table; anything
#   but "computed", or nothing, counts as resources), so it must be filtered like a search's.
operation_returns_resources(c) if object.get(config.operations[c.operation], "returns", "resources") != "computed"

operation_target(c) := "*" if config.operations[c.operation].on == "*"

operation_target(c) := c.type if config.operations[c.operation].on == "self"

operation_grants(c, l) := [g |
	some g in grant.for(operation_target(c), l)
	operation_context_ok(c, g)
]

operation_context_ok(c, _) if not config.operations[c.operation].contexts

operation_context_ok(c, g) if g.context in config.operations[c.operation].contexts

operation_grant_verdict(_, g) := verdict.deny(403, "constraint-not-applicable", "a constrained scope does not cover operations") if {
	count(g.constraints) > 0
}

operation_grant_verdict(c, g) := operation_context_verdict(c, g) if count(g.constraints) == 0

operation_context_verdict(_, g) := verdict.allow if g.context == "system"

operation_context_verdict(c, g) := user_operation_verdict(c) if g.context == "user"

operation_context_verdict(c, g) := patient_context_missing if {
	g.context == "patient"
	not grant.patient_id
} else := verdict.allow if {
	g.context == "patient"
	c.type == "Patient"
	c.id == grant.patient_id
} else := verdict.allow if {
	g.context == "patient"
	config.operations[c.operation].on == "self"
	c.type in config.shared_types
} else := verdict.deny(403, "operation-other-patient", "the operation targets a patient other than the one in context") if {
	g.context == "patient"
}

# --- Response filtering: may this token see this resource? --------------------------------

# METADATA
# title: visibility
# description: |
#   Whether a resource returned by the server may be released: some grant with r or s on its
#   type must cover it (compartment for patient/ grants, constraints for constrained grants).
visibility(resource) := label_gate(scope_visibility(resource), resource, ["r", "s"])

# METADATA
# title: label_gate
# description: |
#   Security labels apply after scopes: a verdict the scopes allow is still denied when the
#   resource carries a label this token holds no right to, unless break-the-glass lifts it.
#   Labels never widen what scopes allow. `letters`: the permissions the access uses.
label_gate(v, resource, letters) := v if {
	v.decision == "deny"
} else := v if {
	not is_object(resource)
} else := verdict.all_of(v, without_btg(label_verdict(resource, letters)))

# METADATA
# title: label_verdict
# description: |
#   The label verdict for an access to `resource` with one of `letters`. Break-the-glass is a
#   patient app's (smart.label) when no user/ or system/ grant of the token reaches the resource
#   on its own: the grant that allows the access decides, not the token as a whole.
label_verdict(resource, letters) := label.resource_verdict_via(resource, reached_only_through_patient_grants(resource, letters))

reached_only_through_patient_grants(resource, letters) := false if {
	some g in grant.for_any(resource_type_of(resource), letters)
	g.context != "patient"
	grant_visibility(g, resource).decision == "allow"
} else := true

# The letters an interaction uses on its data; an operation reads it.
label_letters(c) := c.letters if count(object.get(c, "letters", [])) > 0

label_letters(c) := ["r", "s"] if count(object.get(c, "letters", [])) == 0

without_btg(lv) := verdict.allow if lv.decision == "allow"

without_btg(lv) := lv if lv.decision != "allow"

scope_visibility(resource) := verdict.allow if {
	resource.resourceType == "OperationOutcome"
} else := verdict.deny(403, "scope-missing", concat("", ["no granted scope allows reading ", resource_type_of(resource)])) if {
	count(grant.for_any(resource_type_of(resource), ["r", "s"])) == 0
} else := verdict.any_of([grant_visibility(g, resource) | some g in grant.for_any(resource_type_of(resource), ["r", "s"])])

resource_type_of(resource) := resource.resourceType if is_string(resource.resourceType)

resource_type_of(resource) := "(unknown)" if not fhir.string_member(resource, "resourceType")

grant_visibility(g, resource) := verdict.all_of(context_visibility(g, resource), constraint_visibility(g, resource))

context_visibility(g, _) := verdict.allow if g.context == "system"

context_visibility(g, resource) := user_visibility(resource) if g.context == "user"

context_visibility(g, resource) := patient_visibility(resource, grant.patient_id) if {
	g.context == "patient"
	grant.patient_id
}

context_visibility(g, _) := patient_context_missing if {
	g.context == "patient"
	not grant.patient_id
}

# METADATA
# title: patient_visibility
# description: A resource in patient `pid`'s compartment, or of a shared type, may be released.
patient_visibility(resource, pid) := verdict.allow if {
	compartment.member(resource, pid)
} else := verdict.allow if {
	resource.resourceType in config.shared_types
} else := verdict.deny(404, "not-in-compartment", "outside the patient's compartment")

constraint_visibility(g, resource) := verdict.allow if {
	count(g.constraints) == 0
} else := verdict.allow if {
	constraint.all_supported(resource.resourceType, g.constraints)
	constraint.resource_matches(resource, g.constraints)
} else := verdict.deny(404, "constraint-mismatch", "outside the granted scope's constraints")
