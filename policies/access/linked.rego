# Linked resources (part of smart.access, whose package METADATA is in access.rego).
#   What a patient/ token may see beyond the Patient compartment because the patient's own data
#   points to it (issue 12): the Provenance of a resource it may see, and resources of a
#   "referenced" type (config.referenced_types) that a resource it may see references. Both are
#   decided from the response Bundle: the references of the entries visible on their own are
#   indexed once (linked_index), then each remaining entry is looked up, so the cost is linear
#   in the size of the Bundle. Scopes and security labels still apply: a linked resource needs a
#   grant on its type, matches the grant's constraints, and is hidden by a restricting label.
package smart.access

import data.smart.config
import data.smart.grant
import data.smart.lib.fhir
import data.smart.verdict

# Grants confined to one patient, whose visibility linked resources widen.
linked_grant(g) if g.context == "patient"

# METADATA
# title: referenced_types
# description: |
#   The configured referenced types that are safe as such: none in the Patient compartment, none
#   with an element referencing a Patient (a Device or another patient's record is not made the
#   patient's by being pointed to).
referenced_types := {t |
	some t in config.referenced_types
	not patient_type(t)
	info := data.fhir.r4.resource_types[t]
	not info.references_patient
}

# The entry reasons a link can lift: outside the compartment, nothing else (no scope, a label).
linkable_reasons := {"not-in-compartment"}

# Only a Provenance or a referenced type can be visible through a link.
may_link(resource) if resource.resourceType == "Provenance"

may_link(resource) if resource.resourceType in referenced_types

# METADATA
# title: linked_index
# description: |
#   The resources visible on their own, indexed once: their keys (Type/id) and the keys of every
#   resource they reference (relative, versioned, or absolute on this server's base).
linked_index(visible) := {
	"keys": {k | some r in visible; k := resource_key(r)},
	"refs": {k | some r in visible; some k in references_of(r)},
}

# METADATA
# title: link_source
# description: |
#   A visible resource a patient/ grant's links start from: the patient's own data (its
#   compartment) or a shared type, as the patient/ grant sees them. A resource visible only through
#   another grant (another patient's record under a user/ or system/ scope) is not the patient's:
#   its Provenance and the resources it references are not released through the patient/ grant,
#   which would widen that grant to every patient the other grant reaches.
link_source(resource) if patient_visibility(resource, grant.patient_id).decision == "allow"

# Lookups index the sets (index.refs[k]) rather than test `k in index.refs`: OPA's WASM target
# scans a collection for `in`, which would make the filter quadratic in the Bundle.

# The index widened by the references of further visible resources (the visible Provenance).
linked_index_with(index, more) := {"keys": index.keys, "refs": (index.refs | {k | some r in more; some k in references_of(r)})}

resource_key(r) := concat("/", [r.resourceType, r.id]) if {
	is_string(r.resourceType)
	is_string(r.id)
}

references_of(r) := {concat("/", [t.type, t.id]) |
	walk(r, [path, value])
	path[count(path) - 1] == "reference"
	t := fhir.reference_target(value)
}

# METADATA
# title: linked_visibility
# description: |
#   Whether a response resource hidden only for being outside the compartment is visible through
#   a link, given the response's linked_index: scopes (a patient/ grant on its type with r or s,
#   its constraints), then the link, then security labels.
linked_visibility(resource, index) := label_gate(linked_scope_visibility(resource, index), resource, ["r", "s"])

linked_scope_visibility(resource, index) := verdict.any_of(vs) if {
	vs := [verdict.all_of(link_verdict(resource, index), constraint_visibility(g, resource)) |
		some g in grant.for_any(resource_type_of(resource), ["r", "s"])
		linked_grant(g)
	]
	count(vs) > 0
} else := not_linked

not_linked := verdict.deny(404, "not-in-compartment", "outside the patient's compartment and not linked to a resource this token may see")

link_verdict(resource, index) := verdict.allow if {
	linked(resource, index)
} else := not_linked

# A referenced type's resource that a visible resource references.
linked(resource, index) if {
	resource.resourceType in referenced_types
	index.refs[resource_key(resource)]
}

# METADATA
# title: provenance of a visible resource
# description: |
#   A Provenance is visible when every target is a resource this token may see in the same
#   response (or the patient itself) and it names no other patient anywhere, nor any record of a
#   Patient-compartment type that is not visible in the same response (an entity.what, an
#   agent.who): a Provenance that also covers, or points to, a resource the token cannot see
#   would reveal that resource's reference.
linked(resource, index) if {
	config.provenance_of_visible == true
	resource.resourceType == "Provenance"
	targets := [t | some x in fhir.as_list(object.get(resource, "target", [])); t := target_key(x, index)]
	count(targets) > 0
	count(targets) == count(fhir.as_list(resource.target))
	not names_other_patient(resource)
	not names_unseen_record(resource, index)
}

target_key(x, index) := k if {
	t := fhir.reference_target(x.reference)
	k := concat("/", [t.type, t.id])
	index.keys[k]
}

target_key(x, _) := k if {
	t := fhir.reference_target(x.reference)
	t.type == "Patient"
	t.id == grant.patient_id
	k := concat("/", ["Patient", t.id])
}

# A reference to a record of a Patient-compartment type that is neither visible in the response
# nor the patient itself.
names_unseen_record(resource, index) if {
	some k in references_of(resource)
	patient_type(split(k, "/")[0])
	not index.keys[k]
	k != concat("/", ["Patient", grant.patient_id])
}

names_other_patient(resource) if {
	some k in references_of(resource)
	startswith(k, "Patient/")
	k != concat("/", ["Patient", grant.patient_id])
}

# METADATA
# title: referenced_read
# description: |
#   A referenced type may be read by id (read, vread; never searched or changed) when
#   `patient.referenced_reads` is `by-id`: the id is what a visible reference gives the app, and
#   these types hold no patient data (see referenced_types).
referenced_read(t, l) if {
	t in referenced_types
	l == "r"
	config.referenced_reads == "by-id"
}

# Only a read or vread reads a referenced type by id: its instance history answers with a Bundle
# whose versions no visible resource references.
referenced_letter(c, l) := "-" if {
	c.interaction == "history-instance"
	c.type in referenced_types
	not config.shared_type(c.type)
} else := l

# A single returned resource (a read's response): its own visibility, or a referenced read's.
response_visibility(c, resource) := v if {
	v := visibility(resource)
	v.decision == "allow"
} else := label_gate(referenced_read_visibility(resource), resource, ["r"]) if {
	c.interaction in {"read", "vread"}
	c.type == resource_type_of(resource)
	referenced_read(c.type, "r")
} else := visibility(resource)

referenced_read_visibility(resource) := verdict.any_of(vs) if {
	vs := [constraint_visibility(g, resource) | some g in grant.for(resource_type_of(resource), "r"); linked_grant(g)]
	count(vs) > 0
} else := visibility(resource)

# Outside the compartment, a referenced type that is not shared: read by id, or nothing.
referenced_type_verdict(t, l) := verdict.allow if {
	referenced_read(t, l)
} else := verdict.deny(403, "referenced-type-restricted", concat("", [
	"patient/ scopes see ", t, " only where the patient's data references it",
	referenced_reads_hint,
])) if {
	t in referenced_types
}

referenced_reads_hint := " (read it by id, or with _include)" if config.referenced_reads == "by-id"

else := " (with _include)"
