# METADATA
# title: Security labels and break-the-glass
# description: |
#   Who may see resources that carry restricting security labels (FHIR R4 "Security Labels",
#   `Resource.meta.security`), when a user may break the glass (purpose of use BTG,
#   v3-ActReason), and the AuditEvent that records it (after IHE Basic Audit Log Patterns).
#   Everything here depends only on `input` (claims, request headers, now) and `data.config`.
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
#   - `audit_all_decisions`: `audit.all_decisions` (default false).
#
#   BTG never widens scopes: `resource_verdict` only lifts label restrictions and must be
#   ANDed (smart.verdict.all_of) with the scope verdict.
package smart.label

import data.smart.config
import data.smart.grant
import data.smart.lib.fhir
import data.smart.lib.time
import data.smart.request
import data.smart.verdict

# --- Configuration (data.config, the `policy:` section of the host's YAML) ------------------

default cfg := {}

cfg := data.config if is_object(data.config)

setting(path, fallback) := object.get(cfg, path, fallback)

array_setting(path, fallback) := v if {
	v := setting(path, fallback)
	is_array(v)
} else := fallback

number_setting(path, fallback) := v if {
	v := setting(path, fallback)
	is_number(v)
	v >= 0
} else := fallback

string_setting(path, fallback) := v if {
	v := setting(path, fallback)
	is_string(v)
} else := fallback

# Booleans that widen access are on only when configured as exactly `true`.
enabled(path) if setting(path, false) == true

# METADATA
# title: default_sensitivity
# description: |
#   ActCode sensitivity codes (v3 _ActInformationSensitivityPolicy) that restrict a resource
#   unless configured otherwise. Matching uses subsumption: SPI covers BH, MH, PSY, PSYTHPN, SUD
#   (and so ETHUD, OPIOIDUD); the children are listed too so that removing SPI keeps them.
default_sensitivity := [
	"ETH", "GDIS", "HIV", "MST", "SCA", "SDV", "SEX", "SICKLE", "SPI", "BH", "MH", "PSY",
	"PSYTHPN", "SUD", "STD", "TBOO", "VIO",
]

sensitivity_config := {c | some c in array_setting(["labels", "sensitivity"], default_sensitivity); is_string(c)}

# Confidentiality codes at or above this rank restrict (default R, so R and V). A threshold
# that is not a known code protects every confidentiality label (fail closed).
threshold_rank := confidentiality_ranks[threshold_code] if is_string(threshold_code)

threshold_rank := 0 if not known_threshold

threshold_code := setting(["labels", "confidentiality_threshold"], "R")

known_threshold if {
	is_string(threshold_code)
	confidentiality_ranks[threshold_code]
}

rights_config := [r | some r in array_setting(["labels", "rights"], []); is_object(r)]

default_role_claims := ["roles", "extensions.ihe_iua.subject_role", "extensions.hl7-b2b.subject_role"]

role_claim_paths := [split(p, ".") | some p in array_setting(["labels", "role_claims"], default_role_claims); is_string(p)]

btg_selectors := array_setting(["btg", "eligible"], [])

required_purposes := {c | some c in array_setting(["btg", "purpose_of_use"], ["BTG"]); is_string(c)}

default_purpose_claims := ["purpose_of_use", "extensions.ihe_iua.purpose_of_use", "extensions.hl7-b2b.purpose_of_use"]

purpose_claim_paths := [split(p, ".") | some p in array_setting(["btg", "purpose_claims"], default_purpose_claims); is_string(p)]

reason_claim_paths := [split(p, ".") | some p in array_setting(["btg", "reason_claims"], ["btg_reason"]); is_string(p)]

reason_header := lower(string_setting(["btg", "reason_header"], "x-btg-reason"))

reason_max_length := number_setting(["btg", "reason_max_length"], 500)

reason_min_length := max([1, number_setting(["btg", "reason_min_length"], 1)])

max_age_seconds := number_setting(["btg", "max_age_seconds"], 3600)

