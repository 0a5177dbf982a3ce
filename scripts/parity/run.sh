#!/usr/bin/env bash
# Cross-runtime conformance: the same build/bundle/policy.wasm in every host must give the same
# decisions as OPA's topdown evaluator on the Rego in policies/. Run by `make parity` after
# `make build`; can be run alone once build/bundle/ exists.
#
#   PARITY_HOSTS="go node"   run only these hosts (the reference, topdown, always runs)
#   PARITY_BUNDLE=dir        bundle dir to test (default build/bundle)
#   PARITY_POLICY=dir        Rego dir for the reference (default policies; then it must match the bundle)
#   PARITY_FULL=1            give the slow hosts (PARITY_SLOW_HOSTS, default java-interp) the derived
#                            cases too; by default they get only the vector cases
#   PARITY_SELFTEST=0        skip the self-test (needs an OPA binary: $OPA or .tools/bin/opa)
#
# Hosts are built into build/parity/ (Go binary, Python venv) and hosts/java/target/, and rebuilt
# only when their sources or pins change. Results, logs and the table land in build/parity/results/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
OUT=$ROOT/build/parity
RES=$OUT/results
BUNDLE=${PARITY_BUNDLE:-$ROOT/build/bundle}
POLICY=${PARITY_POLICY:-$ROOT/policies}
HOSTS=${PARITY_HOSTS:-"go node java java-interp python"}
REFERENCE=topdown
HOST_TIMEOUT=${PARITY_HOST_TIMEOUT:-1800}

