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
	some link in links(t)
	some path in link.paths
	some ref in fhir.references_at(resource, path)
	fhir.reference_names_patient(ref, id)
}

# Element names that establish membership (a patch must not rewrite them).
linking_elements(t) := {path[0] | some link in links(t); some path in link.paths}

# The Patient-referencing parameters of a search on type t: the compartment's own parameters,
# the names used for narrowing, and every other reference parameter whose paths are all linking
# paths (Basic: `subject` reads Basic.subject, the path of the compartment's `patient`), so that
# a value naming the patient can only match resources inside the compartment.
linking_params(t) := compartment_params(t) | alias_params(t) if t != "Patient"

compartment_params(t) := {n |
	some name, link in links(t)
	some n in {name, link.narrow_param}
}

alias_params(t) := {name |
	some name, sp in data.fhir.r4.search_params[t]
	sp.type == "reference"
	is_array(sp.paths)
	count(sp.paths) > 0
	every path in sp.paths {
		path in linking_paths(t)
	}
}

linking_paths(t) := {path | some link in links(t); some path in link.paths}

linking_params("Patient") := {"_id", "link"} if config.follow_patient_link

linking_params("Patient") := {"_id"} if not config.follow_patient_link

# METADATA
# title: narrowing
# description: |
#   The ORed alternatives that confine a search on t to patient `id`: one per linking parameter
#   (Communication: subject, sender, recipient), in reference form; Patient by _id.
narrowing("Patient", id) := [{"_id": id}]

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
	p.base in linking_params(t)
	p.chain == ""
	p.modifier in {"", "Patient"}
}
