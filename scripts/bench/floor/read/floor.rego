# METADATA
# title: Floor policy - a read
# description: |
#   The cheapest policy that still answers the benchmark's question (issue 14): a read is allowed,
#   one line. Compiled by the same pinned OPA and evaluated by the same host (PolicyEngine.decide)
#   on the same inputs as smart-authz's policy, it measures what any decision costs in this runtime
#   (JSON in and out, one opa_eval); smart-authz's figures are reported as ratios to it. The floor
#   of the other single requests too. Not part of the product: only scripts/bench/ builds it.
package smart.api

decision := {"decision": "allow", "reasons": []} if input.request.method == "GET"

# PolicyEngine requires both entrypoints of the contract.
scopes := {}