clock_skew_seconds := number_setting(["btg", "clock_skew_seconds"], 60)

issued_at_claim := string_setting(["btg", "issued_at_claim"], "iat")

# The status of a label denial for a user who may break the glass: 403 says what would help;
# 404 hides the resource from them too.
btg_available_status := s if {
	s := setting(["labels", "btg_available_status"], 403)
	s in {403, 404}
} else := 403

# METADATA
# title: audit_all_decisions
# description: Whether every decision (not only BTG accesses and label denials) is audited.
default audit_all_decisions := false

audit_all_decisions if enabled(["audit", "all_decisions"])

audit_observer := string_setting(["audit", "observer"], "smart-authz")

audit_server := string_setting(["audit", "server"], "fhir-server")

# --- Code systems -------------------------------------------------------------------------

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

sensitivity_code(code) if code in sensitivity_config

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
	some s in sensitivity_config
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

held_rights := [r | some r in rights_config; who_matches(object.get(r, "who", null))]

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

# --- Who: selectors over the verified claims ----------------------------------------------

claims := grant.claims

# METADATA
# title: who_matches
# description: |
#   A selector names who it applies to: {client_ids, roles, users, fhir_user_types, scopes,
#   claims}. Every key given must match (AND); inside a list any value may (OR). An empty
#   selector, or one with an unknown key (a typo must not widen access), matches nobody.
who_matches(sel) if {
	is_object(sel)
	count(sel) > 0
	every k, _ in sel {
		k in selector_keys
	}
	every k, v in sel {
		selector_part_matches(k, v)
	}
}

selector_keys := {"client_ids", "roles", "users", "fhir_user_types", "scopes", "claims"}

selector_part_matches("client_ids", v) if {
	is_array(v)
	client_id in v
}

selector_part_matches("roles", v) if {
	is_array(v)
	some r in v
	r in user_roles
}

selector_part_matches("users", v) if {
	is_array(v)
	some u in v
	u in user_ids
}

selector_part_matches("fhir_user_types", v) if {
	is_array(v)
	fhir_user_type in v
}

selector_part_matches("scopes", v) if {
	is_array(v)
	some s in v
	s in token_scopes
}

selector_part_matches("claims", v) if {
	is_object(v)
	count(v) > 0
	every path, want in v {
		claim_has(split(path, "."), want)
	}
}

claim_has(path, want) if object.get(claims, path, null) == want

claim_has(path, want) if {
	value := object.get(claims, path, null)
	is_array(value)
	want in value
}

client_id := claims.client_id if nonempty_string(claims.client_id)

user_ids := {v | some k in ["sub", "fhirUser"]; v := claims[k]; nonempty_string(v)}

user_present if count(user_ids) > 0

fhir_user_type := split(fhir_user_tail, "/")[0]

fhir_user_tail := claims.fhirUser if {
	nonempty_string(claims.fhirUser)
	not contains(claims.fhirUser, "://")
}

fhir_user_tail := substring(claims.fhirUser, count(claims.fhirUser) - count(tail), -1) if {
	nonempty_string(claims.fhirUser)
	contains(claims.fhirUser, "://")
	parts := split(claims.fhirUser, "/")
	tail := concat("/", [parts[count(parts) - 2], parts[count(parts) - 1]])
}

token_scopes := {s | some s in split(claims.scope, " "); s != ""} if is_string(claims.scope)

token_scopes := {s | some s in claims.scope; is_string(s)} if is_array(claims.scope)

token_scopes := set() if {
	not fhir.string_member(claims, "scope")
	not fhir.array_member(claims, "scope")
}

# Role values: strings as given; a Coding gives its code and system|code; a CodeableConcept
# gives those of each of its codings.
user_roles := {r | some path in role_claim_paths; some r in role_values(object.get(claims, path, null))}

role_values(v) := {v} if is_string(v)

role_values(v) := {r | some x in v; some r in role_item(x)} if is_array(v)

role_values(v) := role_item(v) if is_object(v)

role_values(v) := set() if {
	not is_string(v)
	not is_array(v)
	not is_object(v)
}

