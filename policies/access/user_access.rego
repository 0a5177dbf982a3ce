# Access decisions for user/ grants (part of package smart.access; its METADATA is in access.rego).
# What a user/ grant allows, per grant (smart.user says who the user is and to whom it is
# related). `policy.user.access: server` leaves it unconfined, as system/ grants are. Otherwise a
# token without a usable fhirUser gets nothing from its user/ grants; a Patient user is confined
# exactly as a patient/ grant is (the patient path, with the user as the patient); a RelatedPerson
# or Person takes the patient path of each patient it is related to (ORed, at most
# `max_search_patients` of them); a Practitioner or PractitionerRole sees its own Practitioner
# compartment and its related patients' compartments: an instance is decided on the stored
# resource (the patient path of the related patient it belongs to, else its own compartment),
# a search is narrowed to the set (practitioner_search_verdict).
package smart.access

import data.smart.compartment
import data.smart.config
import data.smart.user
import data.smart.verdict

# METADATA
# title: unconfined_context
# description: The grant's access is not confined by the policy (system/, or user/ in server mode).
unconfined_context(g) if g.context == "system"

unconfined_context(g) if {
	g.context == "user"
	user.unconfined
}

# METADATA
# title: user_context_verdict
# description: What a user/ grant demands of an interaction.
user_context_verdict(c, req, resource, l) := open_search_chain_verdict(c) if {
	user.unconfined
} else := fhir_user_unusable if {
	user.fhir_user_problem
} else := verdict.all_of(open_search_chain_verdict(c), confined_user_verdict(c, req, resource, l))

fhir_user_unusable := verdict.deny(403, user.fhir_user_problem.code, user.fhir_user_problem.message)

confined_user_verdict(c, req, resource, l) := patient_verdict(c, req, resource, l, user.fhir_user.id) if {
	user.kind == "patient"
} else := relative_verdict(c, req, resource, l) if {
	user.kind == "relative"
} else := practitioner_verdict(c, req, resource, l)

not_related := verdict.deny(403, "user-not-related", "the user (fhirUser) is related to no patient in the relationships document")

too_many_patients := verdict.deny(403, "user-patients-too-many", concat("", [
	"the user is related to more patients than a search can name (policy.user.max_search_patients = ",
	format_int(user.max_search_patients, 10),
	"): name the patient (patient=…) or search Patient with a group's _list",
]))

# A RelatedPerson or Person: the patient path of each related patient, any of them.
relative_verdict(c, req, resource, l) := not_related if {
	count(user.related_ids) == 0
} else := not_related if {
	count(user.patients) == 0
} else := too_many_patients if {
	count(user.patients) > user.max_search_patients
} else := verdict.any_of([patient_verdict(c, req, resource, l, pid) | some pid in sort(user.patients)])

# --- Practitioner and PractitionerRole ------------------------------------------------------

practitioner_verdict(c, req, resource, l) := v if {
	c.interaction in instance_interactions
	c.level == "instance"
	v := practitioner_instance_verdict(c, req, resource, l)
} else := v if {
	c.interaction == "create"
	l == "c"
	v := practitioner_create_verdict(c, req, l)
} else := v if {
	c.interaction in {"update", "patch", "delete"}
	c.conditional
	l != "s"
	v := verdict.all_of_list([
		practitioner_write_search_verdict(c.type, c.params, l),
		practitioner_body_verdict(c, req),
		own_patch_verdict(c, req),
	])
} else := v if {
	c.interaction in search_interactions
	v := practitioner_search_verdict_for(c)
} else := practitioner_search_verdict(c.type, c.params) if {
	l == "s"
	c.conditional
} else := verdict.deny(403, "user-scope-system-search", "a user/ scope confined to the user's patients cannot be used for a system-wide search or history") if {
	c.interaction in system_interactions
} else := verdict.deny(403, "user-scope-not-applicable", concat("", ["a user/ scope confined to the user's patients does not cover ", c.interaction]))

# Types the user's access reaches: the Patient compartment's and the user's own compartment's.
user_type(t) if patient_type(t)

