#!/usr/bin/env bash
# Runs the NGINX gateway example in the foreground as an ordinary process (stop it with Ctrl-C, or
# SIGQUIT/SIGTERM to the pid it prints). Renders nginx.conf.template into NGINX_RUN_DIR and execs
# nginx there, so the pid is NGINX's master process and nothing outside NGINX_RUN_DIR is written.
# `run.sh -t` renders and checks the configuration (nginx -t) and exits.
#
# Environment (defaults in brackets):
#   NGINX_LISTEN    [127.0.0.1:8080]   where NGINX listens
#   SIDECAR_ADDR    [127.0.0.1:8282]   `smart-authz serve` (config with server.fhir_base_path: /fhir)
#   FHIR_ADDR       [127.0.0.1:18090]  the FHIR server, base /fhir (make fhir-server-start)
#   NGINX_RUN_DIR   [build/nginx/<port>]  pid file, logs, temp files, the rendered config
#   NGINX           [nginx]            the binary (`make nginx-tools` installs Debian's)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
listen=${NGINX_LISTEN:-127.0.0.1:8080}
sidecar=${SIDECAR_ADDR:-127.0.0.1:8282}
fhir=${FHIR_ADDR:-127.0.0.1:18090}
run_dir=${NGINX_RUN_DIR:-build/nginx/${listen##*:}}
nginx=${NGINX:-nginx}

die() { echo "nginx example: $*" >&2; exit 2; }

addr='^[A-Za-z0-9.-]+:[0-9]{1,5}$'
[[ $listen =~ $addr ]] || die "NGINX_LISTEN must be host:port, got '$listen'"
[[ $sidecar =~ $addr ]] || die "SIDECAR_ADDR must be host:port, got '$sidecar'"
[[ $fhir =~ $addr ]] || die "FHIR_ADDR must be host:port, got '$fhir'"
command -v "$nginx" >/dev/null || die "'$nginx' not found: run 'make nginx-tools' (Debian's nginx)"

run_dir=$(realpath -m -- "$run_dir")
[[ $run_dir =~ ^[A-Za-z0-9._/+:@-]+$ ]] || die "NGINX_RUN_DIR may hold only letters, digits and ._/+:@- (it goes into nginx.conf): $run_dir"
mkdir -p "$run_dir"

sed -e "s|@LISTEN@|$listen|g" -e "s|@SIDECAR@|$sidecar|g" -e "s|@FHIR@|$fhir|g" -e "s|@RUN_DIR@|$run_dir|g" \
  "$here/nginx.conf.template" >"$run_dir/nginx.conf"

if [[ ${1:-} == -t ]]; then
  exec "$nginx" -t -q -p "$run_dir" -c "$run_dir/nginx.conf" -e "$run_dir/error.log"
fi
[[ $# -eq 0 ]] || die "usage: run.sh [-t]"

echo "nginx example: http://$listen/fhir -> smart-authz $sidecar -> FHIR http://$fhir/fhir (pid $$, logs in $run_dir)" >&2
exec "$nginx" -p "$run_dir" -c "$run_dir/nginx.conf" -e "$run_dir/error.log"