role_item(x) := {x} if is_string(x)

role_item(x) := {r | some c in x.coding; some r in coding_values(c)} if fhir.array_member(x, "coding")

role_item(x) := coding_values(x) if {
	is_object(x)
	not fhir.array_member(x, "coding")
}

role_item(x) := set() if {
	not is_string(x)
	not is_object(x)
}

coding_values(c) := {c.code, concat("|", [c.system, c.code])} if {
	is_string(c.code)
	is_string(c.system)
}

coding_values(c) := {c.code} if {
	is_string(c.code)
	not fhir.string_member(c, "system")
}

coding_values(c) := set() if not fhir.string_member(c, "code")

nonempty_string(s) if {
	is_string(s)
	trim_space(s) != ""
}

# --- Break-the-glass ----------------------------------------------------------------------

# Purposes of use asserted for this request: {code, source}. From the verified token claims;
# from the R4 `Category` header only when the deployment trusts it (btg.trust_category_header).
asserted_purposes := claim_purposes | header_purposes

claim_purposes := {{"code": c, "source": concat(".", array.concat(["claims"], path))} |
	some path in purpose_claim_paths
	some x in fhir.as_list(object.get(claims, path, null))
	some c in purpose_item_codes(x)
}

header_purposes := {{"code": c, "source": "headers.category"} |
	enabled(["btg", "trust_category_header"])
	some value in header_values("category")
	some category in split(value, ",")
	c := category_purpose(category)
}

# A claim value: a bare code ("BTG"), "system#code" or "system|code" (hl7-b2b uses
# urn:oid:2.16.840.1.113883.5.8#BTG), a Coding, or a CodeableConcept.
purpose_item_codes(x) := {x} if {
	is_string(x)
	regex.match(`^[A-Za-z_][A-Za-z0-9_-]*$`, x)
}

purpose_item_codes(x) := {c} if {
	is_string(x)
	c := qualified_purpose(x)
}

purpose_item_codes(x) := {c | some coding in x.coding; c := coding_purpose(coding)} if fhir.array_member(x, "coding")

purpose_item_codes(x) := {c} if {
	is_object(x)
	not fhir.array_member(x, "coding")
	c := coding_purpose(x)
}

coding_purpose(coding) := coding.code if {
	is_string(coding.code)
	not fhir.string_member(coding, "system")
}

coding_purpose(coding) := coding.code if {
	is_string(coding.code)
	is_string(coding.system)
	canonical(coding.system) == act_reason_system
}

# "system#code" or "system|code" in the ActReason system (any alias); R4's own name for
# break-the-glass, http://hl7.org/fhir/security-label#break-the-glass, is BTG.
qualified_purpose("http://hl7.org/fhir/security-label#break-the-glass") := "BTG"

qualified_purpose(s) := code if {
	some sep in ["#", "|"]
	i := last_index(s, sep)
	i > 0
	canonical(substring(s, 0, i)) == act_reason_system
	code := substring(s, i + 1, -1)
	regex.match(`^[A-Za-z_][A-Za-z0-9_-]*$`, code)
}

last_index(s, sep) := count(s) - (count(parts[count(parts) - 1]) + 1) if {
	parts := split(s, sep)
	count(parts) > 1
}

# One category of a `Category` header value: term; scheme="…"; label="…". Only terms in the
# security-label scheme count, and they must name their system.
category_purpose(category) := code if {
	segments := split(category, ";")
	some param in array.slice(segments, 1, count(segments))
	security_scheme(param)
	code := qualified_purpose(trim_space(segments[0]))
}

security_scheme(param) if {
	kv := split(trim_space(param), "=")
	count(kv) == 2
	lower(trim_space(kv[0])) == "scheme"
	trim(trim_space(kv[1]), "\"") == "http://hl7.org/fhir/tag/security"
}

headers := input.request.headers if is_object(input.request.headers)

else := {}

header_values(name) := [headers[name]] if is_string(headers[name])

