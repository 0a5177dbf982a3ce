# The filter step: with a server response, every resource in it (matches, includes, a single
# resource) is checked on its own, linked resources with it.
package smart.api

import data.smart.access
import data.smart.lib.fhir
import data.smart.request
import data.smart.verdict

# METADATA
# title: response_decision
# description: |
#   With a server response: every resource in it (matches, includes, a single resource) is
#   checked on its own. A Bundle gives `keep`/`drop`; a single resource that may not be released
#   is a deny that reveals nothing (404 by default).
response_decision(c, v, response) := document(response_malformed, c) if {
	not bundle_entries_readable(response)
} else := object.union(document(v, c), {"keep": [], "drop": []}) if {
	response.resourceType == "Bundle"
	count(bundle_items(response)) == 0
} else := bundle_response(c, v, count(bundle_items(response)), linked_checks(bundle_items(response))) if {
	response.resourceType == "Bundle"
} else := single_response(c, v, response, access.response_visibility(c, response))

single_response(c, v, response, vis) := object.union(document(v, c), {"keep": [ref_of(response, -1)], "drop": []}) if {
	vis.decision == "allow"
} else := object.union(
	document(object.union(vis, {"status": hidden_status}), c),
	{"keep": [], "drop": [{"ref": ref_of(response, -1), "reason": vis.reason.code, "index": -1}]},
)

# METADATA
# title: linked_checks
# description: |
#   Every entry checked on its own, then those hidden only for being outside the compartment
#   looked up in an index of what the visible ones reference (smart.access linked.rego): first
#   the Provenance of visible resources, then the resources the visible ones and that Provenance
#   reference. Each entry is visited a fixed number of times: linear in the Bundle.
linked_checks(items) := with_links(items, [check_item(item) | some item in items])

# Without an entry that a link could make visible, the index is not built at all.
with_links(items, direct) := direct if {
	not any_linkable(items, direct)
} else := [linked_check(x, items[i], index, provenance) | some i, x in direct] if {
	first := access.linked_index([items[i].resource | some i, x in direct; x.visible; access.link_source(items[i].resource)])
	provenance := {i |
		some i, x in direct
		linkable(x, items[i])
		items[i].resource.resourceType == "Provenance"
		access.linked_visibility(items[i].resource, first).decision == "allow"
	}
	index := access.linked_index_with(first, [items[i].resource | some i in provenance])
}

any_linkable(items, direct) if {
	some i, x in direct
	linkable(x, items[i])
}

linkable(x, item) if {
	not x.visible
	x.reason in access.linkable_reasons
	access.may_link(item.resource)
}

# A Provenance already found visible is not decided again; lookups index the set (see linked.rego).
linked_check(x, item, index, provenance) := {"ref": x.ref, "index": x.index, "visible": true} if {
	provenance[item.index]
} else := resource_check(item, access.linked_visibility(item.resource, index)) if {
	linkable(x, item)
} else := x

hidden_status := data.smart.config.hidden_status

bundle_response(c, v, n, checked) := document(verdict.deny(500, "policy-incomplete", "not every response entry could be checked"), c) if {
	count(checked) != n
} else := bundle_split(c, v, [x.ref | some x in checked; x.visible], [{"ref": x.ref, "reason": x.reason, "index": x.index} | some x in checked; not x.visible])

bundle_split(c, v, keep, drop) := object.union(document(v, c), {"keep": keep, "drop": drop}) if {
	count(drop) == 0
} else := object.union(document(verdict.filter(object.get(v, "narrow", [])), c), {"keep": keep, "drop": drop})

# A Bundle's `entry` is a list, or absent; anything else cannot be checked entry by entry.
bundle_entries_readable(response) if response.resourceType != "Bundle"

bundle_entries_readable(response) if not present(response, "entry")

bundle_entries_readable(response) if is_array(response.entry)

response_malformed := verdict.deny(500, "response-malformed", "the response Bundle's entry is not a list, so its entries cannot be checked")

# Every entry of a Bundle, each decided: `resource` is set only when the entry holds one.
bundle_items(bundle) := [object.union({"index": i, "entry": e}, entry_resource(e)) | some i, e in bundle.entry] if {
	is_array(bundle.entry)
} else := []

entry_resource(e) := {"resource": e.resource} if is_object(e.resource)

else := {}

# An explicit JSON null holds nothing (FHIR JSON has no nulls).
present(x, k) if {
	is_object(x)
	object.get(x, k, null) != null
}

# METADATA
# title: check_item
# description: |
#   Whether one Bundle entry may be released. Nothing passes by default: an entry that is not an
#   object, whose `resource` is not one, or whose `fullUrl`, `request.url` or `response.location`
#   name another resource than the one it carries is dropped; an entry without a resource (a
#   history deletion, a batch-response status) is kept only when it names no resource, or only
#   the resource the request itself was decided on (smart.api `names_checked_target`).
check_item(item) := hidden_item(item, "entry-malformed") if {
	not is_object(item.entry)
} else := hidden_item(item, "unreadable-resource") if {
	present(item.entry, "resource")
	not item.resource
} else := resourceless_check(item) if {
	not present(item.entry, "resource")
} else := hidden_item(item, "entry-reference-mismatch") if {
	not entry_refs_consistent(item.entry)
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": true} if {
	item.resource.resourceType == "Bundle"
	bundle_visible(item.resource)
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": "nested-bundle-hidden"} if {
	item.resource.resourceType == "Bundle"
} else := r if {
	r := resource_check(item, access.visibility(item.resource))
} else := hidden_item(item, "unreadable-resource")

