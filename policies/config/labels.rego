# Settings of security labels, break-the-glass and audit (the `labels:`, `btg:` and `audit:` parts
# of the host's `policy:` section), with their defaults; smart.label reads them from here.
package smart.config

# METADATA
# title: label_default_sensitivity
# description: |
#   ActCode sensitivity codes (v3 _ActInformationSensitivityPolicy) that restrict a resource
#   unless configured otherwise. Matching uses subsumption: SPI covers BH, MH, PSY, PSYTHPN, SUD
#   (and so ETHUD, OPIOIDUD); the children are listed too so that removing SPI keeps them.
label_default_sensitivity := [
	"ETH", "GDIS", "HIV", "MST", "SCA", "SDV", "SEX", "SICKLE", "SPI", "BH", "MH", "PSY",
	"PSYTHPN", "SUD", "STD", "TBOO", "VIO",
]

label_sensitivity := {c | some c in array_setting(["labels", "sensitivity"], label_default_sensitivity); is_string(c)}

# Confidentiality codes at or above this rank restrict (default R, so R and V).
label_confidentiality_threshold := setting(["labels", "confidentiality_threshold"], "R")

label_rights := [r | some r in array_setting(["labels", "rights"], []); is_object(r)]

label_default_role_claims := ["roles", "extensions.ihe_iua.subject_role", "extensions.hl7-b2b.subject_role"]

label_role_claim_paths := [split(p, ".") | some p in array_setting(["labels", "role_claims"], label_default_role_claims); is_string(p)]

btg_eligible := array_setting(["btg", "eligible"], [])

btg_required_purposes := {c | some c in array_setting(["btg", "purpose_of_use"], ["BTG"]); is_string(c)}

btg_default_purpose_claims := ["purpose_of_use", "extensions.ihe_iua.purpose_of_use", "extensions.hl7-b2b.purpose_of_use"]

btg_purpose_claim_paths := [split(p, ".") | some p in array_setting(["btg", "purpose_claims"], btg_default_purpose_claims); is_string(p)]

btg_reason_claim_paths := [split(p, ".") | some p in array_setting(["btg", "reason_claims"], ["btg_reason"]); is_string(p)]

btg_reason_header := lower(string_setting(["btg", "reason_header"], "x-btg-reason"))

btg_reason_max_length := number_setting(["btg", "reason_max_length"], 500)

btg_reason_min_length := max([1, number_setting(["btg", "reason_min_length"], 1)])

btg_max_age_seconds := number_setting(["btg", "max_age_seconds"], 3600)

btg_clock_skew_seconds := number_setting(["btg", "clock_skew_seconds"], 60)

btg_issued_at_claim := string_setting(["btg", "issued_at_claim"], "iat")

# The status of a label denial for a user who may break the glass: 403 says what would help;
# 404 hides the resource from them too.
label_btg_available_status := s if {
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
