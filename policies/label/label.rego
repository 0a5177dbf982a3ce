# METADATA
# title: Security labels and break-the-glass
# description: |
#   Who may see resources that carry restricting security labels (FHIR R4 "Security Labels",
#   `Resource.meta.security`), when a user may break the glass (purpose of use BTG,
#   v3-ActReason), and the AuditEvent that records it (after IHE Basic Audit Log Patterns).
#   Everything here depends only on `input` (claims, request headers, now) and the settings
#   (smart.config, policies/config/labels.rego). The package is split by concern: which labels a
#   resource carries and which restrict (this file), who a selector matches (who.rego),
#   break-the-glass (btg.rego), the verdict for one resource (resource_verdict.rego) and the
#   audit records (audit.rego).
#
#   Interface (all other rules are internal):
#
#   - `labels(resource)`: set of {system, code}, the resource's `meta.security` codings and
#     those of its contained resources, with known code-system aliases mapped to the canonical
#     URL (v3-Confidentiality, v3-ActCode, v3-ActReason; `v3-PurposeOfUse` → v3-ActReason).
#   - `restricting_labels(resource)`: the labels that restrict the resource for everyone:
#     confidentiality at or above `labels.confidentiality_threshold` (unknown confidentiality
#     codes count as V) and ActCode codes subsumed by a code in `labels.sensitivity`.
#   - `protected_labels(resource)`: `restricting_labels` minus those covered by a label right
#     this token holds (`labels.rights`). Empty set = nothing stands in the way.
#   - `btg`: defined only when every break-the-glass condition holds for this input:
#     {purpose_of_use: Coding, purpose_source, reason, reason_source, user: {sub?, fhirUser?},
#     issued_at}.
#   - `btg_missing`: the conditions that do not hold, in a fixed order, from
#     btg-purpose-missing, btg-not-permitted, btg-patient-app, btg-reason-missing,
#     btg-reason-too-long, btg-expired. Empty exactly when `btg` is defined.
#   - `btg_available`: true when only the user's own request is missing (the user and client
#     may break the glass): the deny then says how to do it.
#   - `btg_via(patient_only)`, `btg_missing_via(patient_only)`, `btg_available_via(patient_only)`,
#     `resource_verdict_via(resource, patient_only)`: the same for one access; `patient_only` is
#     true when only patient/ grants reach the data (smart.access decides it per grant), so the
#     patient-app condition applies to it whatever other scopes the token holds. The forms
#     without `_via` use the token as a whole (every grant patient/).
#   - `resource_verdict(resource)`: {"decision": "allow"} when nothing is protected;
#     {"decision": "allow", "btg": btg, "overridden": [labels]} when break-the-glass lifts the
#     protection; otherwise a smart.verdict deny with reason code `label-restricted`,
#     `btg_missing` and `btg_available`. Status: 403 with a message naming what would help when
#     `btg_available` (`labels.btg_available_status`), else `smart.config.hidden_status` (404)
#     with the same message as any hidden resource. Messages never name the labels.
#   - `audit_event(kind, refs, overridden, outcome_code)`: a FHIR R4 AuditEvent. kind:
#     "btg-access" (BALP rest pattern, purposeOfEvent BTG, the reason in entity.detail),
#     "label-denied" (BALP AuthZ pattern, DCM#110113 Security Alert) or "access" (rest pattern
#     without BTG, for `audit.all_decisions`). refs: reference strings of the data entities;
#     overridden: label Codings for entity.securityLabel; outcome_code: 0, 4, 8 or 12.
#   - `audit_obligation(kind, refs, overridden, outcome_code)`: {"type": "audit", "event": …}.
#
#   BTG never widens scopes: `resource_verdict` only lifts label restrictions and must be
#   ANDed (smart.verdict.all_of) with the scope verdict.
package smart.label

import data.smart.config
import data.smart.lib.fhir

confidentiality_system := "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

act_code_system := "http://terminology.hl7.org/CodeSystem/v3-ActCode"

act_reason_system := "http://terminology.hl7.org/CodeSystem/v3-ActReason"