user_type(t) if user.own_compartment_type(t)

# Practitioner and PractitionerRole are the user's own kind of resource, whichever of the two the
# user is: another one is hidden (docs/user-access.md), never read by id as a patient/ scope reads
# a referenced type (which the filter step would then hide: user_visibility).
user_type(t) if t in {"Practitioner", "PractitionerRole"}

# An instance: the patient path of the related patient it belongs to, else the user's own
# compartment, else hidden; without the stored resource, a read narrowed to the user.
practitioner_instance_verdict(c, req, resource, l) := patient_type_verdict(c.type, l) if {
	not user_type(c.type)
} else := patient_verdict(c, req, resource, l, c.id) if {
	c.type == "Patient"
	user.related(c.id)
} else := patient_verdict(c, req, resource, l, pid) if {
	is_object(resource)
	pid := user.related_owner(resource)
} else := own_compartment_verdict(c, req, resource) if {
	is_object(resource)
	user.in_own_compartment(resource)
} else := hidden(c, "not-related-to-user") if {
	is_object(resource)
} else := practitioner_create_verdict(c, req, l) if {
	# the host read the stored resource and there is none: the update creates it, decided like a create
	creates_absent_resource(c)
} else := unnarrowed if {
	not narrowable(c)
} else := verdict.all_of(narrowed_instance(c), practitioner_body_verdict(c, req))

narrowed_instance(c) := too_many_patients if {
	user.too_many_patients(c.type)
} else := hidden(c, "not-related-to-user") if {
	count(instance_alternatives(c)) == 0
} else := verdict.filter(instance_alternatives(c))

instance_alternatives(c) := array.concat(
	[object.union(alt, {"_id": c.id}) | some alt in user.narrowing(c.type); not alt._id],
	[alt | some alt in user.narrowing(c.type); alt._id == c.id],
)

# A resource in the user's own compartment: read as it is; a write must name no patient. A
# Patient resource is that patient's data (it names itself): the user may read an unrelated
# patient whose general practitioner it is, not change it.
own_compartment_verdict(c, req, resource) := verdict.all_of_list([
	own_patient_write_verdict(c, resource),
	stored_links_verdict(c, resource, ""),
	practitioner_body_verdict(c, req),
	own_patch_verdict(c, req),
])

own_patient_write_verdict(c, resource) := verdict.deny(403, "resource-links-other-patient", concat("", [
	"the stored resource is Patient/", c.id,
	", a patient the user is not related to: a write in the user's own compartment may not change a patient's data",
])) if {
	c.interaction in write_interactions
	resource.resourceType == "Patient"
} else := verdict.allow

# A submitted resource (create, update) belongs to a related patient, or to the user's own
# compartment and names no patient.
practitioner_body_verdict(c, req) := verdict.allow if {
	not c.interaction in {"create", "update"}
} else := patient_body_verdict(c, req, pid) if {
	pid := user.related_owner(req.body)
} else := links_verdict(req.body, "", object.get(c, "bundle", {}), "body", "the submitted resource") if {
	user.in_own_compartment(req.body)
} else := verdict.deny(403, "body-outside-user-access", "the submitted resource belongs neither to a patient the user is related to nor to the user's own compartment")

practitioner_create_verdict(c, req, l) := patient_verdict(c, req, null, l, pid) if {
	pid := user.related_owner(req.body)
} else := practitioner_body_verdict(c, req)

# A patch must not rewrite what places the resource in either compartment.
own_patch_verdict(c, req) := verdict.allow if {
	c.interaction != "patch"
} else := patch_guard(c.type, req, own_linking_elements(c.type), "patch-touches-compartment-link")

own_linking_elements(t) := (compartment.linking_elements(t) | {"contained"}) | {path[0] |
	some link in user.practitioner_links(t)
	some path in link.paths
}

# --- Searches by a Practitioner or PractitionerRole -----------------------------------------

