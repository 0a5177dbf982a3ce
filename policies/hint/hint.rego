# METADATA
# title: Scope hints
# description: |
#   Which scope a denial may name (progressive authorization, issue 15). The access rules propose
#   the scopes a request lacks (smart.access scope_missing: the token's context, the type, the
#   missing letters); this package turns a proposal into candidates, narrowest first, in the
#   syntax the client uses, and keeps only those the client may obtain: the client is registered
#   for them (data.clients, schemas/data/clients.schema.json). Whether a candidate would work is
#   decided by re-deciding the request with it (smart.api hints.rego), so every host agrees.
package smart.hint

import data.smart.config
import data.smart.grant
import data.smart.scope

# The client the token was issued to: `client_id` (RFC 9068), else `azp` (OpenID Connect).
client_id := grant.claims.client_id if is_string(grant.claims.client_id)

client_id := grant.claims.azp if {
	not is_string(grant.claims.client_id)
	is_string(grant.claims.azp)
}

registration := r if {
	r := data.clients.clients[client_id]
	is_object(r)
}

registered := [p |
	some s in object.get(registration, "scopes", [])
	p := scope.parse(s)
	p.kind == "resource"
]

# METADATA
# title: syntax
# description: |
#   The syntax a hint is written in: the registration's `scope_syntax`, else v1 when every
#   resource scope of the token is v1, else v2.
syntax := registered_syntax

syntax := "v1" if {
	not registered_syntax
	token_v1
}

syntax := "v2" if {
	not registered_syntax
	not token_v1
}

registered_syntax := s if {
	s := registration.scope_syntax
	s in {"v1", "v2"}
}

token_v1 if {
	parsed := [p | some t in grant.tokens; p := scope.parse(t); p.kind == "resource"]
	count(parsed) > 0
	every p in parsed {
		p.syntax == "v1"
	}
}

# METADATA
# title: candidates
# description: |
#   For the scopes a denial proposes (v2 strings, unconstrained), the sets of scopes that may be
#   named, narrowest first: for one proposed scope, first with each constraint of the token's own
#   grants on that type in that context (a client whose grants were constrained is asked for a
#   constrained scope), then without; for several (a chain through several types), all together.
#   Each set is written in the client's syntax and kept only when the client may obtain all of it.
candidates(proposed) := [set |
	some raw in raw_candidates(proposed)
	set := [render(c) | some c in raw]
	every s in set {
		obtainable(scope.parse(s))
	}
]

raw_candidates(proposed) := array.concat(constrained_variants(p), [[p]]) if {
	count(proposed) == 1
	p := scope.parse(proposed[0])
	p.kind == "resource"
} else := [[p | some s in proposed; p := scope.parse(s); p.kind == "resource"]]

# v1 scopes carry no constraints: then there is no constrained variant.
constrained_variants(p) := [] if syntax == "v1"

else := [[object.union(p, {"query": split(g.scopes[0], "?")[1]})] |
	some g in grant.grants_of(p.type)
	g.type == p.type
	g.context == p.context
	count(g.constraints) > 0
]

# METADATA
# title: render
# description: |
#   A candidate as a scope string: v2 letters in order (and the constraint's query as the token
#   wrote it); in v1, `read` for r and s, `write` for c, u and d, `*` for both (v1 cannot name
#   fewer: the narrowest v1 scope that covers the letters).
render(c) := concat("", [c.context, "/", c.type, ".", concat("", [l | some l in scope.v2_letters; l in c.permissions]), query_of(c)]) if {
	syntax == "v2"
}

render(c) := concat("", [c.context, "/", c.type, ".", v1_word(c.permissions)]) if syntax == "v1"

query_of(c) := concat("", ["?", c.query]) if c.query

else := ""

v1_word(letters) := "*" if {
	some l in letters
	l in {"r", "s"}
	some m in letters
	m in {"c", "u", "d"}
} else := "read" if {
	every l in letters {
		l in {"r", "s"}
	}
} else := "write"

# METADATA
# title: obtainable
# description: |
#   The client may obtain the scope: a registered scope in the same context, on its type or "*",
#   with every letter it needs, unconstrained or with exactly its constraints. A client without a
#   registration obtains nothing unless `outcome.hint_without_registration` is set.
obtainable(c) if {
	some r in registered
	r.context == c.context
	r.type in {c.type, "*"}
	every l in c.permissions {
		l in r.permissions
	}
	constraints_cover(r, c)
}

obtainable(_) if {
	not registration
	config.hint_without_registration == true
}

constraints_cover(r, _) if count(r.constraints) == 0

constraints_cover(r, c) if r.constraints == c.constraints
