# Who a selector (`labels.rights[].who`, `btg.eligible[]`) matches: the verified claims of the
# token (client, user, roles, scopes).
package smart.label

import data.smart.config
import data.smart.grant
import data.smart.lib.fhir

claims := grant.claims

# METADATA
# title: who_matches
# description: |
#   A selector names who it applies to: {client_ids, roles, users, fhir_user_types, scopes,
#   claims}. Every key given must match (AND); inside a list any value may (OR). An empty
#   selector, or one with an unknown key (a typo must not widen access), matches nobody.
who_matches(sel) if {
	is_object(sel)
	count(sel) > 0
	every k, _ in sel {
		k in selector_keys
	}
	every k, v in sel {
		selector_part_matches(k, v)
	}
}

selector_keys := {"client_ids", "roles", "users", "fhir_user_types", "scopes", "claims"}

selector_part_matches("client_ids", v) if {
	is_array(v)
	client_id in v
}

selector_part_matches("roles", v) if {
	is_array(v)
	some r in v
	r in user_roles
}

selector_part_matches("users", v) if {
	is_array(v)
	some u in v
	u in user_ids
}

selector_part_matches("fhir_user_types", v) if {
	is_array(v)
	fhir_user_type in v
}

selector_part_matches("scopes", v) if {
	is_array(v)
	some s in v
	s in token_scopes
}

selector_part_matches("claims", v) if {
	is_object(v)
	count(v) > 0
	every path, want in v {
		claim_has(split(path, "."), want)
	}
}

claim_has(path, want) if object.get(claims, path, null) == want

claim_has(path, want) if {
	value := object.get(claims, path, null)
	is_array(value)
	want in value
}

client_id := claims.client_id if nonempty_string(claims.client_id)

user_ids := {v | some k in ["sub", "fhirUser"]; v := claims[k]; nonempty_string(v)}

user_present if count(user_ids) > 0

fhir_user_type := split(fhir_user_tail, "/")[0]

fhir_user_tail := claims.fhirUser if {
	nonempty_string(claims.fhirUser)
	not contains(claims.fhirUser, "://")
}

fhir_user_tail := substring(claims.fhirUser, count(claims.fhirUser) - count(tail), -1) if {
	nonempty_string(claims.fhirUser)
	contains(claims.fhirUser, "://")
	parts := split(claims.fhirUser, "/")
	tail := concat("/", [parts[count(parts) - 2], parts[count(parts) - 1]])
}

token_scopes := {s | some s in split(claims.scope, " "); s != ""} if is_string(claims.scope)

token_scopes := {s | some s in claims.scope; is_string(s)} if is_array(claims.scope)

token_scopes := set() if {
	not fhir.string_member(claims, "scope")
	not fhir.array_member(claims, "scope")
}

# Role values: strings as given; a Coding gives its code and system|code; a CodeableConcept
# gives those of each of its codings.
user_roles := {r | some path in config.label_role_claim_paths; some r in role_values(object.get(claims, path, null))}

role_values(v) := {v} if is_string(v)

role_values(v) := {r | some x in v; some r in role_item(x)} if is_array(v)

role_values(v) := role_item(v) if is_object(v)

role_values(v) := set() if {
	not is_string(v)
	not is_array(v)
	not is_object(v)
}

role_item(x) := {x} if is_string(x)

role_item(x) := {r | some c in x.coding; some r in coding_values(c)} if fhir.array_member(x, "coding")

role_item(x) := coding_values(x) if {
	is_object(x)
	not fhir.array_member(x, "coding")
}

role_item(x) := set() if {
	not is_string(x)
	not is_object(x)
}

coding_values(c) := {c.code, concat("|", [c.system, c.code])} if {
	is_string(c.code)
	is_string(c.system)
}

coding_values(c) := {c.code} if {
	is_string(c.code)
	not fhir.string_member(c, "system")
}

coding_values(c) := set() if not fhir.string_member(c, "code")

nonempty_string(s) if {
	is_string(s)
	trim_space(s) != ""
}
