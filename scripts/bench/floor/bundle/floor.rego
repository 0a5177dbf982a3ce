# METADATA
# title: Floor policy - the searchset filter
# description: |
#   The cheapest policy that still filters a searchset (issue 14): a comprehension that drops every
#   entry whose subject is not the patient. See ../read/floor.rego.
package smart.api

decision := {"decision": "filter", "reasons": [], "keep": [e.fullUrl |
	some e in input.response.entry
	e.resource.subject.reference == patient
]}

patient := concat("/", ["Patient", input.claims.patient])

scopes := {}
