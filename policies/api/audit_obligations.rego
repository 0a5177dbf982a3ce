# Audit obligations: break-the-glass accesses and label denials (and every decision when
# audit.all_decisions is on) become AuditEvents the host must write before it releases anything.
package smart.api

import data.smart.access
import data.smart.config
import data.smart.label

# METADATA
# title: audited
# description: |
#   Every access that break-the-glass made possible, and every denial or drop because of a
#   security label, carries an `audit` obligation with an AuditEvent that the host must write
#   before it answers. Other decisions carry none unless `audit.all_decisions` is configured.
audited(d) := with_obligations(d, audit_obligations(d))

with_obligations(d, obligations) := object.union(d, {"obligations": array.concat(object.get(d, "obligations", []), obligations)}) if {
	count(obligations) > 0
} else := d

audit_obligations(d) := label_obligations if {
	any_labelled_input
	label_obligations := array.concat(btg_obligations(d), label_denied_obligations(d))
	count(label_obligations) > 0
} else := [label.audit_obligation("access", decision_refs(d), [], access_outcome(d))] if {
	config.audit_all_decisions
} else := []

# Only labelled resources can need a label audit record: skip the work when nothing is labelled.
any_labelled_input if {
	some r in array.concat([x | x := input_resource], response_resources)
	label.may_carry_labels(r)
}

btg_obligations(d) := [label.audit_obligation("btg-access", [ref_of(x.resource, -1) | some x in lifted], overridden, "0") |
	lifted := [x | some x in released_label_verdicts(d); x.verdict.btg]
	count(lifted) > 0
	overridden := sort({l | some x in lifted; some l in x.verdict.overridden})
]

# The label verdict of every released resource, for the access that released it (smart.access).
released_label_verdicts(d) := array.concat(
	[{"resource": r, "verdict": access.label_verdict(r, access.label_letters(classified))} | some r in released_stored(d)],
	[{"resource": r, "verdict": access.label_verdict(r, ["r", "s"])} | some r in released_response(d)],
)

label_denied_obligations(d) := [label.audit_obligation("label-denied", [ref_of(r, -1) | some r in hidden], labels, "4") |
	hidden := label_hidden(d)
	count(hidden) > 0
	labels := sort({l | some r in hidden; some l in label.protected_labels(r)})
]

input_resource := input.resource if is_object(input.resource)

input_response := input.response if is_object(input.response)

response_resources := [item.resource | some item in bundle_items(input_response); item.resource] if {
	input_response.resourceType == "Bundle"
}

response_resources := [input_response] if {
	input_response.resourceType != "Bundle"
}

response_resources := [] if not input_response

# Resources the decision releases: the stored instance of an allowed interaction, and every
# response resource that was not dropped.
released_stored(d) := [input_resource] if {
	d.decision != "deny"
	input_resource
} else := []

# `dropped[i]` indexes the set: OPA's WASM target answers `i in dropped` by scanning it.
released_response(d) := [item.resource | some item in bundle_items(input_response); item.resource; not dropped[item.index]] if {
	d.decision != "deny"
	input_response.resourceType == "Bundle"
	dropped := {x.index | some x in object.get(d, "drop", [])}
} else := response_resources if {
	d.decision != "deny"
} else := []

label_hidden(d) := [r |
	some x in object.get(d, "drop", [])
	x.reason == "label-restricted"
	r := dropped_resource(x)
] if {
	d.decision != "deny"
} else := [r | some r in array.concat([x | x := input_resource], [x | x := input_response])] if {
	d.reasons[0].code == "label-restricted"
} else := []

dropped_resource(x) := input_response if x.index == -1

dropped_resource(x) := input_response.entry[x.index].resource if x.index >= 0

decision_refs(_) := [ref_of(input_resource, -1)] if {
	input_resource
} else := [input.request.url] if {
	is_string(input.request.url)
} else := []

access_outcome(d) := "4" if d.decision == "deny"

access_outcome(d) := "0" if d.decision != "deny"