# Generated terminology (policies/terminology/data.json). Without it, every confidentiality
# label restricts and codes match only themselves: still closed, never open.
confidentiality_ranks := data.terminology.confidentiality.rank if is_object(data.terminology.confidentiality.rank)

else := {}

sensitivity_ancestors := data.terminology.sensitivity.ancestors if is_object(data.terminology.sensitivity.ancestors)

else := {}

purpose_ancestors := data.terminology.purpose_of_use.ancestors if is_object(data.terminology.purpose_of_use.ancestors)

else := {}

purpose_displays := data.terminology.purpose_of_use.displays if is_object(data.terminology.purpose_of_use.displays)

else := {}

top_rank := max(array.concat([5], [r | some r in confidentiality_ranks]))

# Older and OID spellings of the same code systems; R4's security-labels page names the purpose
# of use system v3-PurposeOfUse although the codes live in v3-ActReason.
system_aliases := {
	"http://terminology.hl7.org/CodeSystem/v3-Confidentiality": confidentiality_system,
	"http://hl7.org/fhir/v3/Confidentiality": confidentiality_system,
	"urn:oid:2.16.840.1.113883.5.25": confidentiality_system,
	"http://terminology.hl7.org/CodeSystem/v3-ActCode": act_code_system,
	"http://hl7.org/fhir/v3/ActCode": act_code_system,
	"urn:oid:2.16.840.1.113883.5.4": act_code_system,
	"http://terminology.hl7.org/CodeSystem/v3-ActReason": act_reason_system,
	"http://terminology.hl7.org/CodeSystem/v3-PurposeOfUse": act_reason_system,
	"http://hl7.org/fhir/v3/ActReason": act_reason_system,
	"http://hl7.org/fhir/v3/PurposeOfUse": act_reason_system,
	"urn:oid:2.16.840.1.113883.5.8": act_reason_system,
}

canonical(system) := object.get(system_aliases, system, system)

# --- Labels on a resource -----------------------------------------------------------------

# METADATA
# title: labels
# description: |
#   The resource's security labels as {system, code}: its own `meta.security` and that of its
#   contained resources (released with it); `meta.security` and `contained` may be an array or a
#   single object. A coding without a system is read as the restricting confidentiality code or
#   the sensitivity code it spells; a confidentiality coding without a code gets code "" (unknown,
#   so restricting). Whatever cannot be read with certainty is the `unreadable_label`, which
#   restricts (fail closed): `meta` or `meta.security` of another JSON type, an entry that is not
#   a Coding, a system or code that is not a non-empty string without surrounding blanks, a coding
#   without a system that spells no such code, a coding without a code outside
#   v3-Confidentiality, a contained entry that is not a resource or contains resources itself.
labels(resource) := node_labels(resource) | {l | some c in contained(resource); some l in contained_labels(c)} if {
	is_object(resource)
}

labels(resource) := set() if not is_object(resource)

# METADATA
# title: may_carry_labels
# description: |
#   Cheap test: the resource has something `labels` reads (meta.security, contained, an odd meta).
may_carry_labels(resource) if present(resource, "contained")

may_carry_labels(resource) if {
	present(resource, "meta")
	not is_object(resource.meta)
}

may_carry_labels(resource) if object.get(resource, ["meta", "security"], []) != []

# An explicit JSON null holds nothing (FHIR JSON has no nulls).
present(x, k) if object.get(x, k, null) != null

contained(resource) := fhir.as_list(resource.contained) if present(resource, "contained")

contained(resource) := [] if not present(resource, "contained")

# FHIR R4: "contained resources SHALL NOT contain additional contained resources".
contained_labels(c) := node_labels(c) | {unreadable_label | present(c, "contained")} if is_object(c)

contained_labels(c) := {unreadable_label} if not is_object(c)

node_labels(node) := {label_of(x) | some x in security_items(node)} | {unreadable_label | meta_unreadable(node)}

security_items(node) := fhir.as_list(node.meta.security) if {
	is_object(node.meta)
	readable_security(node.meta.security)
} else := []

readable_security(s) if is_array(s)

readable_security(s) if is_object(s)

