# METADATA
# title: Policy configuration
# description: |
#   Deployment choices the specifications leave open, read from data.config (the `policy:`
#   section of the host's YAML) with safe defaults. Every default is documented in the README.
package smart.config

default cfg := {}

cfg := data.config if is_object(data.config)

setting(path, fallback) := object.get(cfg, path, fallback)

array_setting(path, fallback) := v if {
	v := setting(path, fallback)
	is_array(v)
} else := fallback

number_setting(path, fallback) := v if {
	v := setting(path, fallback)
	is_number(v)
	v >= 0
} else := fallback

string_setting(path, fallback) := v if {
	v := setting(path, fallback)
	is_string(v)
} else := fallback

# Booleans that widen access are on only when configured as exactly `true`.
enabled(path) if setting(path, false) == true

# HTTP status for denials that depend on a stored instance (outside the compartment, outside a
# constraint, hidden by a label): 404 does not reveal that the resource exists (FHIR R4 security).
hidden_status := setting(["deny", "hidden_status"], 404)

# The OperationOutcome extension that names the scope that would allow a request. HL7 never
# published http://hl7.org/fhir/StructureDefinition/operationoutcome-required-scope; this URL is
# the project's own and can be replaced by configuration.
required_scope_extension_url := setting(
	["outcome", "required_scope_extension_url"],
	"https://smart-authz.dev/fhir/StructureDefinition/required-scope",
)

# A denial names a scope only when the client may obtain it (data.clients); a client without a
# registration gets no hint unless this is set.
hint_without_registration := setting(["outcome", "hint_without_registration"], false)

# Search parameters the policy does not know are denied: a server that ignores them could
# return more than the policy reasoned about.
unknown_search_parameters := setting(["search", "unknown_parameters"], "deny")

# R4 puts linked patients' records into the target's compartment; R5 does not. Default: R5's
# behaviour, i.e. Patient.link is not followed.
follow_patient_link := setting(["patient", "follow_patient_link"], false)

# METADATA
# title: base_urls
# description: |
#   This server's FHIR base URLs (`fhir.base_urls`, a list). An absolute reference names one of
#   this server's resources only when its base is listed (compared without a trailing slash, scheme
#   and host case-insensitive); any other absolute reference is another server's resource, so
#   `https://elsewhere/fhir/Patient/123` is not this server's patient 123. Default: none, i.e.
#   only relative references name this server's resources.
base_urls := [u | some u in setting(["fhir", "base_urls"], []); is_string(u)] if {
	is_array(setting(["fhir", "base_urls"], []))
} else := []

# METADATA
# title: shared_types
# description: |
#   Types outside the Patient compartment that a patient/ token may read (never write) when it
#   holds a scope for the type: by default every R4 type whose security category is business or
#   anonymous and that has no search parameter referencing a Patient (Medication, Organization,
#   Location, Substance, ValueSet, …; not Practitioner, Group, Device, Task).
shared_types := {t | some t in cfg.patient.shared_types} if is_array(cfg.patient.shared_types)

shared_types := object.keys(data.compartment.tables.default_shared_types) if not cfg.patient.shared_types

# t is a shared type: a lookup in the generated default table (scripts/generate-policy-tables.mjs;
# compartment_test.rego recomputes it), or in the configured list.
shared_type(t) if {
	is_array(cfg.patient.shared_types)
	some x in cfg.patient.shared_types
	x == t
}

shared_type(t) if {
	not cfg.patient.shared_types
	data.compartment.tables.default_shared_types[t]
}

# METADATA
# title: referenced_types
# description: |
#   Types a patient/ token may see when a resource it may see references them (a search's
#   `_include`), and read by id (see referenced_reads). Default: what a patient's record points to
#   for basic provenance and US Core (who performed or authored it, where, which medication).
#   Types in the Patient compartment or that reference a Patient are never "referenced": being
#   pointed to by the patient's data says nothing about whose they are (smart.access linked.rego).
referenced_types := {t | some t in setting(["patient", "referenced_types"], ["Organization", "Location", "Medication", "Practitioner", "PractitionerRole"])}

# `by-id`: a referenced type may also be read by id (read, vread), without a referencing resource
# in the response; `response-only`: only when a visible resource in the same response references it.
referenced_reads := setting(["patient", "referenced_reads"], "by-id")

# A Provenance whose every target is a resource the token may see in the same response is visible.
provenance_of_visible := setting(["patient", "provenance_of_visible"], true)

# METADATA
# title: operations
# description: |
#   FHIR operations a token may invoke and the permissions each needs. SMART defines none; an
#   operation not listed here is denied. `on` is the type the letters are needed on ("*" = every
#   type, "self" = the type in the URL); `contexts` limits which scope contexts may use it;
#   `returns: computed` says the response holds no stored resources (terminology results), so it
#   needs no response filtering; any other operation's response must be filtered.
operations := object.union(default_operations, setting(["operations"], {}))

default_operations := {
	"$everything": {"levels": ["instance"], "types": ["Patient"], "letters": ["r", "s"], "on": "*", "returns": "resources"},
	"$export": {"levels": ["system", "type", "instance"], "types": ["Patient", "Group"], "letters": ["r", "s"], "on": "*", "contexts": ["user", "system"], "returns": "resources"},
	"$lookup": {"levels": ["type"], "types": ["CodeSystem"], "letters": ["r"], "on": "self", "returns": "computed"},
	"$validate-code": {"levels": ["type", "instance"], "types": ["CodeSystem", "ValueSet"], "letters": ["r"], "on": "self", "returns": "computed"},
	"$subsumes": {"levels": ["type", "instance"], "types": ["CodeSystem"], "letters": ["r"], "on": "self", "returns": "computed"},
	"$expand": {"levels": ["type", "instance"], "types": ["ValueSet"], "letters": ["r"], "on": "self", "returns": "computed"},
	"$translate": {"levels": ["type", "instance"], "types": ["ConceptMap"], "letters": ["r"], "on": "self", "returns": "computed"},
}