header_values(name) := [v | some v in headers[name]; is_string(v)] if is_array(headers[name])

header_values(name) := [] if {
	not fhir.string_member(headers, name)
	not fhir.array_member(headers, name)
}

# Purpose codes match by subsumption in the ActReason hierarchy: BTG satisfies a requirement
# of BTG, ETREAT or TREAT; TREAT does not satisfy ETREAT.
purpose_satisfies(code, required) if code == required

purpose_satisfies(code, required) if required in object.get(purpose_ancestors, code, [])

btg_purposes := sort({p | some p in asserted_purposes; some r in required_purposes; purpose_satisfies(p.code, r)})

btg_purpose := btg_purposes[0]

# The user may break the glass: a user is identified and some btg.eligible selector matches.
btg_permitted if {
	user_present
	some sel in btg_selectors
	who_matches(sel)
}

# A patient-level app: every resource grant of the token is patient/. Break-the-glass is decided
# per access (`*_via(patient_only)`): an access reached only through patient/ grants is a patient
# app's, whatever other scopes the token holds.
patient_app if {
	count(grant.grants) > 0
	every g in grant.grants {
		g.context == "patient"
	}
}

default token_patient_only := false

token_patient_only if patient_app

patient_app_blocked_via(patient_only) if {
	patient_only == true
	not enabled(["btg", "patient_apps"])
}

# The reason: the first configured claim, then the reason header; blank values are skipped.
reason_candidates := array.concat(
	[{"text": trim_space(v), "source": concat(".", array.concat(["claims"], path))} |
		some path in reason_claim_paths
		v := object.get(claims, path, null)
		nonempty_string(v)
	],
	[{"text": trim_space(v), "source": concat(".", ["headers", reason_header])} |
		reason_header != ""
		some v in header_values(reason_header)
		nonempty_string(v)
	],
)

btg_reason := reason_candidates[0]

reason_too_long if count(btg_reason.text) > reason_max_length

reason_too_short if count(btg_reason.text) < reason_min_length

# The time box: now − issued-at within [−clock skew, max age]. A missing or malformed `now`
# or issued-at claim fails closed.
now_millis := time.epoch_millis(input.now)

issued_at := claims[issued_at_claim] if {
	is_number(claims[issued_at_claim])
	claims[issued_at_claim] >= 0
}

issued_millis := floor(issued_at * 1000)

within_time_box if {
	age := now_millis - issued_millis
	age <= max_age_seconds * 1000
	age >= 0 - (clock_skew_seconds * 1000)
}

missing_order := [
	"btg-purpose-missing", "btg-not-permitted", "btg-patient-app",
	"btg-reason-missing", "btg-reason-too-long", "btg-expired",
]

missing contains "btg-purpose-missing" if not btg_purpose

missing contains "btg-not-permitted" if not btg_permitted

missing contains "btg-reason-missing" if not btg_reason

missing contains "btg-reason-missing" if reason_too_short

missing contains "btg-reason-too-long" if reason_too_long

missing contains "btg-expired" if not within_time_box

missing_via(patient_only) := missing | {"btg-patient-app" | patient_app_blocked_via(patient_only)}

# METADATA
# title: btg_missing
# description: The break-the-glass conditions that do not hold for this input, in a fixed order.
btg_missing := btg_missing_via(token_patient_only)

# METADATA
# title: btg_missing_via
# description: |
#   btg_missing for one access: `patient_only` is true when only patient/ grants reach the data.
btg_missing_via(patient_only) := [code | some code in missing_order; code in missing_via(patient_only)]

# METADATA
# title: btg_available
# description: |
#   The user and client may break the glass; only the request lacks something (purpose, reason,
#   a fresh token).
default btg_available := false

btg_available if btg_available_via(token_patient_only)

btg_available_via(patient_only) if {
	btg_permitted
	not patient_app_blocked_via(patient_only)
}

# METADATA
# title: btg
# description: The break-the-glass assertion, defined only when every condition holds.
btg := btg_via(token_patient_only)