practitioner_search_verdict_for(c) := verdict.deny(403, "user-scope-type-history", concat("", [
	"a user/ scope confined to the user's patients cannot read the history of every ", c.type,
	"; read the history of each resource instead (", c.type, "/[id]/_history)",
])) if {
	c.interaction == "history-type"
	user_type(c.type)
} else := patient_own_compartment_search(c, c.compartment.id) if {
	c.interaction == "search-compartment"
	c.compartment.type == "Patient"
	user.related(c.compartment.id)
} else := verdict.allow if {
	c.interaction == "search-compartment"
	c.compartment == user.fhir_user
} else := verdict.deny(403, "compartment-not-related", "the compartment searched is neither a patient the user is related to nor the user's own") if {
	c.interaction == "search-compartment"
} else := verdict.deny(403, "user-scope-all-types", "a user/ scope confined to the user's patients cannot search every type at once") if {
	c.type == "*"
} else := practitioner_search_verdict(c.type, c.params)

# METADATA
# title: practitioner_search_verdict
# description: |
#   A search on t: types outside both compartments as for patient/ scopes (shared types readable);
#   a search that names only related patients (or the user) is allowed as it is; one that names an
#   unrelated patient is refused unless the user's own compartment could still hold matches; any
#   other is narrowed to the user (user.narrowing), or refused when that would name too many.
practitioner_search_verdict(t, params) := patient_type_verdict(t, "s") if {
	not user_type(t)
} else := verdict.deny(403, "search-not-related", "the search names a patient the user is not related to") if {
	user.search_scope(t, params) == "unrelated"
	count(user.own_narrowing(t)) == 0
} else := verdict.allow if {
	user.search_scope(t, params) == "confined"
} else := too_many_patients if {
	user.too_many_patients(t)
} else := not_related if {
	count(user.narrowing(t)) == 0
} else := verdict.filter(user.narrowing(t))

# METADATA
# title: practitioner_write_search_verdict
# description: |
#   The search of a conditional update, patch or delete (letter l): it changes whatever it
#   matches, so it is confined to the related patients only. The user's own compartment holds
#   other patients' records (an Observation it performed), which a write by id is refused
#   (decided on the stored resource) and a search cannot tell apart; types outside both
#   compartments are not written (shared types are read-only).
practitioner_write_search_verdict(t, params, l) := patient_type_verdict(t, l) if {
	not user_type(t)
} else := verdict.deny(403, "search-not-related", "the search names a patient the user is not related to") if {
	user.search_scope(t, params) == "unrelated"
} else := verdict.allow if {
	user.names_related_only(t, params)
} else := too_many_patients if {
	user.too_many_patients(t)
} else := not_related if {
	count(user.patient_narrowing(t)) == 0
} else := verdict.filter(user.patient_narrowing(t))

# --- Operations and response filtering --------------------------------------------------------

# An operation on a related patient ($everything), or a read-only one on a shared type.
user_operation_verdict(c) := verdict.allow if {
	user.unconfined
} else := fhir_user_unusable if {
	user.fhir_user_problem
} else := verdict.allow if {
	c.type == "Patient"
	c.level == "instance"
	user.related(c.id)
} else := verdict.allow if {
	config.operations[c.operation].on == "self"
	config.shared_type(c.type)
} else := verdict.deny(403, "operation-not-related", "a user/ scope confined to the user's patients does not cover this operation on this target")

# METADATA
# title: user_visibility
# description: |
#   Whether a user/ grant releases a resource of a response: unconfined in server mode; otherwise
#   in a related patient's compartment, in the user's own compartment, or of a shared type.
user_visibility(resource) := verdict.allow if {
	user.unconfined
} else := fhir_user_unusable if {
	user.fhir_user_problem
} else := not_related if {
	user.kind == "relative"
	not user.related_owner(resource)
	count(user.related_ids) == 0
} else := verdict.allow if {
	user.related_owner(resource)
} else := verdict.allow if {
	user.in_own_compartment(resource)
} else := verdict.allow if {
	config.shared_type(resource.resourceType)
} else := verdict.deny(404, "not-related-to-user", "outside the compartments of the user and of the patients it is related to")
