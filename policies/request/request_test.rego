package smart.request_test

import data.smart.request

classify(method, url) := request.classify({"method": method, "url": url})

interaction_of(method, url) := classify(method, url).interaction

test_rest_interactions_map_to_their_fhir_names if {
	cases := [
		["GET", "Observation/o1", "read"],
		["HEAD", "Observation/o1", "read"],
		["get", "Observation/o1", "read"],
		["GET", "Observation/o1/_history/2", "vread"],
		["GET", "Observation/o1/_history", "history-instance"],
		["GET", "Observation/_history", "history-type"],
		["GET", "_history", "history-system"],
		["GET", "Observation", "search-type"],
		["GET", "Observation?code=x", "search-type"],
		["POST", "Observation/_search", "search-type"],
		["GET", "", "search-system"],
		["GET", "?_type=Observation", "search-system"],
		["GET", "Patient/123/Observation", "search-compartment"],
		["GET", "Patient/123/*", "search-compartment"],
		["POST", "Observation", "create"],
		["PUT", "Observation/o1", "update"],
		["PATCH", "Observation/o1", "patch"],
		["DELETE", "Observation/o1", "delete"],
		["PUT", "Observation?identifier=x", "update"],
		["DELETE", "Observation?identifier=x", "delete"],
		["PATCH", "Observation?identifier=x", "patch"],
		["GET", "metadata", "capabilities"],
		["GET", ".well-known/smart-configuration", "capabilities"],
		["GET", "Patient/123/$everything", "operation"],
		["POST", "$export", "operation"],
		["GET", "Group/g1/$export", "operation"],
		["POST", "ValueSet/$expand", "operation"],
	]
	every c in cases {
		interaction_of(c[0], c[1]) == c[2]
	}
}

test_letters_follow_the_smart_scopes_page if {
	classify("GET", "Observation/o1").letters == ["r"]
	classify("GET", "Observation/o1/_history").letters == ["r"]
	classify("GET", "Observation/_history").letters == ["s"]
	classify("GET", "Observation").letters == ["s"]
	classify("POST", "Observation").letters == ["c"]
	classify("PUT", "Observation/o1").letters == ["u"]
	classify("PATCH", "Observation/o1").letters == ["u"]
	classify("DELETE", "Observation/o1").letters == ["d"]
	classify("DELETE", "Observation?identifier=x").letters == ["d", "s"]
	classify("PUT", "Observation?identifier=x").letters == ["u", "s"]
}

test_conditional_create_needs_search_too if {
	c := request.classify({"method": "POST", "url": "Observation", "headers": {"if-none-exist": "identifier=http://x|1"}})
	c.conditional
	c.letters == ["c", "s"]
	c.params[0].name == "identifier"
	c.params[0].values == ["http://x|1"]
}

test_unclassifiable_requests_carry_an_error if {
	cases := [
		["GET", "../admin"],
		["GET", "/Observation/o1"],
		["GET", "https://evil.example/fhir/Observation/o1"],
		["GET", "Observation//o1"],
		["GET", "Observation/o1#x"],
		["GET", "observation/o1"],
		["GET", "Observation/o*1"],
		["GET", "Observation/o1/extra/path/too/long"],
		["OPTIONS", "Observation"],
		["PUT", "Observation"],
		["DELETE", "Observation"],
		["POST", ""],
		["POST", "Observation/o1"],
		["GET", "Observation?code=%zz"],
		["GET", "Observation/%2e%2e"],
		["GET", "Patient/123/$every thing"],
		["GET", "Unknown/1"],
	]
	every c in cases {
		classify(c[0], c[1]).error
	}
}

test_non_string_method_and_url_are_errors if {
	request.classify({"method": 1, "url": "Observation"}).error == "request.method must be a string"
	contains(request.classify({"method": "GET"}).error, "request.url must be a string")
}

