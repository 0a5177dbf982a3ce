# METADATA
# title: Patient compartment
# description: |
#   FHIR R4 Patient compartment membership (CompartmentDefinition "patient", generated into
#   data.fhir.r4.patient_compartment): "A resource is in this compartment if the nominated search
#   parameter (or chain) refers to the patient resource that defines the compartment." The Patient
#   resource is the compartment's identity. Also: how a search is confined to the compartment.
package smart.compartment

import data.smart.config
import data.smart.lib.fhir

links(t) := data.fhir.r4.patient_compartment[t]

member_type(t) if links(t)

# METADATA
# title: member
# description: The resource belongs to patient `id`'s compartment.
member(resource, id) if {
	resource.resourceType == "Patient"
	resource.id == id
}

member(resource, id) if {
	resource.resourceType == "Patient"
	config.follow_patient_link
	some ref in fhir.references_at(resource, ["link", "other"])
	fhir.reference_names_patient(ref, id)
}

member(resource, id) if {
	t := resource.resourceType
	t != "Patient"
	some path in linking_paths(t)
	some ref in fhir.references_at(resource, path)
	fhir.reference_names_patient(ref, id)
}

# METADATA
# title: patients_of
# description: |
#   The ids of the patients whose compartment holds `resource` (each confirmed by `member`): read
#   from the resource's own linking references, so the cost does not grow with how many patients a
#   caller may see.
patients_of(resource) := {id |
	some id in candidate_patients(resource)
	member(resource, id)
}

candidate_patients(resource) := {resource.id} | {fhir.reference_patient_id(ref) |
	some ref in fhir.references_at(resource, ["link", "other"])
} if {
	resource.resourceType == "Patient"
	is_string(resource.id)
} else := {fhir.reference_patient_id(ref) |
	some link in links(resource.resourceType)
	some path in link.paths
	some ref in fhir.references_at(resource, path)
}

# METADATA
# title: link_kinds
# description: |
#   For writes: what every Reference in the linking elements of `resource` (and of the resources
#   it contains) names, as a set of kinds. "ours": Patient/<id> of this server; "not-patient": a
#   resource of another type; "none": no target (display only); "other-patient": another Patient
#   (of this or another server, a contained Patient, a bundle entry that is another Patient);
#   "unverifiable": anything the policy cannot resolve (malformed, unresolved "#x" or "urn:…",
#   conditional references to Patients, identifier-only references without a non-Patient type,
#   a `type` that contradicts the reference). `bundle` maps a transaction's fullUrls to its
#   resources, for "urn:uuid:" references.
link_kinds(resource, id, bundle) := own | contained if {
	own := {link_kind(v, id, resource, bundle) | some v in link_values(resource)}
	contained := {k |
		some r in fhir.as_list(object.get(resource, "contained", []))
		some k in contained_kinds(r, id, resource, bundle)
	}
}

link_values(resource) := [v | some path in object.get(data.compartment.tables.linking_paths, resource.resourceType, []); some v in fhir.values_at(resource, path)]

contained_kinds(r, id, container, bundle) := {link_kind(v, id, container, bundle) | some v in link_values(r)} if is_object(r)

contained_kinds(r, _, _, _) := {"unverifiable"} if not is_object(r)

link_kind(v, id, container, bundle) := "unverifiable" if {
	not is_object(v)
} else := "none" if {
	not "reference" in object.keys(v)
	not "identifier" in object.keys(v)
} else := "not-patient" if {
	not "reference" in object.keys(v)
	logical_type(v) != "Patient"
} else := k if {
	is_string(v.reference)
	target := reference_target(v.reference, container, bundle)
	type_consistent(v, target)
	k := target_kind(target, id)
} else := "unverifiable"

# A logical reference (identifier only) is told apart from a Patient only by its declared type.
logical_type(v) := v.type if fhir.resource_type(v.type)

type_consistent(v, _) if not "type" in object.keys(v)

type_consistent(v, target) if v.type == target.type

target_kind(target, id) := "ours" if {
	target.type == "Patient"
	target.local
	target.id == id
} else := "other-patient" if {
	target.type == "Patient"
} else := "not-patient"

