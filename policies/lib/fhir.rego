# METADATA
# title: FHIR element access
# description: |
#   Reads values out of FHIR JSON resources by element path (as generated from the official
#   SearchParameter expressions), compares references with a patient, and matches token search
#   values against Coding, CodeableConcept, Identifier and code elements (FHIR R4 search, "token").
package smart.lib.fhir

import data.smart.config
import data.smart.lib.text

# The FHIR id grammar: [A-Za-z0-9\-\.]{1,64}.
valid_id(id) if {
	is_string(id)
	count(id) >= 1
	count(id) <= 64
	trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") == ""
}

# A resource type name of the configured FHIR version.
resource_type(t) if data.fhir.r4.resource_types[t]

as_list(x) := x if is_array(x)

as_list(x) := [x] if not is_array(x)

# One step down an element path: every value of `key` in every object node, arrays flattened.
step(nodes, key) := [v | some n in nodes; is_object(n); some v in as_list(object.get(n, key, []))]

# METADATA
# title: values_at
# description: |
#   All values at an element path (an array of element names, at most 6 deep).
values_at(node, path) := step([node], path[0]) if count(path) == 1

values_at(node, path) := step(step([node], path[0]), path[1]) if count(path) == 2

values_at(node, path) := step(step(step([node], path[0]), path[1]), path[2]) if count(path) == 3

values_at(node, path) := step(step(step(step([node], path[0]), path[1]), path[2]), path[3]) if count(path) == 4

values_at(node, path) := step(step(step(step(step([node], path[0]), path[1]), path[2]), path[3]), path[4]) if {
	count(path) == 5
}

values_at(node, path) := v if {
	count(path) == 6
	v := step(step(step(step(step(step([node], path[0]), path[1]), path[2]), path[3]), path[4]), path[5])
}

# METADATA
# title: reference_names_patient
# description: |
#   A reference string names this server's Patient/<id>: relative ("Patient/123"), versioned
#   ("Patient/123/_history/2") or absolute on one of this server's base URLs (config
#   `fhir.base_urls`). Another server's Patient/123 is another person; contained ("#p1") and
#   bundle-local ("urn:uuid:…") references never name one; nor do look-alikes.
#   The common spelling, exactly "Patient/<id>", is recognised by one comparison (the Bundle
#   filter asks this for every reference of every entry).
reference_names_patient(ref, id) if {
	ref == concat("/", ["Patient", id])
	not contains(id, "/")
} else if reference_patient_id(ref) == id

reference_patient_id(ref) := t.id if {
	t := reference_target(ref)
	t.type == "Patient"
}

# METADATA
# title: reference_target
# description: |
#   The resource of THIS server a literal reference names, {"type", "id"}: relative, versioned, or
#   absolute with a base listed in `fhir.base_urls`. Undefined for anything else.
reference_target(ref) := target if {
	is_string(ref)
	not contains(ref, "://")
	not startswith(ref, "urn:")
	not startswith(ref, "#")
	not startswith(ref, "/")
	target := literal_target(split(ref, "/"))
}

reference_target(ref) := {"type": a.type, "id": a.id} if {
	a := absolute_reference(ref)
	a.base in local_bases
}

# An absolute reference to a resource on ANOTHER server (its base is not one of ours).
foreign_reference(ref) := {"type": a.type, "id": a.id} if {
	a := absolute_reference(ref)
	not a.base in local_bases
}

literal_target(parts) := {"type": parts[0], "id": parts[1]} if {
	resource_type(parts[0])
	valid_id(parts[1])
	reference_suffix_ok(parts)
}