btg_via(patient_only) := {
	"purpose_of_use": purpose_coding(btg_purpose.code),
	"purpose_source": btg_purpose.source,
	"reason": btg_reason.text,
	"reason_source": btg_reason.source,
	"user": {k: claims[k] | some k in ["sub", "fhirUser"]; nonempty_string(claims[k])},
	"issued_at": issued_at,
} if {
	count(btg_missing_via(patient_only)) == 0
}

purpose_coding(code) := {
	"system": act_reason_system,
	"code": code,
	"display": object.get(purpose_displays, code, code),
}

# --- The verdict for one resource ---------------------------------------------------------

# METADATA
# title: resource_verdict
# description: |
#   Whether the labels on `resource` let this token see it: allow, allow through BTG (with the
#   assertion and the overridden labels, for the audit), or a label-restricted deny.
resource_verdict(resource) := resource_verdict_via(resource, token_patient_only)

# METADATA
# title: resource_verdict_via
# description: |
#   resource_verdict for one access: `patient_only` is true when only the token's patient/ grants
#   reach the resource, so break-the-glass is a patient app's (refused unless btg.patient_apps).
resource_verdict_via(resource, patient_only) := verdict.allow if {
	count(protected_labels(resource)) == 0
} else := {"decision": "allow", "btg": b, "overridden": sort_labels(protected_labels(resource))} if {
	b := btg_via(patient_only)
} else := label_denial(resource, patient_only)

# Sets iterate in a different order in OPA's WASM target: anything that reaches the output
# is sorted first.
sort_labels(ls) := sort(ls)

label_denial(resource, patient_only) := object.union(
	verdict.deny(btg_available_status, "label-restricted", btg_hint(btg_missing_via(patient_only))),
	{"btg_missing": btg_missing_via(patient_only), "btg_available": true},
) if {
	btg_available_via(patient_only)
} else := object.union(
	verdict.deny(config.hidden_status, "label-restricted", hidden_message(resource)),
	{"btg_missing": btg_missing_via(patient_only), "btg_available": false},
)

# The same words a resource hidden for any other reason gets (smart.access), so a 404 does not
# say that labels were the cause.
hidden_message(resource) := concat("", [resource.resourceType, "/", resource.id, " is not available to this token"]) if {
	is_string(resource.resourceType)
	is_string(resource.id)
} else := "the resource is not available to this token"

btg_hint(missing_codes) := concat("", [
	"Access is restricted by security-label policy. You may break the glass: ",
	concat("; ", [hint_phrase(code) | some code in missing_codes]),
	". Every break-the-glass access is audited.",
])

hint_phrase("btg-purpose-missing") := concat("", [
	"assert purpose of use ", concat(" or ", sort([c | some c in required_purposes])),
	" (", act_reason_system, ") in the access token",
	header_phrase,
])

hint_phrase("btg-reason-missing") := concat("", ["give a reason", reason_phrase])

hint_phrase("btg-reason-too-long") := concat("", ["shorten the reason to at most ", format_int(reason_max_length, 10), " characters"])

hint_phrase("btg-expired") := concat("", [
	"use a freshly issued access token: break-the-glass is possible only within ",
	format_int(max_age_seconds, 10), " seconds of token issue",
])

header_phrase := " or in a Category header" if enabled(["btg", "trust_category_header"])

header_phrase := "" if not enabled(["btg", "trust_category_header"])

reason_phrase := concat("", [" in the ", reason_header, " header"]) if reason_header != ""

reason_phrase := concat("", [" in the token claim ", concat(".", reason_claim_paths[0])]) if {
	reason_header == ""
	count(reason_claim_paths) > 0
}

reason_phrase := "" if {
	reason_header == ""
	count(reason_claim_paths) == 0
}

# --- Audit --------------------------------------------------------------------------------

