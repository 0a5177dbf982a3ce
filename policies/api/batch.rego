# Batches and transactions: every entry decided on its own, at every depth; the whole summarised.
package smart.api

import data.smart.lib.fhir
import data.smart.request
import data.smart.verdict

# METADATA
# title: batch_decision
# description: |
#   SMART: "batch and transaction requests should be validated based on the actual requests
#   within them". One decision per entry, in order. A transaction is all-or-nothing: any denied
#   entry denies it. A batch is allowed as a whole, with its denied entries answered one by one.
batch_decision := with_batch_response(object.union(summary, {"entries": entries}), object.get(input, "response", null)) if {
	entries := [entry_hinted(e, entry_decision(e)) | some e in classified.entries]
	count(entries) == count(classified.entries)
	summary := batch_summary(classified.interaction, entries)
} else := document(verdict.deny(500, "policy-incomplete", "not every batch/transaction entry could be decided"), {})

# A transaction's entries may reference each other by fullUrl ("urn:uuid:…"): the resources by
# fullUrl, for resolving those references. None when fullUrls repeat (ambiguous), and none in a
# batch, whose entries are independent.
bundle_resources := {e.fullUrl: e.resource |
	some e in classified.entries
	is_string(e.fullUrl)
	is_object(e.resource)
} if {
	classified.interaction == "transaction"
	urls := [e.fullUrl | some e in classified.entries; is_string(e.fullUrl)]
	count(urls) == count({u | some u in urls})
} else := {}

# The server's batch-response is filtered like any other Bundle: every resource in it (and in
# Bundles nested in it) is checked on its own.
with_batch_response(d, response) := d if {
	not is_object(response)
} else := d if {
	d.decision == "deny"
} else := document(response_malformed, {}) if {
	not bundle_entries_readable(response)
} else := document(verdict.deny(500, "policy-incomplete", "not every response entry could be checked"), {}) if {
	count([check_item(item) | some item in bundle_items(response)]) != count(bundle_items(response))
} else := object.union(d, {"keep": keep, "drop": drop, "decision": batch_filtered_decision(d, drop)}) if {
	checked := [check_item(item) | some item in bundle_items(response)]
	keep := [x.ref | some x in checked; x.visible]
	drop := [{"ref": x.ref, "reason": x.reason, "index": x.index} | some x in checked; not x.visible]
}

batch_filtered_decision(_, drop) := "filter" if count(drop) > 0

batch_filtered_decision(d, drop) := d.decision if count(drop) == 0

entry_decision(e) := document(verdict.deny(400, "entry-malformed", "a batch/transaction entry must be an object with request.method and request.url"), {}) if {
	not is_object(e)
} else := document(verdict.deny(400, "entry-malformed", "a batch/transaction entry needs request.method and request.url"), {}) if {
	not fhir.string_member(object.get(e, "request", {}), "method")
} else := document(verdict.deny(400, "entry-malformed", "a batch/transaction entry needs request.method and request.url"), {}) if {
	not fhir.string_member(object.get(e, "request", {}), "url")
} else := entry_classified_decision(e, object.union(request.classify(entry_request(e)), {"bundle": bundle_resources}))

# Batches are decided entry by entry, never skipped: a Bundle in an entry is refused unless the
# entry stores it as a Bundle resource (POST Bundle, PUT Bundle/id) that is no batch or
# transaction, whatever its URL spells (base, "?", "?_format=json", "%3F"…); a create or update
# entry must carry its resource.
entry_classified_decision(e, c) := document(verdict.deny(400, "nested-batch", "a batch or transaction may not contain another one"), {}) if {
	c.interaction in {"batch", "transaction"}
} else := document(verdict.deny(400, "nested-batch", "a batch or transaction may not contain another one"), {}) if {
	e.resource.resourceType == "Bundle"
	not bundle_stored_as_resource(c, e.resource)
} else := document(verdict.deny(400, "body-mismatch", concat("", ["a ", c.interaction, " entry must carry the resource it writes"])), {}) if {
	c.interaction in {"create", "update"}
	not fhir.object_member(e, "resource")
} else := classified_decision(c, entry_request(e), null, null)

bundle_stored_as_resource(c, bundle) if {
	c.interaction in {"create", "update"}
	c.type == "Bundle"
	not bundle.type in {"batch", "transaction"}
}

entry_request(e) := {
	"method": e.request.method,
	"url": trim_prefix(e.request.url, "/"),
	"headers": entry_headers(e.request),
	"body": object.get(e, "resource", null),
}

entry_headers(r) := {"if-none-exist": r.ifNoneExist} if "ifNoneExist" in object.keys(r)

entry_headers(r) := {} if not "ifNoneExist" in object.keys(r)

batch_summary("transaction", entries) := document(
	verdict.deny(strongest.status, "transaction-entry-denied", "a transaction is atomic and at least one of its entries is denied"),
	{},
) if {
	denied := [e | some e in entries; e.decision == "deny"]
	count(denied) > 0
	strongest := verdict.strongest_deny([{"decision": "deny", "status": e.status} | some e in denied])
}

# A batch none of whose entries may run is refused as a whole: answering it 2xx would tell a
# gateway that only looks at the status to forward it.
batch_summary("batch", entries) := document(
	verdict.deny(strongest.status, "batch-every-entry-denied", "every entry of the batch is denied"),
	{},
) if {
	count(entries) > 0
	every e in entries {
		e.decision == "deny"
	}
	strongest := verdict.strongest_deny([{"decision": "deny", "status": e.status} | some e in entries])
}

batch_summary(kind, entries) := object.union({"decision": overall_decision(entries), "reasons": scope_reasons}, batch_obligations(entries)) if {
	not transaction_denied(kind, entries)
	not batch_denied(kind, entries)
}

# Entries whose responses must be filtered make the whole batch-response one to filter.
batch_obligations(entries) := {"obligations": [{
	"type": "filter-response",
	"reason": "entries of this batch release data the policy has not seen; release only what the filter step keeps of the batch-response",
}]} if {
	some e in entries
	has_filter_response(e)
} else := {}

batch_denied("batch", entries) if {
	count(entries) > 0
	every e in entries {
		e.decision == "deny"
	}
}

transaction_denied("transaction", entries) if {
	some e in entries
	e.decision == "deny"
}

overall_decision(entries) := "allow" if {
	every e in entries {
		e.decision == "allow"
	}
} else := "filter"
