# End-to-end orchestration (included from the Makefile; test/e2e/README.md explains the setup).
#
#   make e2e           build what is needed, start HAPI (_filter on), load the data set, run every
#                      test/e2e/**/*.e2e.ts suite, stop HAPI by its pid (also on failure or Ctrl-C)
#                      and print the wall time. A new suite runs by being a *.e2e.ts file there.
#   make nginx-tools   Debian's nginx (with auth_request), installed only when missing
#
# Variables: FHIR_PORT (HAPI's port, default 18090), E2E_FHIR_START_TIMEOUT (seconds HAPI may take
# to answer /metadata; default 900: it took 359 s on this workplace's loaded 2-core machine),
# E2E_BUNDLE (the policy bundle the suites' sidecars load; default build/bundle.tar.gz),
# E2E_ARGS (extra vitest arguments, e.g. a file or -t 'name'), NGINX (the nginx binary).

NGINX ?= nginx
E2E_FHIR_START_TIMEOUT ?= 900
E2E_ENV := FHIR_BASE=$(FHIR_BASE) FHIR_FILTER_ENABLED=true E2E_DATA=$(E2E_DATA) NGINX=$(NGINX) \
  $(if $(E2E_BUNDLE),E2E_BUNDLE=$(E2E_BUNDLE))

.PHONY: nginx-tools e2e e2e-run

# nginx from Debian; nothing happens when an nginx with auth_request is already there. (Debian's
# package would start the system nginx on port 80 where services may start; containers' policy-rc.d
# prevents it. The examples never use it: they run their own nginx process with -p/-c.)
nginx-tools:
	@if command -v $(NGINX) >/dev/null && $(NGINX) -V 2>&1 | grep -q -- '--with-http_auth_request_module'; then :; \
	else \
	  echo "installing nginx from Debian"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx; \
	fi

e2e:
	@t0=$$(date +%s); rc=0; \
	$(MAKE) --no-print-directory e2e-run || rc=$$?; \
	t=$$(( $$(date +%s) - t0 )); \
	echo "e2e: $$( [ $$rc -eq 0 ] && echo passed || echo FAILED ) in $$(( t / 60 )) min $$(( t % 60 )) s wall time"; \
	exit $$rc

# HAPI runs in the background while the suites run; the trap stops it by its pid file whatever
# happens (a failing step, Ctrl-C, SIGTERM). Processes the suites start are theirs to stop (and
# test/e2e/global-teardown.ts stops any a crashed suite left).
e2e-run: build fhir-server nginx-tools $(E2E_DATA)/truth.json node_modules/.installed
	@trap '$(FHIR_SERVER_ENV) bash $(FHIR_DIR)/server.sh stop' EXIT; trap 'exit 130' INT TERM; \
	  $(FHIR_SERVER_ENV) FHIR_FILTER_ENABLED=true FHIR_START_TIMEOUT=$(E2E_FHIR_START_TIMEOUT) \
	    bash $(FHIR_DIR)/server.sh start && \
	  node test/e2e/data/load.mjs $(FHIR_BASE) --data $(E2E_DATA) && \
	  $(E2E_ENV) $(NODE_BIN)/vitest run --config test/e2e/vitest.config.ts $(E2E_ARGS)
