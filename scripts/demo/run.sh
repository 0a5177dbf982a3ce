#!/usr/bin/env bash
# `make demo`: HAPI FHIR with the e2e data set, the enforcing proxy in front of it
# (examples/proxy-demo.yaml), DEMO tokens for two patients and a clinician, and curl lines to paste.
# Runs in the foreground until Ctrl-C; then stops the proxy and HAPI (both started here, by pid).
#
# Variables: FHIR_PORT (HAPI, default 18090), DEMO_PROXY_PORT (the proxy, default 18080),
# FHIR_JAVA_OPTS / FHIR_START_TIMEOUT (fhir-server/server.sh). Expects `make build fhir-server`
# and the generated data set (build/e2e/data), which `make demo` provides.
set -euo pipefail
cd "$(dirname "$0")/../.."

FHIR_PORT="${FHIR_PORT:-18090}"
DEMO_PROXY_PORT="${DEMO_PROXY_PORT:-18080}"
FHIR_BASE="http://127.0.0.1:${FHIR_PORT}/fhir"
PROXY_BASE="http://127.0.0.1:${DEMO_PROXY_PORT}/fhir"
RUN_DIR=build/demo
CONFIG=examples/proxy-demo.yaml
export FHIR_PORT FHIR_FILTER_ENABLED=true FHIR_RUN_DIR=build/fhir-server
mkdir -p "$RUN_DIR"

proxy_pid=""
stop() {
  trap - EXIT INT TERM
  echo
  echo "demo: stopping"
  if [ -n "$proxy_pid" ] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill "$proxy_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  bash fhir-server/server.sh stop || true
}
trap stop EXIT
trap 'exit 130' INT TERM

bash fhir-server/server.sh start
node test/e2e/data/load.mjs "$FHIR_BASE" --data build/e2e/data --allow-extra

SMART_AUTHZ_PROXY_CURSOR_KEY="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" \
  node dist/src/cli.js proxy --config "$CONFIG" --upstream "$FHIR_BASE" \
  --proxy-addr "127.0.0.1:${DEMO_PROXY_PORT}" >"$RUN_DIR/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$PROXY_BASE/metadata")" = 200 ] && break
  kill -0 "$proxy_pid" 2>/dev/null || { echo "demo: the proxy did not start:"; cat "$RUN_DIR/proxy.log"; exit 1; }
  sleep 0.2
done

token() { node dist/src/cli.js token "$@" 2>/dev/null; }
ALICE="$(token --scope 'patient/*.rs' --patient 123 --ttl 3600)"
BOB="$(token --scope 'patient/*.rs' --patient 999 --ttl 3600)"
DOCTOR="$(token --scope 'user/*.rs' --fhir-user Practitioner/prac-1 --ttl 3600)"

cat <<TEXT

smart-authz proxy demo: ${PROXY_BASE} -> HAPI FHIR ${FHIR_BASE} (logs: ${RUN_DIR}/proxy.log)
DEMO tokens (published key; valid one hour):

  export ALICE='${ALICE}'   # patient/*.rs, patient 123 (Alice Alpha)
  export BOB='${BOB}'   # patient/*.rs, patient 999 (Bob Beta)
  export DOCTOR='${DOCTOR}'   # user/*.rs, Practitioner/prac-1

Paste the exports, then try:

  curl -s -H "Authorization: Bearer \$ALICE" '${PROXY_BASE}/Patient/123'                 # Alice's record
  curl -s -H "Authorization: Bearer \$ALICE" '${PROXY_BASE}/Patient/999'                 # Bob's: 404, as if it did not exist
  curl -s -H "Authorization: Bearer \$ALICE" '${PROXY_BASE}/Observation?_count=5'        # Alice's observations only; follow link[].url (relation next)
  curl -s -H "Authorization: Bearer \$BOB"   '${PROXY_BASE}/Observation?_count=5'        # Bob's, never Alice's
  curl -s -H "Authorization: Bearer \$ALICE" '${PROXY_BASE}/Observation?patient=999'     # 403: another patient
  curl -s -H "Authorization: Bearer \$ALICE" '${PROXY_BASE}/Observation/obs-123-hiv'     # 404: labelled HIV, hidden
  curl -s -H "Authorization: Bearer \$DOCTOR" '${PROXY_BASE}/Patient?_count=10'          # every patient
  curl -s '${PROXY_BASE}/Observation'                                                    # 401: no token
  curl -s '${PROXY_BASE}/metadata'                                                       # public

Ctrl-C stops the proxy and HAPI.
TEXT
wait "$proxy_pid"