hidden_item(item, reason) := {"ref": ref_of(object.get(item, "resource", null), item.index), "index": item.index, "visible": false, "reason": reason}

resourceless_check(item) := {"ref": ref_of(null, item.index), "index": item.index, "visible": true} if {
	outcome_visible(item.entry)
	every ref in entry_named_refs(item.entry) {
		names_checked_target(ref, item.index)
	}
} else := hidden_item(item, "entry-unchecked")

# The references an entry makes besides its resource; a member of another JSON type is kept as
# it is, so that it matches nothing.
entry_named_refs(e) := [r |
	some path in [["fullUrl"], ["request", "url"], ["response", "location"]]
	r := object.get(e, path, null)
	r != null
]

# A resource's entry names only that resource: fullUrl (or a bundle-local urn:uuid:/urn:oid:),
# response.location (possibly versioned) and request.url (its type or itself, without a query).
entry_refs_consistent(e) if {
	outcome_visible(e)
	full_url_consistent(object.get(e, "fullUrl", null), e.resource)
	location_consistent(object.get(e, ["response", "location"], null), e.resource)
	request_url_consistent(object.get(e, ["request", "url"], null), e.resource)
}

full_url_consistent(null, _)

full_url_consistent(url, _) if {
	is_string(url)
	startswith(url, "urn:uuid:")
}

full_url_consistent(url, _) if {
	is_string(url)
	startswith(url, "urn:oid:")
}

full_url_consistent(url, r) if url_names(url, r.resourceType, r.id)

location_consistent(null, _)

location_consistent(url, r) if url_names(url, r.resourceType, r.id)

request_url_consistent(null, _)

request_url_consistent(url, r) if {
	is_string(url)
	not contains(url, "?")
	trim_prefix(url, "/") == r.resourceType
}

request_url_consistent(url, r) if {
	not contains(url, "?")
	url_names(url, r.resourceType, r.id)
}

# `url` names type/id: relative (t/id, t/id/_history/v) or an absolute URL ending so.
# The common spelling, an absolute URL ending in /<type>/<id>, without splitting it.
url_names(url, t, id) if {
	is_string(url)
	is_string(t)
	fhir.valid_id(id)
	some scheme in ["http://", "https://"]
	startswith(url, scheme)
	endswith(url, concat("/", ["", t, id]))
	not contains(url, "#")
} else if {
	is_string(id)
	id in url_ids(url, t)
}

url_ids(url, t) := {segments[(n - k) + 1] |
	is_string(url)
	is_string(t)
	segments := split(trim_prefix(split(url, "#")[0], "/"), "/")
	n := count(segments)
	some k in [2, 4]
	n >= k
	url_tail_ok(url, n, k)
	segments[n - k] == t
	fhir.valid_id(segments[(n - k) + 1])
	url_version_ok(segments, n, k)
}

url_tail_ok(_, n, k) if n == k

url_tail_ok(url, n, k) if {
	n > k
	some scheme in ["http://", "https://"]
	startswith(url, scheme)
}

url_version_ok(_, _, 2)

url_version_ok(segments, n, 4) if {
	segments[n - 2] == "_history"
	segments[n - 1] != ""
}

# An OperationOutcome in response.outcome is checked like any resource.
outcome_visible(e) if not present(object.get(e, "response", {}), "outcome")

outcome_visible(e) if access.visibility(e.response.outcome).decision == "allow"

# A resourceless entry may name the resource the request itself was decided on: in a
# batch/transaction response, what entry i of the request targeted (its type for a create),
# if that entry was not denied; in an instance interaction's response (history), the instance,
# if the decision was made on its stored resource.
names_checked_target(ref, index) if {
	classified.interaction in {"batch", "transaction"}
	req := entry_request(classified.entries[index])
	c := request.classify(req)
	not c.error
	not c.interaction in {"batch", "transaction"}
	access.decide(c, req, null).decision != "deny"
	entry_target_named(ref, c)
}

names_checked_target(ref, _) if {
	classified.level == "instance"
	input_resource
	url_names(ref, classified.type, classified.id)
}

entry_target_named(ref, c) if {
	c.level == "instance"
	url_names(ref, c.type, c.id)
}

entry_target_named(ref, c) if {
	c.interaction == "create"
	count(url_ids(ref, c.type)) > 0
}

resource_check(item, vis) := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": true} if {
	vis.decision == "allow"
} else := {"ref": ref_of(item.resource, item.index), "index": item.index, "visible": false, "reason": vis.reason.code} if {
	vis.decision == "deny"
}

# A Bundle inside a response (e.g. a batch-response entry) is released only if every resource
# in it may be; deeper nesting is not inspected and so not released.
bundle_visible(resource) if {
	bundle_entries_readable(resource)
	every e in object.get(resource, "entry", []) {
		nested_visible(e)
	}
}

nested_visible(e) if {
	is_object(e)
	not present(e, "resource")
	count(entry_named_refs(e)) == 0
	outcome_visible(e)
}

nested_visible(e) if {
	e.resource.resourceType != "Bundle"
	entry_refs_consistent(e)
	access.visibility(e.resource).decision == "allow"
}

ref_of(resource, _) := concat("/", [resource.resourceType, resource.id]) if {
	is_string(resource.resourceType)
	is_string(resource.id)
}

ref_of(resource, index) := concat("", ["entry[", format_int(index, 10), "]"]) if {
	not ref_with_id(resource)
}

ref_with_id(resource) if {
	is_string(resource.resourceType)
	is_string(resource.id)
}
