# METADATA
# title: Access decisions for one interaction
# description: |
#   Combines the parts: the letters an interaction needs (smart.request), the grants that give
#   them (smart.grant), and for each grant what its context and constraints demand of the data
#   (patient compartment, query-parameter constraints). Each needed letter must be granted (AND);
#   any grant that gives a letter may do so (OR). Result: a verdict (smart.verdict).
package smart.access

import data.smart.grant
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