test_query_parameters_are_decoded_and_split if {
	c := classify("GET", "Observation?code=http%3A%2F%2Floinc.org%7C1234-5,http://loinc.org|999&subject:Patient.name=peter&date=ge2020&_count=10&flag")
	c.params == [
		{"name": "code", "base": "code", "modifier": "", "chain": "", "values": ["http://loinc.org|1234-5", "http://loinc.org|999"]},
		{"name": "subject:Patient.name", "base": "subject", "modifier": "Patient", "chain": "name", "values": ["peter"]},
		{"name": "date", "base": "date", "modifier": "", "chain": "", "values": ["ge2020"]},
		{"name": "_count", "base": "_count", "modifier": "", "chain": "", "values": ["10"]},
		{"name": "flag", "base": "flag", "modifier": "", "chain": "", "values": [""]},
	]
}

test_plus_is_a_space_in_query_values if {
	classify("GET", "Patient?name=van+der+berg").params[0].values == ["van der berg"]
}

test_reverse_chains_keep_their_whole_name if {
	p := classify("GET", "Patient?_has:Observation:patient:code=1234-5").params[0]
	p.base == "_has:Observation:patient:code"
	p.chain == ""
}

test_post_search_reads_form_and_json_bodies if {
	form := request.classify({"method": "POST", "url": "Observation/_search?status=final", "body": "patient=123&code=x"})
	[p.name | some p in form.params] == ["status", "patient", "code"]
	json := request.classify({"method": "POST", "url": "Observation/_search", "body": {"patient": ["123", "456"], "_count": 5}})
	{p.name | some p in json.params} == {"patient", "_count"}
	empty := request.classify({"method": "POST", "url": "Observation/_search"})
	empty.params == []
}

test_system_search_types_come_from_underscore_type if {
	classify("GET", "?_type=Observation,Condition").types == ["Observation", "Condition"]
	classify("GET", "").types == ["*"]
	classify("GET", "_history?_type=Patient").types == ["Patient"]
}

test_batch_and_transaction_bundles_carry_their_entries if {
	body := {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "GET", "url": "Patient/1"}}]}
	c := request.classify({"method": "POST", "url": "", "body": body})
	c.interaction == "transaction"
	count(c.entries) == 1
	other := request.classify({"method": "POST", "url": "", "body": {"resourceType": "Bundle", "type": "collection"}})
	other.error
}

test_compartment_search_records_the_compartment if {
	c := classify("GET", "Encounter/e1/Observation?code=x")
	c.compartment == {"type": "Encounter", "id": "e1"}
	c.type == "Observation"
}

test_operations_need_a_well_formed_name if {
	classify("GET", "$everything").operation == "$everything"
	classify("PUT", "$everything").error
	classify("GET", "Patient/$x!").error
}

create_with(headers) := request.classify({"method": "POST", "url": "Observation", "headers": headers})

# M3: the contract allows a header value as a string or a list of strings; header names in any case.
test_if_none_exist_may_be_a_list_and_its_name_any_case if {
	every h in [
		{"if-none-exist": ["identifier=x"]},
		{"If-None-Exist": "identifier=x"},
		{"IF-NONE-EXIST": ["", "?identifier=x"]},
		{"if-none-exist": "identifier=x", "If-None-Exist": ["identifier=x"]},
	] {
		c := create_with(h)
		c.conditional
		c.letters == ["c", "s"]
		[p.name | some p in c.params] == ["identifier"]
	}
	every h in [{"if-none-exist": ""}, {"if-none-exist": []}, {"if-none-exist": ["", ""]}, {"x-other": "identifier=x"}] {
		not create_with(h).conditional
	}
	request.classify({"method": "POST", "url": "Observation", "headers": "if-none-exist"}).conditional == false
}

test_if_none_exist_of_another_kind_or_with_two_searches_is_an_error if {
	every h in [
		{"if-none-exist": 1},
		{"if-none-exist": null},
		{"if-none-exist": false},
		{"if-none-exist": {"identifier": "x"}},
		{"if-none-exist": ["identifier=x", ["identifier=y"]]},
		{"if-none-exist": ["identifier=x", "identifier=y"]},
		{"if-none-exist": "identifier=x", "If-None-Exist": "identifier=y"},
	] {
		contains(create_with(h).error, "If-None-Exist")
	}

	# only a create runs the search: elsewhere the header is not looked at
	request.classify({"method": "GET", "url": "Observation", "headers": {"if-none-exist": 1}}).interaction == "search-type"
}