# What a reference string resolves to: this server's resource, another server's, a contained
# resource (exactly one with that id), a transaction entry (exactly one with that fullUrl), or the
# type of a conditional reference ("Practitioner?identifier=…"). Undefined when unresolvable.
reference_target(ref, container, bundle) := object.union(t, {"local": true}) if {
	t := fhir.reference_target(ref)
} else := fhir.foreign_reference(ref) if {
	fhir.foreign_reference(ref)
} else := {"type": matches[0].resourceType} if {
	startswith(ref, "#")
	matches := [r | some r in fhir.as_list(object.get(container, "contained", [])); is_object(r); r.id == substring(ref, 1, -1)]
	count(matches) == 1
	fhir.resource_type(matches[0].resourceType)
} else := object.union({"type": r.resourceType, "local": true}, object.filter(r, ["id"])) if {
	startswith(ref, "urn:")
	r := bundle[ref]
	fhir.resource_type(r.resourceType)
} else := {"type": t} if {
	is_string(ref)
	contains(ref, "?")
	t := split(ref, "?")[0]
	fhir.resource_type(t)
	t != "Patient"
}

# Element names that establish membership (a patch must not rewrite them).
linking_elements(t) := {path[0] | some link in links(t); some path in link.paths}

# The Patient-referencing parameters of a search on type t: the compartment's own parameters,
# the names used for narrowing, and every other reference parameter whose paths are all linking
# paths (Basic: `subject` reads Basic.subject, the path of the compartment's `patient`), so that
# a value naming the patient can only match resources inside the compartment. A table generated
# from data.fhir.r4 (scripts/generate-policy-tables.mjs; compartment_test.rego recomputes it).
linking_params(t) := object.keys(data.compartment.tables.linking_params[t]) if t != "Patient"

linking_param(t, name) if data.compartment.tables.linking_params[t][name]

linking_param("Patient", name) if name in linking_params("Patient")

linking_paths(t) := data.compartment.tables.linking_paths[t]

linking_params("Patient") := {"_id", "link"} if config.follow_patient_link

linking_params("Patient") := {"_id"} if not config.follow_patient_link

# METADATA
# title: narrowing
# description: |
#   The ORed alternatives that confine a search on t to patient `id`: one per linking parameter
#   (Communication: subject, sender, recipient), in reference form; Patient by _id, and by link
#   when Patient.link is followed (member/2 counts linked Patients then, so a search must find them).
narrowing("Patient", id) := [{"_id": id}, {"link": concat("/", ["Patient", id])}] if config.follow_patient_link

narrowing("Patient", id) := [{"_id": id}] if not config.follow_patient_link

narrowing(t, id) := [{p: concat("/", ["Patient", id])} | some p in narrow_params(t)] if t != "Patient"

narrow_params(t) := sort({link.narrow_param | some link in links(t)})

# METADATA
# title: value_kind
# description: |
#   What a linking parameter's value says about patient `id`: "ours" or "other" when it certainly
#   names a Patient ("Patient/123", an absolute reference on one of this server's bases, or a bare
#   id on a parameter that can only reference Patients; another server's Patient is "other"), else
#   "unknown" (a bare id on `subject` may be a Group or a Device).
value_kind(t, p, v, id) := "ours" if {
	fhir.reference_patient_id(v) == id
} else := "other" if {
	fhir.reference_patient_id(v)
} else := "other" if {
	fhir.foreign_reference(v).type == "Patient"
} else := "ours" if {
	v == id
	patient_only_param(t, p)
} else := "other" if {
	fhir.valid_id(v)
	patient_only_param(t, p)
} else := "unknown"

patient_only_param(_, p) if p.modifier == "Patient"

patient_only_param("Patient", p) if p.base == "_id"

patient_only_param(t, p) if data.fhir.r4.search_params[t][p.base].targets == ["Patient"]

# METADATA
# title: search_scope
# description: |
#   How a search's own parameters relate to patient id: "other" when any linking parameter names
#   another patient, "confined" when one names only this patient, otherwise "open".
search_scope(t, params, id) := "other" if {
	some p in params
	linking_param_occurrence(t, p)
	some v in p.values
	value_kind(t, p, v, id) == "other"
} else := "confined" if {
	some p in params
	linking_param_occurrence(t, p)
	count(p.values) > 0
	every v in p.values {
		value_kind(t, p, v, id) == "ours"
	}
} else := "open"

linking_param_occurrence(t, p) if {
	linking_param(t, p.base)
	p.chain == ""
	p.modifier in {"", "Patient"}
}
