#!/usr/bin/env bash
# Start or stop the HAPI FHIR test server (see fhir-server.mk; normally called through make).
#
#   fhir-server/server.sh start   # background JVM; waits until /fhir/metadata answers 200
#   fhir-server/server.sh stop    # stops the server this script started (by its pid file)
#   fhir-server/server.sh status
#
# Environment (defaults in brackets): FHIR_PORT [18090], FHIR_FILTER_ENABLED [true],
# FHIR_JAVA_OPTS [-Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC], FHIR_START_TIMEOUT seconds
# [240], FHIR_RUN_DIR [build/fhir-server]. One server per port: pid file and log are
# $FHIR_RUN_DIR/<port>.pid and $FHIR_RUN_DIR/<port>.log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${FHIR_PORT:-18090}
filter=${FHIR_FILTER_ENABLED:-true}
java_opts=${FHIR_JAVA_OPTS:--Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC}
timeout=${FHIR_START_TIMEOUT:-240}
run_dir=${FHIR_RUN_DIR:-build/fhir-server}
main=smartauthz.fhirserver.FhirServer
pid_file=$run_dir/$port.pid
log_file=$run_dir/$port.log
base=http://127.0.0.1:$port/fhir

die() { echo "fhir-server: $*" >&2; exit 1; }

[[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || die "FHIR_PORT must be a port number, got '$port'"
[[ $timeout =~ ^[0-9]+$ ]] || die "FHIR_START_TIMEOUT must be whole seconds, got '$timeout'"

# The pid in the pid file, if that process is still our server (a reused pid is not ours).
running_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$main" || return 1
  echo "$pid"
}

answers() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/metadata" 2>/dev/null | grep -qx 200; }

rss_mb() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo '?'; }

start() {
  local pid
  if pid=$(running_pid); then
    die "already running on port $port (pid $pid, log $log_file); run 'make fhir-server-stop FHIR_PORT=$port' first"
  fi
  rm -f "$pid_file"
  answers && die "something else already answers on $base; choose another FHIR_PORT"
  local cp_file=$here/target/classpath.txt
  [[ -s $cp_file && -d $here/target/classes ]] || die "not built: run 'make fhir-server' first"
  mkdir -p "$run_dir"
  # shellcheck disable=SC2086 # FHIR_JAVA_OPTS is a list of flags
  FHIR_PORT=$port FHIR_FILTER_ENABLED=$filter \
    nohup java $java_opts -cp "$here/target/classes:$(<"$cp_file")" "$main" >"$log_file" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pid_file"
  local t0=$SECONDS
  while ! answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pid_file"
      echo "fhir-server: the server exited during startup; last lines of $log_file:" >&2
      tail -n 40 "$log_file" >&2
      exit 1
    fi
    if ((SECONDS - t0 >= timeout)); then
      echo "fhir-server: $base/metadata did not answer 200 within ${timeout}s; last lines of $log_file:" >&2
      tail -n 40 "$log_file" >&2
      stop >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "fhir-server: up at $base after $((SECONDS - t0))s (pid $pid, RSS $(rss_mb "$pid") MB, _filter $filter, log $log_file)"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    [[ -f $pid_file ]] && echo "fhir-server: no server on port $port (removing stale $pid_file)"
    rm -f "$pid_file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "fhir-server: pid $pid ignored SIGTERM for 30s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$pid_file"
  echo "fhir-server: stopped (port $port, pid $pid)"
}

status() {
  local pid
  if pid=$(running_pid); then
    if answers; then echo "fhir-server: running at $base (pid $pid, RSS $(rss_mb "$pid") MB)"; else echo "fhir-server: pid $pid alive but $base/metadata does not answer 200"; exit 1; fi
  else
    echo "fhir-server: not running on port $port"
    exit 1
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac
