# The FHIR R4 AuditEvents this package writes (after IHE Basic Audit Log Patterns).
package smart.label

import data.smart.config
import data.smart.grant
import data.smart.request

# METADATA
# title: audit_event
# description: |
#   A FHIR R4 AuditEvent after IHE BALP. Deterministic: no id, no clock; `recorded` is
#   input.now (the host fills it in when absent).
audit_event(kind, refs, overridden, outcome_code) := without_nulls({
	"resourceType": "AuditEvent",
	"type": event_type(kind),
	"subtype": event_subtype,
	"action": event_action(kind),
	"recorded": recorded,
	"outcome": outcome_text(outcome_code),
	"outcomeDesc": outcome_desc(kind),
	"purposeOfEvent": purpose_of_event(kind),
	"agent": agents(kind),
	"source": {
		"observer": {"display": config.audit_observer},
		"type": [coding(security_source_type_system, "6", "Security Server")],
	},
	"entity": entities(kind, refs, overridden),
})

# METADATA
# title: audit_obligation
# description: The obligation a host must carry out (append the event to the audit log).
audit_obligation(kind, refs, overridden, outcome_code) := {
	"type": "audit",
	"event": audit_event(kind, refs, overridden, outcome_code),
}

without_nulls(o) := {k: v | some k, v in o; v != null}

# Arrays keep the caller's order; sets are sorted.
ordered(x) := sort(x) if is_set(x)

else := x

dcm := "http://dicom.nema.org/resources/ontology/DCM"

security_source_type_system := "http://terminology.hl7.org/CodeSystem/security-source-type"

entity_type_system := "http://terminology.hl7.org/CodeSystem/audit-entity-type"

object_role_system := "http://terminology.hl7.org/CodeSystem/object-role"

coding(system, code, display) := {"system": system, "code": code, "display": display}

concept(system, code, display) := {"coding": [coding(system, code, display)]}

event_type("label-denied") := coding(dcm, "110113", "Security Alert")

event_type(kind) := coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "Restful Operation") if {
	kind != "label-denied"
}

interaction := c.interaction if {
	c := request.classify(input.request)
	is_string(c.interaction)
} else := ""

# FHIR R4 restful-interaction codes for smart.request's interactions.
restful_code := {
	"read": "read", "vread": "vread", "update": "update", "patch": "patch", "delete": "delete",
	"history-instance": "history-instance", "history-type": "history-type",
	"history-system": "history-system", "create": "create", "search-type": "search-type",
	"search-system": "search-system", "search-compartment": "search-type",
	"capabilities": "capabilities", "transaction": "transaction", "batch": "batch",
	"operation": "operation",
}

event_subtype := [coding("http://hl7.org/fhir/restful-interaction", restful_code[interaction], restful_code[interaction])] if {
	restful_code[interaction]
} else := null

action_of := {
	"read": "R", "vread": "R", "history-instance": "R", "history-type": "R",
	"history-system": "R", "search-type": "R", "search-system": "R",
	"search-compartment": "R", "capabilities": "R", "create": "C", "update": "U",
	"patch": "U", "delete": "D",
}

# BALP's authorization-decision pattern records the decision itself: action E (execute).
event_action("label-denied") := "E"

event_action(kind) := object.get(action_of, interaction, "E") if kind != "label-denied"

recorded := input.now if is_string(input.now)

else := null

outcome_text(c) := c if c in {"0", "4", "8", "12"}

else := format_int(c, 10) if c in {0, 4, 8, 12}

else := "8"

outcome_desc(kind) := concat("", [
	"denied by security-label policy (label-restricted); break-the-glass conditions not met: ",
	concat(", ", btg_missing),
]) if {
	kind == "label-denied"
	count(btg_missing) > 0
} else := "denied by security-label policy (label-restricted)" if {
	kind == "label-denied"
}

else := null

purpose_of_event(kind) := [{"coding": [btg.purpose_of_use]}] if {
	kind == "btg-access"
	btg
}

else := asserted_purpose_concepts if count(asserted_purpose_concepts) > 0

else := null

asserted_purpose_concepts := [{"coding": [purpose_coding(code)]} | some code in sort({p.code | some p in asserted_purposes})]