meta_unreadable(node) if {
	present(node, "meta")
	not is_object(node.meta)
}

meta_unreadable(node) if {
	is_object(node.meta)
	present(node.meta, "security")
	not readable_security(node.meta.security)
}

# METADATA
# title: unreadable_label
# description: |
#   The label of a security label that cannot be read: it restricts, and only a right covering
#   every label (confidentiality V and sensitivity "*") or break-the-glass lifts it.
unreadable_label := {"system": "https://smart-authz.dev/fhir/CodeSystem/label-reading", "code": "unreadable"}

label_of(x) := unreadable_label if {
	not is_object(x)
} else := unreadable_label if {
	present(x, "system")
	not well_formed(x.system)
} else := unreadable_label if {
	present(x, "code")
	not well_formed(x.code)
} else := {"system": canonical(x.system), "code": x.code} if {
	is_string(x.system)
	is_string(x.code)
} else := {"system": confidentiality_system, "code": ""} if {
	canonical(x.system) == confidentiality_system
} else := {"system": confidentiality_system, "code": x.code} if {
	not present(x, "system")
	restricting({"system": confidentiality_system, "code": x.code})
	confidentiality_ranks[x.code]
} else := {"system": act_code_system, "code": x.code} if {
	not present(x, "system")
	not confidentiality_ranks[x.code]
	sensitivity_code(x.code)
} else := unreadable_label

well_formed(s) if {
	is_string(s)
	s != ""
	trim_space(s) == s
}

sensitivity_code(code) if sensitivity_ancestors[code]

sensitivity_code(code) if code in config.label_sensitivity

# METADATA
# title: restricting_labels
# description: The labels that restrict this resource for anyone without a right or BTG.
restricting_labels(resource) := {l | some l in labels(resource); restricting(l)}

restricting(l) if {
	l.system == confidentiality_system
	confidentiality_rank(l.code) >= threshold_rank
}

restricting(l) if {
	l.system == act_code_system
	some s in config.label_sensitivity
	subsumed_by(l.code, s)
}

restricting(l) if l == unreadable_label

# Unknown confidentiality codes (retired B, D, I, C, S, T, a typo, a newer code) are treated
# as very restricted: fail closed.
confidentiality_rank(code) := confidentiality_ranks[code]

confidentiality_rank(code) := top_rank if not confidentiality_ranks[code]

# An ActCode sensitivity code is subsumed by itself and by each of its ancestors.
subsumed_by(code, code)

subsumed_by(code, ancestor) if ancestor in object.get(sensitivity_ancestors, code, [])

# METADATA
# title: protected_labels
# description: |
#   The restricting labels this token holds no right to. A right is an entry of labels.rights:
#   {who: selector, confidentiality: highest code covered, sensitivity: [codes or "*"]}.
protected_labels(resource) := {l | some l in restricting_labels(resource); not covered(l)}

held_rights := [r | some r in config.label_rights; who_matches(object.get(r, "who", null))]

covered(l) if {
	l.system == confidentiality_system
	some r in held_rights
	is_string(r.confidentiality)
	confidentiality_rank(l.code) <= confidentiality_ranks[r.confidentiality]
}

covered(l) if {
	l.system == act_code_system
	some r in held_rights
	some s in object.get(r, "sensitivity", [])
	right_covers_sensitivity(l.code, s)
}

covered(l) if {
	l == unreadable_label
	some r in held_rights
	is_string(r.confidentiality)
	confidentiality_ranks[r.confidentiality] >= top_rank
	"*" in object.get(r, "sensitivity", [])
}

right_covers_sensitivity(_, "*")

right_covers_sensitivity(code, s) if subsumed_by(code, s)

# Confidentiality codes at or above this rank restrict (default R, so R and V). A threshold
# that is not a known code protects every confidentiality label (fail closed).
threshold_rank := confidentiality_ranks[config.label_confidentiality_threshold] if is_string(config.label_confidentiality_threshold)

threshold_rank := 0 if not known_threshold

known_threshold if {
	is_string(config.label_confidentiality_threshold)
	confidentiality_ranks[config.label_confidentiality_threshold]
}
