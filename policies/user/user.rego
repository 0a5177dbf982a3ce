# METADATA
# title: The user behind user/ scopes
# description: |
#   SMART: user/ scopes grant access to what "the current user" may access, and the user is named
#   by the `fhirUser` claim (a Patient, Practitioner, PractitionerRole, RelatedPerson or Person).
#   The FHIR server in front of which the policy runs often knows no user permissions of its own,
#   so by default (`policy.user.access: relationships`) the policy itself confines user/ scopes:
#
#   - no usable fhirUser: user/ scopes grant nothing;
#   - a Patient: that patient's compartment (as patient/ scopes);
#   - a RelatedPerson or Person: the compartments of the patients the relationships document
#     (data.relationships) relates it to;
#   - a Practitioner or PractitionerRole: its own Practitioner compartment (R4 CompartmentDefinition
#     "practitioner") and the compartments of the patients it is related to, directly or through
#     groups (CareTeam, List, Organization, Group).
#
#   `policy.user.access: server` leaves user/ scopes unconfined: the FHIR server enforces them.
#   This package says who the user is, to whom it is related and how a search is narrowed to that
#   set; smart.access applies it (policies/access/user_access.rego).
package smart.user

import data.smart.compartment
import data.smart.config
import data.smart.grant
import data.smart.lib.fhir

# METADATA
# title: unconfined
# description: |
#   `policy.user.access: server`: the FHIR server enforces the user's permissions, the policy leaves
#   user/ scopes unconfined. Any other value (default `relationships`) confines them.
unconfined if config.setting(["user", "access"], "relationships") == "server"

# METADATA
# title: max_search_patients
# description: |
#   The most patients a search may name in one `patient=` (or `_id=`) OR-list when it is narrowed to
#   the user's related patients (default 100: about 4 KB of URL with 30-character ids). A search
#   that would need more is refused, never cut short and never sent as an unbounded URL.
max_search_patients := n if {
	n := config.setting(["user", "max_search_patients"], 100)
	is_number(n)
	n >= 0
} else := 0

# --- Who the user is ---------------------------------------------------------------------------

user_types := {"Patient", "RelatedPerson", "Person", "Practitioner", "PractitionerRole"}

# METADATA
# title: fhir_user
# description: |
#   The user as {type, id}: the fhirUser claim as a reference to one of THIS server's resources
#   (relative, or absolute on a base listed in `policy.fhir.base_urls`) of a type that can be a user.
fhir_user := u if {
	u := fhir.reference_target(grant.claims.fhirUser)
	u.type in user_types
}

# METADATA
# title: fhir_user_problem
# description: |
#   Why the token names no usable user, as {code, message} (undefined when it does): no fhirUser
#   claim ("fhir-user-missing"), or one that is not a reference to a user resource on this server
#   ("fhir-user-invalid": another server's, another type, not a reference, not a string).
fhir_user_problem := {
	"code": "fhir-user-missing",
	"message": "the token carries no fhirUser claim, so its user/ scopes grant nothing",
} if {
	not "fhirUser" in object.keys(grant.claims)
} else := {
	"code": "fhir-user-invalid",
	"message": "the fhirUser claim is not a reference to a Patient, Practitioner, PractitionerRole, RelatedPerson or Person on this FHIR server, so the token's user/ scopes grant nothing",
} if {
	not fhir_user
}

# The relationships document's key for the user: its relative reference.
user_key := concat("/", [fhir_user.type, fhir_user.id])

# METADATA
# title: kind
# description: |
#   "patient" (fhirUser is a Patient), "relative" (RelatedPerson, Person: only related patients)
#   or "practitioner" (Practitioner, PractitionerRole: own compartment and related patients).
kind := "patient" if fhir_user.type == "Patient"

kind := "relative" if fhir_user.type in {"RelatedPerson", "Person"}

kind := "practitioner" if fhir_user.type in {"Practitioner", "PractitionerRole"}

# --- To whom the user is related ---------------------------------------------------------------

relationships := data.relationships if is_object(data.relationships)

else := {}

entry := e if {
	e := relationships.users[user_key]
	is_object(e)
} else := {}

# The groups the user belongs to that the document defines.
groups := [g |
	some name in object.get(entry, "groups", [])
	g := relationships.groups[name]
	is_object(g)
]

# A list of patient ids as written in the document (anything but a list names nobody).
listed_ids(x) := object.get(x, "patients", []) if is_array(object.get(x, "patients", []))

else := []

# METADATA
# title: related
# description: |
#   The user may act for patient `id`: a Patient user for itself; anyone else for the patients the
#   relationships document lists on the user and on every group the user belongs to. A lookup in a
#   set built once per decision (related_ids), so the filter step does not scan the document once
#   per entry.
related(id) if {
	kind == "patient"
	id == fhir_user.id
}

related(id) if {
	kind != "patient"
	fhir.valid_id(id)
	related_ids[id]
}

# Every id the document relates the user to, as written (related checks the one it looks up).
related_ids := {id | some id in listed_ids(entry)} | {id | some g in groups; some id in listed_ids(g)}

# METADATA
# title: patients
# description: |
#   The ids of every patient the user may act for (see `related`), as a set: for the searches that
#   must name them, once the bound (too_many_patients, on the ids as written) allows it.
patients := {fhir_user.id} if {
	kind == "patient"
} else := {id | some id in related_ids; fhir.valid_id(id)}

# The FHIR Lists (ids) whose entries are exactly a related group's patients: `_list=<id>`.
lists := {g.list | some g in groups; fhir.valid_id(g.list)}

# Related patients no group's List covers, as written: they must be named one by one.
unlisted_as_written := ({id | some id in listed_ids(entry)} - listed_members) | unlisted_group_members