# METADATA
# title: audit_event
# description: |
#   A FHIR R4 AuditEvent after IHE BALP. Deterministic: no id, no clock; `recorded` is
#   input.now (the host fills it in when absent).
audit_event(kind, refs, overridden, outcome_code) := without_nulls({
	"resourceType": "AuditEvent",
	"type": event_type(kind),
	"subtype": event_subtype,
	"action": event_action(kind),
	"recorded": recorded,
	"outcome": outcome_text(outcome_code),
	"outcomeDesc": outcome_desc(kind),
	"purposeOfEvent": purpose_of_event(kind),
	"agent": agents(kind),
	"source": {
		"observer": {"display": audit_observer},
		"type": [coding(security_source_type_system, "6", "Security Server")],
	},
	"entity": entities(kind, refs, overridden),
})

# METADATA
# title: audit_obligation
# description: The obligation a host must carry out (append the event to the audit log).
audit_obligation(kind, refs, overridden, outcome_code) := {
	"type": "audit",
	"event": audit_event(kind, refs, overridden, outcome_code),
}

without_nulls(o) := {k: v | some k, v in o; v != null}

# Arrays keep the caller's order; sets are sorted.
ordered(x) := sort(x) if is_set(x)

else := x

dcm := "http://dicom.nema.org/resources/ontology/DCM"

security_source_type_system := "http://terminology.hl7.org/CodeSystem/security-source-type"

entity_type_system := "http://terminology.hl7.org/CodeSystem/audit-entity-type"

object_role_system := "http://terminology.hl7.org/CodeSystem/object-role"

coding(system, code, display) := {"system": system, "code": code, "display": display}

concept(system, code, display) := {"coding": [coding(system, code, display)]}

event_type("label-denied") := coding(dcm, "110113", "Security Alert")

event_type(kind) := coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "Restful Operation") if {
	kind != "label-denied"
}

interaction := c.interaction if {
	c := request.classify(input.request)
	is_string(c.interaction)
} else := ""

# FHIR R4 restful-interaction codes for smart.request's interactions.
restful_code := {
	"read": "read", "vread": "vread", "update": "update", "patch": "patch", "delete": "delete",
	"history-instance": "history-instance", "history-type": "history-type",
	"history-system": "history-system", "create": "create", "search-type": "search-type",
	"search-system": "search-system", "search-compartment": "search-type",
	"capabilities": "capabilities", "transaction": "transaction", "batch": "batch",
	"operation": "operation",
}

event_subtype := [coding("http://hl7.org/fhir/restful-interaction", restful_code[interaction], restful_code[interaction])] if {
	restful_code[interaction]
} else := null

action_of := {
	"read": "R", "vread": "R", "history-instance": "R", "history-type": "R",
	"history-system": "R", "search-type": "R", "search-system": "R",
	"search-compartment": "R", "capabilities": "R", "create": "C", "update": "U",
	"patch": "U", "delete": "D",
}

# BALP's authorization-decision pattern records the decision itself: action E (execute).
event_action("label-denied") := "E"

event_action(kind) := object.get(action_of, interaction, "E") if kind != "label-denied"

recorded := input.now if is_string(input.now)

else := null

outcome_text(c) := c if c in {"0", "4", "8", "12"}

else := format_int(c, 10) if c in {0, 4, 8, 12}

else := "8"

outcome_desc(kind) := concat("", [
	"denied by security-label policy (label-restricted); break-the-glass conditions not met: ",
	concat(", ", btg_missing),
]) if {
	kind == "label-denied"
	count(btg_missing) > 0
} else := "denied by security-label policy (label-restricted)" if {
	kind == "label-denied"
}

else := null

purpose_of_event(kind) := [{"coding": [btg.purpose_of_use]}] if {
	kind == "btg-access"
	btg
}

else := asserted_purpose_concepts if count(asserted_purpose_concepts) > 0

else := null

asserted_purpose_concepts := [{"coding": [purpose_coding(code)]} | some code in sort({p.code | some p in asserted_purposes})]

agents(kind) := array.concat(
	[client_agent(kind), system_agent(kind)],
	[a | user_present; a := user_agent],
)

