# The filter step: may this token see a resource returned by the server (scopes, compartment,
# constraints, labels)?
package smart.access

import data.smart.compartment
import data.smart.config
import data.smart.constraint
import data.smart.grant
import data.smart.label
import data.smart.lib.fhir
import data.smart.verdict

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
	config.shared_type(resource.resourceType)
} else := verdict.deny(404, "not-in-compartment", "outside the patient's compartment")

constraint_visibility(g, resource) := verdict.allow if {
	count(g.constraints) == 0
} else := verdict.allow if {
	constraint.all_supported(resource.resourceType, g.constraints)
	constraint.resource_matches(resource, g.constraints)
} else := verdict.deny(404, "constraint-mismatch", "outside the granted scope's constraints")
