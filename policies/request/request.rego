# METADATA
# title: Request classification
# description: |
#   Maps an HTTP request (method, URL relative to the FHIR base, headers, body) to the FHIR
#   interaction it performs (FHIR R4 RESTful API) and the SMART permission letters it needs
#   (SMART App Launch 2.2 "Scopes for requesting FHIR Resources"):
#   c = create; r = read, vread, instance history; u = update, patch; d = delete;
#   s = type and system search, type and system history.
#   A request that cannot be classified yields {"error": …} and is denied by the decision.
package smart.request

import data.smart.lib.fhir
import data.smart.lib.text

methods := {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

# HEAD is treated as GET (FHIR R4 3.1.0.15).
read_methods := {"GET", "HEAD"}

# Parameters that control the result set, never filter it (FHIR R4 search, 3.1.1.5 and 3.1.1.6).
result_parameters := {
	"_sort", "_count", "_include", "_revinclude", "_summary", "_total", "_elements",
	"_format", "_pretty", "_since", "_at", "_type",
}

# METADATA
# title: classify
# description: |
#   The interaction a request performs, or {"error": message}.
classify(req) := {"error": "request.method must be a string"} if {
	not fhir.string_member(req, "method")
} else := {"error": concat("", ["unsupported HTTP method ", req.method])} if {
	not methods[upper(req.method)]
} else := {"error": "request.url must be a string (relative to the FHIR base, query included)"} if {
	not fhir.string_member(req, "url")
} else := {"error": url_error(req.url)} if {
	url_error(req.url)
} else := {"error": "malformed query string: bad percent-encoding or empty parameter name"} if {
	not query_params(url_query(req.url))
} else := {"error": if_none_exist_error(req)} if {
	upper(req.method) == "POST"
	if_none_exist_error(req)
} else := c if {
	c := interaction(upper(req.method), path_segments(req.url), query_params(url_query(req.url)), req)
} else := {"error": concat("", [
	"cannot classify ", upper(req.method), " ", req.url,
	" as a FHIR interaction",
])}

# --- URL anatomy -------------------------------------------------------------------------

url_path(url) := split(url, "?")[0]

url_query(url) := substring(url, indexof(url, "?") + 1, -1) if contains(url, "?")

url_query(url) := "" if not contains(url, "?")

# Path segments, percent-decoded; the base itself has none.
path_segments(url) := [] if url_path(url) == ""

path_segments(url) := [text.percent_decode(s) | some s in split(url_path(url), "/")] if url_path(url) != ""

url_error(url) := "request.url must be relative to the FHIR base, not absolute" if {
	i := indexof(url, ":")
	i > 0
	trim(substring(url, 0, 1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == ""
	trim(substring(url, 0, i), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-") == ""
} else := "request.url must be relative to the FHIR base (no leading '/')" if {
	startswith(url, "/")
} else := "request.url contains a fragment" if {
	contains(url, "#")
} else := "request.url has a badly percent-encoded path segment" if {
	url_path(url) != ""
	some s in split(url_path(url), "/")
	not text.percent_decode(s)
} else := "request.url has an empty, '.' or '..' path segment" if {
	url_path(url) != ""
	some s in split(url_path(url), "/")
	bad_segment(s)
}

bad_segment("")

bad_segment(".")

bad_segment("..")

bad_segment(s) if text.percent_decode(s) in {".", "..", ""}

bad_segment(s) if contains(text.percent_decode(s), "/")

# METADATA
# title: query_params
# description: |
#   The parameters of a query string, in order: {name, base, modifier, chain, values}.
#   `subject:Patient.name=x` has base "subject", modifier "Patient", chain "name".
#   Undefined when any part is badly percent-encoded.
query_params(q) := [] if q == ""

query_params(q) := params if {
	q != ""
	items := [i | some i in split(q, "&"); i != ""]
	params := [p | some item in items; p := query_param(item)]
	count(params) == count(items)
}

query_param(item) := param_record(name, raw) if {
	i := indexof(item, "=")
	i > 0
	name := text.percent_decode(replace(substring(item, 0, i), "+", " "))
	raw := substring(item, i + 1, -1)
}

query_param(item) := param_record(name, "") if {
	not contains(item, "=")
	name := text.percent_decode(replace(item, "+", " "))
}

param_record(name, raw) := object.union(name_parts(name), {"name": name, "values": values}) if {
	values := fhir.decoded_values(raw)
}

name_parts(name) := {"base": name, "modifier": "", "chain": ""} if {
	startswith(name, "_has:")
}

name_parts(name) := {"base": base, "modifier": modifier, "chain": chain} if {
	not startswith(name, "_has:")
	head := split(name, ".")[0]
	chain := substring(name, count(head) + 1, -1)
	base := split(head, ":")[0]
	modifier := substring(head, count(base) + 1, -1)
}

# Parameters sent in a POST _search body (application/x-www-form-urlencoded text, or a JSON
# object of name → value), appended to those of the URL: both places mean the same (FHIR R4 3.1.0.8).
body_params(body) := [] if body == null

body_params(body) := query_params(body) if is_string(body)

body_params(body) := [p | some name, v in body; some raw in fhir.as_list(v); p := param_record(name, raw_value(raw))] if {
	is_object(body)
	not body.resourceType
}

raw_value(v) := v if is_string(v)

raw_value(v) := format_int(v, 10) if is_number(v)

# --- Interactions ------------------------------------------------------------------------

interaction(m, [], params, _) := {
	"interaction": "search-system", "level": "system", "letters": ["s"],
	"params": params, "types": system_search_types(params),
} if read_methods[m]

interaction("POST", [], params, req) := {
	"interaction": req.body.type, "level": "system", "letters": [],
	"params": params, "entries": fhir.as_list(object.get(req.body, "entry", [])),
} if {
	req.body.resourceType == "Bundle"
	req.body.type in {"batch", "transaction"}
}

interaction(m, ["metadata"], params, _) := {"interaction": "capabilities", "level": "system", "letters": [], "params": params} if read_methods[m]

interaction(m, [".well-known", "smart-configuration"], params, _) := {
	"interaction": "capabilities", "level": "system", "letters": [], "params": params,
} if read_methods[m]

interaction(m, ["_history"], params, _) := {
	"interaction": "history-system", "level": "system", "letters": ["s"],
	"params": params, "types": system_search_types(params),
} if read_methods[m]

interaction(m, [op], params, _) := operation(m, op, "system", "", "", params) if startswith(op, "$")

interaction(m, [t], params, req) := type_interaction(m, t, params, req) if {
	fhir.resource_type(t)
	type_interaction(m, t, params, req)
}

interaction("POST", [t, "_search"], params, req) := {
	"interaction": "search-type", "level": "type", "type": t, "letters": ["s"],
	"params": array.concat(params, bparams),
} if {
	fhir.resource_type(t)
	bparams := body_params(object.get(req, "body", null))
}

interaction(m, [t, "_history"], params, _) := {
	"interaction": "history-type", "level": "type", "type": t, "letters": ["s"], "params": params,
} if {
	read_methods[m]
	fhir.resource_type(t)
}

interaction(m, [t, op], params, _) := operation(m, op, "type", t, "", params) if {
	fhir.resource_type(t)
	startswith(op, "$")
}

interaction(m, [t, id], params, _) := object.union(instance_interaction(m), {"level": "instance", "type": t, "id": id, "params": params}) if {
	fhir.resource_type(t)
	fhir.valid_id(id)
	instance_interaction(m)
}

interaction(m, [t, id, "_history"], params, _) := {
	"interaction": "history-instance", "level": "instance", "type": t, "id": id, "letters": ["r"], "params": params,
} if {
	read_methods[m]
	fhir.resource_type(t)
	fhir.valid_id(id)
}

interaction(m, [t, id, "_history", vid], params, _) := {
	"interaction": "vread", "level": "instance", "type": t, "id": id, "vid": vid, "letters": ["r"], "params": params,
} if {
	read_methods[m]
	fhir.resource_type(t)
	fhir.valid_id(id)
	fhir.valid_id(vid)
}

interaction(m, [t, id, op], params, _) := operation(m, op, "instance", t, id, params) if {
	fhir.resource_type(t)
	fhir.valid_id(id)
	startswith(op, "$")
}

# Compartment search: GET [base]/Patient/123/Observation (or /* for every type).
interaction(m, [ct, id, t], params, _) := {
	"interaction": "search-compartment", "level": "type", "type": t, "letters": ["s"], "params": params,
	"compartment": {"type": ct, "id": id},
} if {
	read_methods[m]
	ct in {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}
	fhir.valid_id(id)
	compartment_search_type(t)
}

compartment_search_type("*")

compartment_search_type(t) if fhir.resource_type(t)

instance_interaction(m) := {"interaction": "read", "letters": ["r"]} if read_methods[m]

instance_interaction("PUT") := {"interaction": "update", "letters": ["u"]}

instance_interaction("PATCH") := {"interaction": "patch", "letters": ["u"]}

instance_interaction("DELETE") := {"interaction": "delete", "letters": ["d"]}

type_interaction(m, t, params, _) := {
	"interaction": "search-type", "level": "type", "type": t, "letters": ["s"], "params": params,
} if read_methods[m]

type_interaction("POST", t, params, req) := {
	"interaction": "create", "level": "type", "type": t, "letters": ["c"], "params": params, "conditional": false,
} if not if_none_exist(req)

# Conditional create: the server runs the If-None-Exist search, whose hit or miss is observable.
type_interaction("POST", t, _, req) := {
	"interaction": "create", "level": "type", "type": t, "letters": ["c", "s"], "conditional": true,
	"params": cparams,
} if {
	cparams := query_params(if_none_exist(req))
}

# Conditional update, patch and delete: PUT/PATCH/DELETE [type]?[search parameters].
type_interaction(m, t, params, _) := object.union(instance_interaction(m), {
	"level": "type", "type": t, "params": params, "conditional": true,
	"letters": array.concat(instance_interaction(m).letters, ["s"]),
}) if {
	m in {"PUT", "PATCH", "DELETE"}
	count(params) > 0
}

# METADATA
# title: if_none_exist
# description: |
#   The search of a conditional create: the If-None-Exist header (any case of the name), a string
#   or a list of strings. Any non-empty value makes the create conditional; a value of another
#   kind, or two different searches, is an error (the policy cannot know which the server runs).
if_none_exist(req) := trim_prefix(v, "?") if {
	not if_none_exist_error(req)
	searches := if_none_exist_searches(req)
	count(searches) == 1
	some v in searches
}

if_none_exist_error(req) := "the If-None-Exist header must be a string or a list of strings" if {
	some value in if_none_exist_values(req)
	not header_value_ok(value)
} else := "the If-None-Exist header must hold one search, not several" if {
	count(if_none_exist_searches(req)) > 1
}

if_none_exist_values(req) := [value | some name, value in request_headers(req); lower(name) == "if-none-exist"]

if_none_exist_searches(req) := {v | some value in if_none_exist_values(req); some v in fhir.as_list(value); v != ""}

request_headers(req) := req.headers if is_object(req.headers)

request_headers(req) := {} if not fhir.object_member(req, "headers")

header_value_ok(v) if is_string(v)

header_value_ok(v) if {
	is_array(v)
	every x in v {
		is_string(x)
	}
}

# System search and history cover the types named by _type, or every type.
system_search_types(params) := types if {
	types := [t | some p in params; p.name == "_type"; some t in p.values]
	count(types) > 0
}

system_search_types(params) := ["*"] if {
	not any_param(params, "_type")
}

any_param(params, name) if {
	some p in params
	p.name == name
}

# --- Operations --------------------------------------------------------------------------

operation(m, op, level, t, id, params) := {
	"interaction": "operation", "operation": op, "level": level, "type": t, "id": id, "params": params,
	"letters": [],
} if {
	m in {"GET", "HEAD", "POST"}
	startswith(op, "$")
	count(op) >= 2
	trim(substring(op, 1, 1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == ""
	trim(substring(op, 1, -1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
