# The verdict for one resource: its protected labels, lifted by break-the-glass or refused with a
# message that says what would help (never which labels).
package smart.label

import data.smart.config
import data.smart.verdict

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
	verdict.deny(config.label_btg_available_status, "label-restricted", btg_hint(btg_missing_via(patient_only))),
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
	"assert purpose of use ", concat(" or ", sort([c | some c in config.btg_required_purposes])),
	" (", act_reason_system, ") in the access token",
	header_phrase,
])

hint_phrase("btg-reason-missing") := concat("", ["give a reason", reason_phrase])

hint_phrase("btg-reason-too-long") := concat("", ["shorten the reason to at most ", format_int(config.btg_reason_max_length, 10), " characters"])

hint_phrase("btg-expired") := concat("", [
	"use a freshly issued access token: break-the-glass is possible only within ",
	format_int(config.btg_max_age_seconds, 10), " seconds of token issue",
])

header_phrase := " or in a Category header" if config.enabled(["btg", "trust_category_header"])

header_phrase := "" if not config.enabled(["btg", "trust_category_header"])

reason_phrase := concat("", [" in the ", config.btg_reason_header, " header"]) if config.btg_reason_header != ""

reason_phrase := concat("", [" in the token claim ", concat(".", config.btg_reason_claim_paths[0])]) if {
	config.btg_reason_header == ""
	count(config.btg_reason_claim_paths) > 0
}

reason_phrase := "" if {
	config.btg_reason_header == ""
	count(config.btg_reason_claim_paths) == 0
}
