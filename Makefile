# smart-authz — every task a person does is a target here.
# Tools are pinned and installed into .tools/ from registries (never downloaded as binaries).

SHELL := /bin/bash
OPA_VERSION := v1.20.2
TOOLS := $(CURDIR)/.tools
OPA := $(TOOLS)/bin/opa
NODE_BIN := $(CURDIR)/node_modules/.bin
ENTRYPOINTS := -e smart/api/decision -e smart/api/scopes
REGO := $(shell find policies -name '*.rego' 2>/dev/null)
POLICY_DATA := $(shell find policies -name 'data.json' 2>/dev/null)

# A recipe that fails leaves no half-made target behind.
.DELETE_ON_ERROR:

.PHONY: all tools deps generate policy build test test-rego test-host fmt fmt-check lint check serve bench bench-quick bench-baseline bench-docs parity fuzz soak clean

all: build

## Toolchain ---------------------------------------------------------------
tools: $(OPA)

$(OPA):
	@mkdir -p $(TOOLS)/bin
	@echo "installing OPA $(OPA_VERSION) into .tools/bin with go install (a few minutes the first time: Go downloads and compiles it)"
	GOBIN=$(TOOLS)/bin CGO_ENABLED=1 go install -tags opa_wasm github.com/open-policy-agent/opa@$(OPA_VERSION)
	@$(OPA) version | head -1

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: tools node_modules/.installed

## Generated FHIR data (from a pinned npm package) ------------------------
generate: node_modules/.installed
	node scripts/generate-fhir-data.mjs

## Policy ------------------------------------------------------------------
build/bundle.tar.gz: $(OPA) $(REGO) $(POLICY_DATA)
	@mkdir -p build
	$(OPA) build -t wasm $(ENTRYPOINTS) --ignore '*_test.rego' \
	  --revision "$$(git rev-parse --short HEAD 2>/dev/null || echo dev)-$$(cat $(REGO) $(POLICY_DATA) | sha256sum | cut -c1-12)" \
	  -o build/bundle.tar.gz policies
	@rm -rf build/bundle && mkdir -p build/bundle && tar -xzf build/bundle.tar.gz -C build/bundle 2>/dev/null
	@node scripts/build-info.mjs $(OPA)

policy: build/bundle.tar.gz

# The host is compiled again only when a source changed (dist/.built is the stamp).
TS_SOURCES := $(shell find src -name '*.ts' 2>/dev/null)
dist/.built: $(TS_SOURCES) tsconfig.json node_modules/.installed
	$(NODE_BIN)/tsc -p tsconfig.json
	@touch $@

build: deps policy dist/.built

## Tests -------------------------------------------------------------------
fmt:
	$(OPA) fmt -w policies
	$(NODE_BIN)/prettier --write "src/**/*.ts" "test/**/*.ts" "scripts/**/*.mjs"

fmt-check: deps
	@test -z "$$($(OPA) fmt -l policies)" || { echo "opa fmt: these files need formatting:"; $(OPA) fmt -l policies; exit 1; }
	$(NODE_BIN)/prettier --check "src/**/*.ts" "test/**/*.ts" "scripts/**/*.mjs"

lint: deps
	$(OPA) check --strict policies
	node scripts/generate-policy-tables.mjs --check
	$(NODE_BIN)/tsc -p tsconfig.test.json

# One run of the Rego tests, with coverage; only when it fails is it run again, verbosely, to show
# which tests failed.
test-rego: deps build/vectors/data.json
	@echo "opa test: policies/**/*_test.rego and the conformance vectors, with coverage (about a minute)"
	@$(OPA) test policies build/vectors --timeout 300s --coverage --format=json > build/coverage.json || { $(OPA) test policies build/vectors --timeout 300s -v | grep -v '^ *PASS' | tail -60; exit 1; }
	@echo "opa test: all tests passed"
	@node scripts/coverage-summary.mjs build/coverage.json

# The vectors (test/vectors/README.md) are JSON arrays; OPA data must be an object, so the test
# target wraps them.
VECTOR_FILES := $(wildcard test/vectors/*.json test/vectors/public/*.json)
build/vectors/data.json: $(VECTOR_FILES) scripts/wrap-vectors.mjs
	node scripts/wrap-vectors.mjs

test-host: build
	$(NODE_BIN)/vitest run

test: fmt-check lint test-rego test-host

check: test

## Run ---------------------------------------------------------------------
serve: build
	node dist/src/cli.js serve $(ARGS)

clean:
	rm -rf build dist

## Real FHIR server (HAPI) and end-to-end data: fhir-server/fhir-server.mk --
include fhir-server/fhir-server.mk

## End-to-end suites against HAPI (make e2e, make nginx-tools): test/e2e/e2e.mk
include test/e2e/e2e.mk

## Cross-runtime parity, fuzzing, soak, benchmarks -----------------------
parity: build
	bash scripts/parity/run.sh

fuzz: build
	FUZZ_RUNS=$${FUZZ_RUNS:-100000} $(NODE_BIN)/vitest run --config test/fuzz/vitest.config.ts

soak: build
	node scripts/soak/run.mjs

# The compiled host for the benchmarks, rebuilt only when a source changed.
DIST_STAMP := dist/.tsc-stamp
$(DIST_STAMP): $(shell find src -name '*.ts' 2>/dev/null) tsconfig.json
	$(NODE_BIN)/tsc -p tsconfig.json
	@touch $@

# Benchmarks (docs/benchmarks.md): results go to build/bench/ only; `make bench-docs` copies the
# tables of the last full run into docs/benchmarks.md.
bench: build
	node scripts/bench/run.mjs

# The regression gate: in-process ratios to the floor policies against scripts/bench/baseline.json.
bench-quick: policy $(DIST_STAMP)
	BENCH_QUICK=1 node scripts/bench/run.mjs --check

# Rewrites scripts/bench/baseline.json from three quick runs (per ratio, the median).
bench-baseline: policy $(DIST_STAMP)
	@for i in 1 2 3; do BENCH_QUICK=1 node scripts/bench/run.mjs >/dev/null && cp build/bench/quick.json build/bench/baseline-run-$$i.json || exit 1; done
	node scripts/bench/check.mjs --update build/bench/baseline-run-1.json build/bench/baseline-run-2.json build/bench/baseline-run-3.json

bench-docs:
	node scripts/bench/report.mjs --docs

