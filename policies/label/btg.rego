# Break-the-glass: the purposes of use asserted, who may break the glass, the reason, the
# token's age, and which conditions are missing.
package smart.label

import data.smart.config
import data.smart.grant
import data.smart.lib.fhir
import data.smart.lib.time

# Purposes of use asserted for this request: {code, source}. From the verified token claims;
# from the R4 `Category` header only when the deployment trusts it (btg.trust_category_header).
asserted_purposes := claim_purposes | header_purposes

claim_purposes := {{"code": c, "source": concat(".", array.concat(["claims"], path))} |
	some path in config.btg_purpose_claim_paths
	some x in fhir.as_list(object.get(claims, path, null))
	some c in purpose_item_codes(x)
}

header_purposes := {{"code": c, "source": "headers.category"} |
	config.enabled(["btg", "trust_category_header"])
	some value in header_values("category")
	some category in split(value, ",")
	c := category_purpose(category)
}

# A claim value: a bare code ("BTG"), "system#code" or "system|code" (hl7-b2b uses
# urn:oid:2.16.840.1.113883.5.8#BTG), a Coding, or a CodeableConcept.
purpose_item_codes(x) := {x} if {
	is_string(x)
	code_token(x)
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
	code_token(code)
}

# A bare code: a letter or "_", then letters, digits, "_" and "-" (checked without a regular
# expression, which WASM compiles on every evaluation).
code_token(x) if {
	trim(substring(x, 0, 1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_") == ""
	x != ""
	trim(x, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == ""
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

btg_purposes := sort({p | some p in asserted_purposes; some r in config.btg_required_purposes; purpose_satisfies(p.code, r)})

btg_purpose := btg_purposes[0]

# The user may break the glass: a user is identified and some btg.eligible selector matches.
btg_permitted if {
	user_present
	some sel in config.btg_eligible
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
	not config.enabled(["btg", "patient_apps"])
}

# The reason: the first configured claim, then the reason header; blank values are skipped.
reason_candidates := array.concat(
	[{"text": trim_space(v), "source": concat(".", array.concat(["claims"], path))} |
		some path in config.btg_reason_claim_paths
		v := object.get(claims, path, null)
		nonempty_string(v)
	],
	[{"text": trim_space(v), "source": concat(".", ["headers", config.btg_reason_header])} |
		config.btg_reason_header != ""
		some v in header_values(config.btg_reason_header)
		nonempty_string(v)
	],
)

btg_reason := reason_candidates[0]

reason_too_long if count(btg_reason.text) > config.btg_reason_max_length

reason_too_short if count(btg_reason.text) < config.btg_reason_min_length

# The time box: now − issued-at within [−clock skew, max age]. A missing or malformed `now`
# or issued-at claim fails closed.
now_millis := time.epoch_millis(input.now)

issued_at := claims[config.btg_issued_at_claim] if {
	is_number(claims[config.btg_issued_at_claim])
	claims[config.btg_issued_at_claim] >= 0
}

issued_millis := floor(issued_at * 1000)

within_time_box if {
	age := now_millis - issued_millis
	age <= config.btg_max_age_seconds * 1000
	age >= 0 - (config.btg_clock_skew_seconds * 1000)
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