agents(kind) := array.concat(
	[client_agent(kind), system_agent(kind)],
	[a | user_present; a := user_agent],
)

# BALP Read: the client receives data (Destination Role ID), the server sends it (Source);
# on writes the roles swap. In the AuthZ pattern the client is an Application and the system
# agent is the authorizer (this decision service).
client_agent(kind) := {
	"type": client_agent_type(kind),
	"who": client_who,
	"requestor": client_is_requestor,
}

# Without an identified user, the client itself is the requestor (a backend service).
client_is_requestor := false if user_present

else := true

client_agent_type("label-denied") := concept(dcm, "110150", "Application")

client_agent_type(kind) := concept(dcm, "110152", "Destination Role ID") if {
	kind != "label-denied"
	event_action(kind) == "R"
}

client_agent_type(kind) := concept(dcm, "110153", "Source Role ID") if {
	kind != "label-denied"
	event_action(kind) != "R"
}

system_agent("label-denied") := {
	"type": concept("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "authserver", "authorization server"),
	"who": {"display": config.audit_observer},
	"requestor": false,
}

system_agent(kind) := {
	"type": server_agent_type(kind),
	"who": {"display": config.audit_server},
	"requestor": false,
} if {
	kind != "label-denied"
}

server_agent_type(kind) := concept(dcm, "110153", "Source Role ID") if event_action(kind) == "R"

server_agent_type(kind) := concept(dcm, "110152", "Destination Role ID") if event_action(kind) != "R"

client_who := {"identifier": {"value": client_id}} if client_id

else := {"display": "unidentified client"}

user_agent := without_nulls({
	"type": concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient"),
	"who": user_who,
	"requestor": true,
	"role": user_role_concepts,
	"policy": token_policy,
	"purposeOfUse": user_purposes,
})

user_who := without_nulls({
	"reference": fhir_user_reference,
	"identifier": sub_identifier,
})

fhir_user_reference := claims.fhirUser if nonempty_string(claims.fhirUser)

else := null

sub_identifier := {"value": claims.sub} if nonempty_string(claims.sub)

else := null

user_role_concepts := [{"text": r} | some r in sort(user_roles)] if count(user_roles) > 0

else := null

# BALP OAUTHaccessTokenUse: the token's jti, prefixed per RFC 3553.
token_policy := [concat("", ["urn:ietf:params:oauth:jti:", claims.jti])] if nonempty_string(claims.jti)

else := null

user_purposes := asserted_purpose_concepts if count(asserted_purpose_concepts) > 0

else := null

entities(kind, refs, overridden) := array.concat(
	array.concat(
		[data_entity(kind, ref, overridden) | some ref in ordered(refs); is_string(ref)],
		query_entities,
	),
	array.concat(patient_entities, transaction_entities),
)

data_entity(kind, ref, overridden) := without_nulls({
	"what": {"reference": ref},
	"type": coding(entity_type_system, "2", "System Object"),
	"role": coding(object_role_system, "4", "Domain Resource"),
	"securityLabel": security_label(overridden),
	"detail": btg_detail(kind),
})

security_label(overridden) := ordered(overridden) if count(overridden) > 0

else := null

btg_detail(kind) := [{"type": "btg-reason", "valueString": btg.reason}] if {
	kind == "btg-access"
	btg
}

else := null

# BALP Query: the query itself, base64 of the request URL.
query_entities := [{
	"type": coding(entity_type_system, "2", "System Object"),
	"role": coding(object_role_system, "24", "Query"),
	"query": base64.encode(input.request.url),
}] if {
	interaction in {"search-type", "search-system", "search-compartment", "history-type", "history-system"}
	is_string(input.request.url)
} else := []

patient_entities := [{
	"what": {"reference": concat("/", ["Patient", grant.patient_id])},
	"type": coding(entity_type_system, "1", "Person"),
	"role": coding(object_role_system, "1", "Patient"),
}] if {
	grant.patient_id
} else := []

# BALP: the X-Request-Id of the request, when the client sent one.
transaction_entities := [{
	"what": {"identifier": {"value": v}},
	"type": coding("https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "XrequestId", "X-Request-Id"),
}] if {
	v := header_values("x-request-id")[0]
	nonempty_string(v)
} else := []
