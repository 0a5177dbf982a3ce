# METADATA
# title: OperationOutcome for denials
# description: |
#   The FHIR OperationOutcome a host returns with a deny. Issue codes from
#   http://hl7.org/fhir/issue-type: invalid (400), login (401), forbidden (403), not-found (404),
#   exception (500). A 404 says no more than a FHIR server says of a resource it does not have.
#   When a scope would allow the request, the issue names it in an extension (see config).
package smart.outcome

import data.smart.config

issue_code := {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 500: "exception"}

# METADATA
# title: for_deny
# description: |
#   An OperationOutcome for a deny verdict {status, reason, required_scopes?}.
for_deny(v) := {"resourceType": "OperationOutcome", "issue": [object.union(object.union(base_issue(v), scope_extension(v)), btg_details(v))]}

base_issue(v) := {
	"severity": "error",
	"code": object.get(issue_code, v.status, "forbidden"),
	"diagnostics": diagnostics(v),
}

diagnostics(v) := "Resource not found" if v.status == 404

diagnostics(v) := v.reason.message if v.status != 404

scope_extension(v) := {
	"extension": [{"url": config.required_scope_extension_url, "valueString": s} | some s in v.required_scopes],
	"details": {"text": concat("", ["a token with the scope ", concat(" ", v.required_scopes), " would allow this request"])},
} if {
	count(object.get(v, "required_scopes", [])) > 0
}

scope_extension(v) := {} if count(object.get(v, "required_scopes", [])) == 0

# METADATA
# title: btg_details
# description: |
#   A label denial that break-the-glass would lift for this user (smart.label `btg_available`: the
#   user and client may break the glass, only the request lacks something) says so in codes an
#   app can act on: `break-the-glass-available`, then what is missing (`btg-purpose-missing`,
#   `btg-reason-missing`, `btg-expired`). Never a scope: labels are not lifted by scopes. Users
#   who may not break the glass get the hidden status and no such detail (smart.label).
btg_details(v) := {"details": {
	"coding": array.concat(
		[{"system": decision_code_system, "code": "break-the-glass-available"}],
		[{"system": decision_code_system, "code": m} | some m in v.btg_missing],
	),
	"text": v.reason.message,
}} if {
	v.btg_available == true
} else := {}

decision_code_system := "https://smart-authz.dev/fhir/CodeSystem/decision"
