# Batches and transactions.
package smart.api_test

# --- Batches and transactions --------------------------------------------------------------

bundle(type, entries) := {"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": type, "entry": entries}}

test_batch_entries_are_decided_one_by_one if {
	b := bundle("batch", [
		{"request": {"method": "GET", "url": "Observation?patient=123"}},
		{"request": {"method": "DELETE", "url": "Observation/o1"}},
		{"request": {"method": "POST", "url": "/Observation", "ifNoneExist": "identifier=1"}, "resource": obs(null, "123")},
		{"request": {"method": "POST", "url": ""}, "resource": {"resourceType": "Bundle", "type": "batch"}},
		{"request": {"url": "x"}},
	])
	d := decide("patient/Observation.rs", p123, b, {})
	d.decision == "filter"
	[e.decision | some e in d.entries] == ["allow", "deny", "deny", "deny", "deny"]
	d.entries[3].reasons[0].code == "nested-batch"
	d.entries[4].reasons[0].code == "entry-malformed"
}

test_a_transaction_with_a_denied_entry_is_denied_whole if {
	t := bundle("transaction", [{"request": {"method": "GET", "url": "Observation?patient=123"}}, {"request": {"method": "DELETE", "url": "Observation/o1"}}])
	d := decide("patient/Observation.rs", p123, t, {})
	d.decision == "deny"
	d.status == 403
	d.reasons[0].code == "transaction-entry-denied"
	ok := bundle("transaction", [{"request": {"method": "GET", "url": "Observation?patient=123"}}])
	decide("patient/Observation.rs", p123, ok, {}).decision == "allow"
}

test_a_batch_whose_every_entry_is_denied_is_denied_whole if {
	b := bundle("batch", [{"request": {"method": "GET", "url": "Patient/999"}}, {"request": {"method": "DELETE", "url": "Observation/o1"}}])
	d := decide("patient/Observation.rs", p123, b, {})
	d.decision == "deny"

	# Patient/999 could never be read with patient/ scopes for 123: 404, as if it did not exist (issue 15)
	d.status == 404
	d.reasons[0].code == "batch-every-entry-denied"
	d.outcome.resourceType == "OperationOutcome"
	[e.decision | some e in d.entries] == ["deny", "deny"]
	decide("patient/Observation.rs", p123, bundle("batch", []), {}).decision == "allow"
}