# The same, only well-formed ids (what a narrowed Patient search names).
unlisted := {id | some id in unlisted_as_written; fhir.valid_id(id)}

unlisted_group_members := {id | some g in groups; not fhir.valid_id(object.get(g, "list", null)); some id in listed_ids(g)}

listed_members := {id | some g in groups; fhir.valid_id(g.list); some id in listed_ids(g)} if {
	count(listed_ids(entry)) > 0
} else := set()

# --- The user's own compartment ----------------------------------------------------------------

practitioner_links(t) := object.get(data.fhir.r4.practitioner_compartment, t, {})

# METADATA
# title: in_own_compartment
# description: |
#   A Practitioner or PractitionerRole user's own compartment (FHIR R4 CompartmentDefinition
#   "practitioner"): the user's resource itself, and every resource whose compartment parameters
#   reference the user (Encounter.participant.individual, Observation.performer, …).
in_own_compartment(resource) if {
	kind == "practitioner"
	resource.resourceType == fhir_user.type
	resource.id == fhir_user.id
}

in_own_compartment(resource) if {
	kind == "practitioner"
	some link in practitioner_links(resource.resourceType)
	some path in link.paths
	some ref in fhir.references_at(resource, path)
	fhir.reference_target(ref) == fhir_user
}

# Types a user's access can reach at all: the Patient compartment's, and the practitioner's own.
own_compartment_type(t) if {
	kind == "practitioner"
	count(practitioner_links(t)) > 0
}

own_compartment_type(t) if {
	kind == "practitioner"
	t == fhir_user.type
}

# METADATA
# title: related_owner
# description: A related patient whose compartment holds `resource` (the smallest id), if any.
related_owner(resource) := min({id | some id in compartment.patients_of(resource); related(id)})

# --- Narrowing a search to the user's patients and own compartment -----------------------------

# METADATA
# title: narrowing
# description: |
#   The ORed alternatives that confine a search on t to the user: one per related-patient form and
#   one per own-compartment parameter. Patient: `_list=<id>` for each group with a List, `_id=`
#   OR-list for the other patients; member types: `<patient param>=Patient/a,Patient/b,…`.
#   Undefined when the patients would have to be named one by one and are more than
#   `max_search_patients`: the search is then refused (see too_many_patients).
narrowing(t) := array.concat(patient_narrowing(t), own_narrowing(t)) if not too_many_patients(t)

patient_narrowing("Patient") := array.concat(
	[{"_list": name} | some name in lists],
	[{"_id": concat(",", sort(unlisted))} | count(unlisted) > 0],
)

patient_narrowing(t) := [{p: patient_list} | count(patients) > 0; some p in compartment.narrow_params(t)] if {
	t != "Patient"
}

patient_list := concat(",", [concat("/", ["Patient", id]) | some id in sort(patients)])

own_narrowing(t) := [{"_id": fhir_user.id}] if {
	t == fhir_user.type
	kind == "practitioner"
} else := [{p: user_key} | some p in sort({link.narrow_param | some link in practitioner_links(t)})] if {
	kind == "practitioner"
} else := []

# METADATA
# title: too_many_patients
# description: A narrowed search on t would have to name more than `max_search_patients` patients.
too_many_patients("Patient") if count(unlisted_as_written) > max_search_patients

too_many_patients(t) if {
	t != "Patient"
	compartment.member_type(t)
	count(related_ids) > max_search_patients
}

# METADATA
# title: names_own_compartment
# description: |
#   A search parameter that confines a search on t to the user's own compartment: one of the
#   practitioner compartment's parameters, with every value naming the user.
names_own_compartment(t, p) if {
	kind == "practitioner"
	p.chain == ""
	p.modifier in {"", fhir_user.type}
	p.base in own_params(t)
	count(p.values) > 0
	every v in p.values {
		names_user(v, p)
	}
}

own_params(t) := {n | some name, link in practitioner_links(t); some n in {name, link.narrow_param}}

names_user(v, _) if fhir.reference_target(v) == fhir_user

names_user(v, p) if {
	p.modifier == fhir_user.type
	v == fhir_user.id
}

# METADATA
# title: named_patients
# description: |
#   The patients a search's Patient-linking parameters name (Patient/123, an absolute reference on
#   this server, or a bare id where only a Patient can be meant), with "?" for a value that names a
#   patient the policy cannot identify as one of ours (another server's Patient).
named_patients(t, p) := {named_patient(t, p, v) | some v in p.values} if compartment.linking_param_occurrence(t, p)

named_patient(t, p, v) := id if {
	id := fhir.reference_patient_id(v)
} else := "?" if {
	fhir.foreign_reference(v).type == "Patient"
} else := v if {
	fhir.valid_id(v)
	compartment.patient_only_param(t, p)
}

# METADATA
# title: search_scope
# description: |
#   How a search on t relates to the user: "unrelated" when a Patient-linking parameter names a
#   patient the user is not related to, "confined" when one parameter names only related patients
#   (or only the user's own compartment), otherwise "open".
search_scope(t, params) := "unrelated" if {
	some p in params
	some id in named_patients(t, p)
	not related(id)
} else := "confined" if {
	names_related_only(t, params)
} else := "confined" if {
	some p in params
	names_own_compartment(t, p)
} else := "open"

# METADATA
# title: names_related_only
# description: One of the search's Patient-linking parameters names only related patients.
names_related_only(t, params) if {
	some p in params
	compartment.linking_param_occurrence(t, p)
	count(p.values) > 0
	every v in p.values {
		related(named_patient(t, p, v))
	}
}