die() { echo "parity: $*" >&2; exit 2; }
[[ -f $BUNDLE/policy.wasm ]] || die "$BUNDLE/policy.wasm not found (run 'make build' first)"
[[ -d $POLICY ]] || die "$POLICY not found"
mkdir -p "$OUT/bin" "$RES"
rm -f "$RES"/*

# Snapshot the bundle and the Rego, so that a `make build` or an edit elsewhere in the tree during
# the run cannot mix two versions. The reference must evaluate the sources the wasm was built from:
# the Rego inside the bundle cannot serve, since `opa build -t wasm` strips the entrypoint rules
# (and comments) from the modules it packs. `make build` stamps the bundle revision with a hash of
# policies/ (every .rego, tests included, and data.json, in `find` order); when POLICY is the
# default, that hash is checked against the sources before and after they are copied.
SNAP=$OUT/snapshot
rm -rf "$SNAP" && mkdir -p "$SNAP"
cp -a "$BUNDLE" "$SNAP/bundle"
policy_hash() { (cd "$ROOT" && cat $(find policies -name '*.rego') $(find policies -name 'data.json') | sha256sum | cut -c1-12); }
revision=$(node -e 'try { console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).revision ?? "") } catch { console.log("") }' "$SNAP/bundle/.manifest")
if [[ -z ${PARITY_POLICY:-} && $revision =~ -([0-9a-f]{12})$ ]]; then
  before=$(policy_hash)
  cp -a "$POLICY" "$SNAP/policies"
  after=$(policy_hash)
  if [[ $before != "${BASH_REMATCH[1]}" || $after != "${BASH_REMATCH[1]}" ]]; then
    die "policies/ changed after build/bundle was built (bundle revision $revision, sources now $after); run 'make parity' again"
  fi
else
  cp -a "$POLICY" "$SNAP/policies"
fi
BUNDLE=$SNAP/bundle
POLICY=$SNAP/policies

wants() { [[ " $HOSTS " == *" $1 "* ]]; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Newest modification time among the given files (0 if none).
newest() { find "$@" -type f -printf '%T@\n' 2>/dev/null | sort -n | tail -1 || echo 0; }
stale() { # stale <target> <sources...>: true if target is missing or older than any source
  [[ -e $1 ]] || return 0
  local t s; t=$(stat -c %Y "$1"); s=$(newest "${@:2}")
  awk -v t="$t" -v s="${s:-0}" 'BEGIN { exit !(s > t) }'
}

# ---- build ----------------------------------------------------------------------------------------
build_go() {
  # The Go host is also the reference (--topdown), so it is always built.
  if stale "$OUT/bin/parity-go" hosts/go; then
    (cd hosts/go && GOFLAGS=-mod=readonly go build -o "$OUT/bin/parity-go" .)
  fi
}
build_java() {
  local stamp=hosts/java/target/.parity-built
  if stale "$stamp" hosts/java/pom.xml hosts/java/src; then
    mvn -B -q -f hosts/java/pom.xml compile
    touch "$stamp"
  fi
}
build_python() {
  local venv=$OUT/python-venv
  if ! cmp -s hosts/python/requirements.txt "$venv/.requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r hosts/python/requirements.txt
    cp hosts/python/requirements.txt "$venv/.requirements.txt"
  fi
}
build_node() {
  [[ -d node_modules/@open-policy-agent/opa-wasm ]] || die "node_modules missing (run 'make deps')"
}

echo "parity: building hosts"
build_one() { # build_one <name> <function>
  local t0; t0=$(now)
  if "$2" >"$RES/build-$1.log" 2>&1; then
    echo "  build $1: $(since "$t0")s"
  else
    echo "  build $1: FAILED after $(since "$t0")s"; sed 's/^/    /' "$RES/build-$1.log" | tail -30
    return 1
  fi
}
build_failed=()
build_one go build_go || die "cannot build the Go host, which is also the reference"
for h in node java python; do
  if wants "$h" || { [[ $h == java ]] && wants java-interp; }; then
    build_one "$h" "build_$h" || build_failed+=("$h")
  fi
done

# ---- cases ----------------------------------------------------------------------------------------
node scripts/parity/cases.mjs "$OUT/cases.json"
CASES=$OUT/cases.json

# ---- run --------------------------------------------------------------------------------------------
JAVA_CP="$ROOT/hosts/java/target/classes:$ROOT/hosts/java/target/lib/*"
host_cmd() { # host_cmd <host> [bundle dir]
  local b=${2:-$BUNDLE}
  case $1 in
    topdown) echo "$OUT/bin/parity-go --topdown $POLICY" ;;
    go) echo "$OUT/bin/parity-go $b" ;;
    node) echo "node hosts/node/host.mjs $b" ;;
    java) echo "java -cp $JAVA_CP smartauthz.ParityHost $b" ;;
    java-interp) echo "java -cp $JAVA_CP smartauthz.ParityHost --interpreter $b" ;;
    python) echo "$OUT/python-venv/bin/python hosts/python/host.py $b" ;;
    *) return 1 ;;
  esac
}

# ---- self-test: every wasm host really runs policy.wasm, and refuses missing builtins ----------------
# 1. A decoy module, compiled from a one-line policy, is put in a bundle dir next to the REAL bundle's
#    .rego files, data.json and .manifest: each host must answer with the decoy's result, so it
#    evaluated the wasm and not the Rego that `opa build -t wasm` also packs into the bundle.
# 2. A module that calls a non-native builtin (crypto.sha256) must make each host exit non-zero
#    naming that builtin.
selftest() {
  local opa=${OPA:-$ROOT/.tools/bin/opa} st=$OUT/selftest h cmd failed=0
  [[ -x $opa ]] || { echo "  self-test skipped: no OPA binary at $opa"; return 0; }
  rm -rf "$st" && mkdir -p "$st/decoy-src" "$st/builtin-src" "$st/decoy" "$st/builtin"
  cat >"$st/decoy-src/decoy.rego" <<'REGO'
package smart.api

decision := {"decoy": "policy.wasm", "method": input.request.method}

scopes := {"decoy": "policy.wasm", "scope": input.scope}
REGO
  cat >"$st/builtin-src/builtin.rego" <<'REGO'
package smart.api

decision := crypto.sha256(input.request.method)

scopes := input.scope
REGO
  for kind in decoy builtin; do
    "$opa" build -t wasm -e smart/api/decision -e smart/api/scopes -o "$st/$kind.tar.gz" "$st/$kind-src" >/dev/null
    tar -xzf "$st/$kind.tar.gz" -C "$st/$kind" /policy.wasm 2>/dev/null || tar -xzf "$st/$kind.tar.gz" -C "$st/$kind" policy.wasm
  done
  (cd "$BUNDLE" && tar -cf - --exclude=policy.wasm .) | tar -xf - -C "$st/decoy"   # real Rego, data, manifest
  node -e 'const c=require(process.argv[1]);const pick=(e)=>c.find((x)=>x.entrypoint===e);require("fs").writeFileSync(process.argv[2],JSON.stringify([pick("smart/api/decision"),pick("smart/api/scopes")].filter(Boolean)))' "$CASES" "$st/cases.json"
  for h in $HOSTS; do
    cmd=$(host_cmd "$h" "$st/decoy") || continue
    # shellcheck disable=SC2086
    if ! $cmd "$st/cases.json" "$st/$h.decoy.json" 2>"$st/$h.decoy.log" ||
      ! node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));process.exit(r.length>0&&r.every((o)=>o.result&&o.result.decoy==="policy.wasm")?0:1)' "$st/$h.decoy.json"; then
      echo "  self-test $h: did NOT evaluate policy.wasm (see $st/$h.decoy.*)"; failed=1
    fi
    cmd=$(host_cmd "$h" "$st/builtin")
    # shellcheck disable=SC2086
    if $cmd "$st/cases.json" "$st/$h.builtin.json" 2>"$st/$h.builtin.log" || ! grep -q 'crypto.sha256' "$st/$h.builtin.log"; then
      echo "  self-test $h: did NOT refuse a module needing crypto.sha256 (see $st/$h.builtin.log)"; failed=1
    fi
  done
  [[ $failed == 0 ]] && echo "  self-test: every host ran the decoy policy.wasm and refused the crypto.sha256 module"
  # 3. The reference itself: for one case per entrypoint, `opa eval` on the Rego gives what topdown gave.
  local n=0 id ep
  while read -r id ep; do
    node -e 'const c=require(process.argv[1]).find((x)=>x.id===process.argv[2]);process.stdout.write(JSON.stringify(c.input))' "$CASES" "$id" |
      "$opa" eval --format json -d "$POLICY" --ignore '*_test.rego' --stdin-input "data.${ep//\//.}" >"$st/opa-eval.json" 2>"$st/opa-eval.log" || true
    if node -e '
      const fs = require("fs");
      const sort = (v) => Array.isArray(v) ? v.map(sort) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])])) : v;
      const cli = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).result?.[0]?.expressions?.[0]?.value;
      const ref = JSON.parse(fs.readFileSync(process.argv[2], "utf8")).find((o) => o.id === process.argv[3])?.result;
      process.exit(JSON.stringify(sort(cli)) === JSON.stringify(sort(ref)) && cli !== undefined ? 0 : 1);
    ' "$st/opa-eval.json" "$RES/$REFERENCE.json" "$id"; then n=$((n + 1)); else
      echo "  self-test: opa eval and the $REFERENCE reference differ on $id (see $st/opa-eval.*)"; failed=1
    fi
  done < <(node -e 'const c=require(process.argv[1]);for(const e of new Set(c.map((x)=>x.entrypoint)))console.log(c.find((x)=>x.entrypoint===e).id,e)' "$CASES")
  [[ $failed == 0 ]] && echo "  self-test: opa eval agrees with the $REFERENCE reference on $n cases"
  return $failed
}

# Slow hosts get the cases without the derived ones (ids "x:..."), unless PARITY_FULL=1.
SLOW_HOSTS=${PARITY_SLOW_HOSTS:-java-interp}
node -e 'const fs=require("fs");fs.writeFileSync(process.argv[2],JSON.stringify(JSON.parse(fs.readFileSync(process.argv[1],"utf8")).filter((c)=>!c.id.startsWith("x:"))))' "$CASES" "$OUT/cases-core.json"

echo "parity: running $REFERENCE (reference) and $HOSTS on $(basename "$CASES")"
run_host() {
  local h=$1 cmd t0 rc=0 cases=$CASES
  if [[ ${PARITY_FULL:-0} != 1 && " $SLOW_HOSTS " == *" $h "* ]]; then
    cases=$OUT/cases-core.json
    echo "$cases" >"$RES/$h.cases"
  fi
  cmd=$(host_cmd "$h") || { echo "unknown host $h" >"$RES/$h.log"; echo "2 0" >"$RES/$h.status"; return; }
  if [[ " ${build_failed[*]} " == *" ${h%-interp} "* ]]; then
    echo "build failed" >"$RES/$h.log"; echo "3 0" >"$RES/$h.status"; return
  fi
  t0=$(now)
  # shellcheck disable=SC2086 # cmd is a word list we built ourselves
  timeout "$HOST_TIMEOUT" $cmd "$cases" "$RES/$h.json" 2>"$RES/$h.log" || rc=$?
  echo "$rc $(since "$t0")" >"$RES/$h.status"
  if [[ $rc != 0 ]]; then rm -f "$RES/$h.json"; fi
}
for h in $REFERENCE $HOSTS; do run_host "$h"; done

echo
rc=0
node scripts/parity/compare.mjs "$CASES" "$RES" "$REFERENCE" $HOSTS || rc=$?
if [[ ${PARITY_SELFTEST:-1} != 0 ]]; then
  echo; echo "parity: self-test"
  selftest || rc=1
fi
exit $rc