# BALP Read: the client receives data (Destination Role ID), the server sends it (Source);
# on writes the roles swap. In the AuthZ pattern the client is an Application and the system
# agent is the authorizer (this decision service).
client_agent(kind) := {
	"type": client_agent_type(kind),
	"who": client_who,
	"requestor": client_is_requestor,
}

# Without an identified user, the client itself is the requestor (a backend service).
client_is_requestor := false if user_present

else := true

client_agent_type("label-denied") := concept(dcm, "110150", "Application")

client_agent_type(kind) := concept(dcm, "110152", "Destination Role ID") if {
	kind != "label-denied"
	event_action(kind) == "R"
}

client_agent_type(kind) := concept(dcm, "110153", "Source Role ID") if {
	kind != "label-denied"
	event_action(kind) != "R"
}

system_agent("label-denied") := {
	"type": concept("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "authserver", "authorization server"),
	"who": {"display": audit_observer},
	"requestor": false,
}

system_agent(kind) := {
	"type": server_agent_type(kind),
	"who": {"display": audit_server},
	"requestor": false,
} if {
	kind != "label-denied"
}

server_agent_type(kind) := concept(dcm, "110153", "Source Role ID") if event_action(kind) == "R"

server_agent_type(kind) := concept(dcm, "110152", "Destination Role ID") if event_action(kind) != "R"

client_who := {"identifier": {"value": client_id}} if client_id

else := {"display": "unidentified client"}

user_agent := without_nulls({
	"type": concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient"),
	"who": user_who,
	"requestor": true,
	"role": user_role_concepts,
	"policy": token_policy,
	"purposeOfUse": user_purposes,
})

user_who := without_nulls({
	"reference": fhir_user_reference,
	"identifier": sub_identifier,
})

fhir_user_reference := claims.fhirUser if nonempty_string(claims.fhirUser)

else := null

sub_identifier := {"value": claims.sub} if nonempty_string(claims.sub)

else := null

user_role_concepts := [{"text": r} | some r in sort(user_roles)] if count(user_roles) > 0

else := null

# BALP OAUTHaccessTokenUse: the token's jti, prefixed per RFC 3553.
token_policy := [concat("", ["urn:ietf:params:oauth:jti:", claims.jti])] if nonempty_string(claims.jti)

else := null

user_purposes := asserted_purpose_concepts if count(asserted_purpose_concepts) > 0

else := null

entities(kind, refs, overridden) := array.concat(
	array.concat(
		[data_entity(kind, ref, overridden) | some ref in ordered(refs); is_string(ref)],
		query_entities,
	),
	array.concat(patient_entities, transaction_entities),
)

data_entity(kind, ref, overridden) := without_nulls({
	"what": {"reference": ref},
	"type": coding(entity_type_system, "2", "System Object"),
	"role": coding(object_role_system, "4", "Domain Resource"),
	"securityLabel": security_label(overridden),
	"detail": btg_detail(kind),
})

security_label(overridden) := ordered(overridden) if count(overridden) > 0

else := null

btg_detail(kind) := [{"type": "btg-reason", "valueString": btg.reason}] if {
	kind == "btg-access"
	btg
}

else := null

# BALP Query: the query itself, base64 of the request URL.
query_entities := [{
	"type": coding(entity_type_system, "2", "System Object"),
	"role": coding(object_role_system, "24", "Query"),
	"query": base64.encode(input.request.url),
}] if {
	interaction in {"search-type", "search-system", "search-compartment", "history-type", "history-system"}
	is_string(input.request.url)
} else := []

patient_entities := [{
	"what": {"reference": concat("/", ["Patient", grant.patient_id])},
	"type": coding(entity_type_system, "1", "Person"),
	"role": coding(object_role_system, "1", "Patient"),
}] if {
	grant.patient_id
} else := []

# BALP: the X-Request-Id of the request, when the client sent one.
transaction_entities := [{
	"what": {"identifier": {"value": v}},
	"type": coding("https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "XrequestId", "X-Request-Id"),
}] if {
	v := header_values("x-request-id")[0]
	nonempty_string(v)
} else := []
