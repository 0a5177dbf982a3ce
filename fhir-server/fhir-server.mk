# A real HAPI FHIR R4 server (fhir-server/) and the synthetic data set (test/e2e/data/) for the
# end-to-end tests. Included from the Makefile; test/e2e/README.md explains the whole setup.
#
#   make fhir-server          build it (JDK 17 + Maven, installed from Debian if missing)
#   make fhir-server-start    start it in the background, wait for /fhir/metadata (FHIR_PORT, default 18090)
#   make fhir-server-stop     stop the server started above (idempotent)
#   make e2e-data             generate the data set and load it into the running server, verified
#   make e2e-hapi-smoke       start, load, check the ground truth against HAPI, stop (even on failure)
#
# Variables: FHIR_PORT, FHIR_FILTER_ENABLED (true|false), FHIR_JAVA_OPTS, FHIR_START_TIMEOUT.

FHIR_DIR := fhir-server
FHIR_PORT ?= 18090
FHIR_BASE := http://127.0.0.1:$(FHIR_PORT)/fhir
FHIR_FILTER_ENABLED ?= true
FHIR_JAVA_OPTS ?= -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
FHIR_START_TIMEOUT ?= 240
FHIR_CLASSPATH := $(FHIR_DIR)/target/classpath.txt
FHIR_SOURCES := $(FHIR_DIR)/pom.xml $(shell find $(FHIR_DIR)/src -name '*.java' 2>/dev/null)
FHIR_SERVER_ENV := FHIR_PORT=$(FHIR_PORT) FHIR_FILTER_ENABLED=$(FHIR_FILTER_ENABLED) \
  FHIR_JAVA_OPTS="$(FHIR_JAVA_OPTS)" FHIR_START_TIMEOUT=$(FHIR_START_TIMEOUT) FHIR_RUN_DIR=build/fhir-server
E2E_DATA := build/e2e/data

.PHONY: java-tools fhir-server fhir-server-start fhir-server-stop fhir-server-status e2e-data e2e-hapi-smoke

# JDK >= 17, Maven and curl from Debian; nothing happens when they are already there.
java-tools:
	@if command -v mvn >/dev/null && command -v curl >/dev/null && command -v javac >/dev/null \
	    && [ "$$(javac -version 2>&1 | sed -E 's/^javac ([0-9]+).*/\1/')" -ge 17 ] 2>/dev/null; then :; \
	else \
	  echo "installing openjdk-17-jdk-headless, maven and curl from Debian"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven curl; \
	fi

$(FHIR_CLASSPATH): $(FHIR_SOURCES) | java-tools
	cd $(FHIR_DIR) && mvn -B -q package
	@touch $@

fhir-server: $(FHIR_CLASSPATH)

fhir-server-start: fhir-server
	@$(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh start

fhir-server-stop:
	@$(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh stop

fhir-server-status:
	@$(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh status

# `make clean` removes build/ and with it the pid file: stop the server first (on FHIR_PORT).
clean: fhir-server-stop

$(E2E_DATA)/truth.json $(E2E_DATA)/transaction.json &: test/e2e/data/generate.mjs
	node test/e2e/data/generate.mjs --out $(E2E_DATA)

# Loads into the server on FHIR_PORT (started by fhir-server-start) and verifies what it holds.
e2e-data: $(E2E_DATA)/truth.json
	node test/e2e/data/load.mjs $(FHIR_BASE) --data $(E2E_DATA)

# Not part of `make test`: it needs a JVM and ~40 s. Stops the server even when a step fails.
e2e-hapi-smoke: fhir-server $(E2E_DATA)/truth.json node_modules/.installed
	@trap '$(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh stop' EXIT; \
	  $(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh start && \
	  node test/e2e/data/load.mjs $(FHIR_BASE) --data $(E2E_DATA) && \
	  $(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh status && \
	  FHIR_BASE=$(FHIR_BASE) FHIR_FILTER_ENABLED=$(FHIR_FILTER_ENABLED) E2E_DATA=$(E2E_DATA) \
	    $(NODE_BIN)/vitest run --config test/e2e/vitest.config.ts test/e2e/hapi-smoke.e2e.ts

# --- The enforcing proxy against HAPI (test/e2e/proxy.e2e.ts) -------------------------------------
# `make e2e` runs the proxy suite with every other suite (one HAPI, _filter on). This target runs it
# alone against a HAPI started with FHIR_FILTER_ENABLED (true|false): starts HAPI, loads the data
# set, runs the suite (which starts and stops its own proxies from dist/src/cli.js: A auto/primary,
# B single/response-filter, C single/primary, L Patient.link followed) and stops HAPI, also when a
# step fails. The comparison table is written to build/e2e/proxy/comparison-filter-<on|off>.md.
# PROXY_PORT_A/B/C/L fix the proxies' ports (default: free ones).
PROXY_FILTER_LABEL := $(if $(filter false,$(FHIR_FILTER_ENABLED)),off,on)

.PHONY: e2e-proxy e2e-proxy-all
e2e-proxy: build fhir-server $(E2E_DATA)/truth.json
	@trap '$(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh stop' EXIT; trap 'exit 130' INT TERM; \
	  $(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh start && \
	  node test/e2e/data/load.mjs $(FHIR_BASE) --data $(E2E_DATA) && \
	  FHIR_BASE=$(FHIR_BASE) FHIR_FILTER_ENABLED=$(FHIR_FILTER_ENABLED) E2E_DATA=$(E2E_DATA) \
	    E2E_REPORT=build/e2e/proxy/comparison-filter-$(PROXY_FILTER_LABEL).md \
	    $(NODE_BIN)/vitest run --config test/e2e/vitest.config.ts test/e2e/proxy.e2e.ts

# Both server modes, one after the other (HAPI is restarted in between: ~2 × its start time).
# Both modes always run; the target fails if either did.
e2e-proxy-all:
	@on=0; off=0; \
	$(MAKE) e2e-proxy FHIR_FILTER_ENABLED=true || on=$$?; \
	$(MAKE) e2e-proxy FHIR_FILTER_ENABLED=false || off=$$?; \
	echo "e2e-proxy: _filter on: $$([ $$on = 0 ] && echo passed || echo FAILED), _filter off: $$([ $$off = 0 ] && echo passed || echo FAILED)"; \
	[ $$on = 0 ] && [ $$off = 0 ]
