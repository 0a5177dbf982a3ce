package smart.api

# POST _search without its body.
# A POST [type]/_search carries its parameters in the body (FHIR R4 3.1.1.0.2:
# application/x-www-form-urlencoded, the same parameters as in a URL). A request given without
# its body (a gateway that does not forward bodies, a content type the host cannot read) would
# be decided on the URL alone, while the server runs the search with the body's `_include`,
# `_revinclude`, chains and other patients' ids. Such a decision keeps its verdict but must have
# its response filtered: a note says why and a `filter-response` obligation says what to do. A
# body given as "" is known to be empty. Batch entries are not concerned: an entry is complete.
search_body_guard(d) := object.union(d, {
	"reasons": array.concat(object.get(d, "reasons", []), [search_body_note]),
	"obligations": array.concat(object.get(d, "obligations", []), search_body_obligations(d)),
}) if {
	d.decision != "deny"
	search_body_missing
} else := d

search_body_missing if {
	classified.interaction == "search-type"
	upper(input.request.method) == "POST"
	object.get(input.request, "body", null) == null
}

search_body_note := {
	"code": "search-body-not-supplied",
	"message": "POST _search was decided without its body, whose parameters could not be checked: release only what the filter step keeps (send the form body as request.body, \"\" when empty)",
}

search_body_obligations(d) := [] if {
	has_filter_response(d)
} else := [{
	"type": "filter-response",
	"reason": "the search parameters in the request body were not supplied; release only what the filter step keeps",
}]