# http(s)://host/path/Type/id(/_history/vid), split into its (normalized) base and target.
# No regular expression: one is compiled on every evaluation in WASM, which costs more than a
# whole read decision.
absolute_reference(ref) := object.union(literal_target(tail), {"base": normalized_base(base)}) if {
	is_string(ref)
	lower(substring(ref, 0, indexof(ref, "://"))) in {"http", "https"}
	not contains(ref, "?")
	not contains(ref, "#")
	segments := split(ref, "/")
	segments[2] != ""
	n := count(segments) - tail_length(segments)
	n >= 3
	tail := array.slice(segments, n, count(segments))
	base := concat("/", array.slice(segments, 0, n))
}

tail_length(segments) := 4 if segments[count(segments) - 2] == "_history"

tail_length(segments) := 2 if segments[count(segments) - 2] != "_history"

# This server's FHIR base URLs, compared without a trailing slash, scheme and host in lower case.
local_bases := {normalized_base(u) | some u in config.base_urls; contains(u, "://")}

normalized_base(url) := concat("", [lower(scheme), "://", lower(host), trim_right(path, "/")]) if {
	i := indexof(url, "://")
	scheme := substring(url, 0, i)
	rest := substring(url, i + 3, -1)
	host := split(rest, "/")[0]
	path := substring(rest, count(host), -1)
}

reference_suffix_ok(parts) if count(parts) == 2

reference_suffix_ok(parts) if {
	count(parts) == 4
	parts[2] == "_history"
	valid_id(parts[3])
}

# The reference strings found at a path; a Reference object carries one in `reference`.
references_at(resource, path) := [r | some v in values_at(resource, path); r := reference_string(v)]

reference_string(v) := v.reference if {
	is_object(v)
	is_string(v.reference)
}

# METADATA
# title: token_matches
# description: |
#   An element matches a token search value: `[system]|[code]`, `|[code]` (no system),
#   `[system]|` (any code) or `[code]` (any system). Codes also match Identifier.value and
#   plain code/string elements.
token_matches(element, value) if {
	some coding in codings(element)
	coding_matches(coding, token_parts(value))
}

token_parts(value) := {"system": substring(value, 0, i), "code": substring(value, i + 1, -1)} if {
	i := indexof(value, "|")
	i >= 0
}

token_parts(value) := {"code": value} if indexof(value, "|") < 0

coding_matches(coding, want) if {
	not want.system
	coding.code == want.code
}

coding_matches(coding, want) if {
	want.system == ""
	coding.code == want.code
	not coding.system
}

coding_matches(coding, want) if {
	want.system != ""
	want.code != ""
	coding.system == want.system
	coding.code == want.code
}

coding_matches(coding, want) if {
	want.system != ""
	want.code == ""
	coding.system == want.system
}

# Codings of an element: a CodeableConcept's codings, a Coding, an Identifier (value as code),
# or a primitive code/string/boolean.
codings(element) := [c | some x in element.coding; c := normalized_coding(x)] if {
	is_object(element)
	is_array(element.coding)
}

codings(element) := [normalized_coding(element)] if {
	is_object(element)
	not array_member(element, "coding")
}

codings(element) := [{"code": element}] if is_string(element)

codings(element) := [{"code": format_bool(element)}] if is_boolean(element)

format_bool(true) := "true"

format_bool(false) := "false"

normalized_coding(x) := object.union(object.filter(x, ["system"]), {"code": code}) if {
	is_object(x)
	code := coding_code(x)
}

normalized_coding(x) := object.filter(x, ["system"]) if {
	is_object(x)
	not coding_code(x)
}

coding_code(x) := x.code if is_string(x.code)

coding_code(x) := x.value if {
	not string_member(x, "code")
	is_string(x.value)
}

# Percent-decoding and splitting of a raw query value, kept here for callers that need both.
decoded_values(raw) := text.fhir_values(decoded) if decoded := text.percent_decode(replace(raw, "+", " "))

# Type tests on an object member that may be absent. (OPA evaluates a reference argument of a
# call before a `not`, so `not is_string(x.k)` is undefined, not true, when x.k is absent.)
string_member(x, k) if is_string(x[k])

object_member(x, k) if is_object(x[k])

array_member(x, k) if is_array(x[k])
