# smart-authz — every task a person does is a target here.
# Tools are pinned and installed into .tools/ from registries (never downloaded as binaries).

SHELL := /bin/bash
OPA_VERSION := v1.20.2
TOOLS := $(CURDIR)/.tools
OPA := $(TOOLS)/bin/opa
NODE_BIN := $(CURDIR)/node_modules/.bin
SHARED ?= $(CURDIR)/../shared
VECTORS := $(SHARED)/vectors/spec-vectors.json
ENTRYPOINTS := -e smart/api/decision -e smart/api/scopes
REGO := $(shell find policies -name '*.rego' 2>/dev/null)
POLICY_DATA := $(shell find policies -name 'data.json' 2>/dev/null)

.PHONY: all tools deps generate policy build test test-rego test-host fmt fmt-check lint check serve bench parity fuzz soak clean

all: build

## Toolchain ---------------------------------------------------------------
tools: $(OPA)

$(OPA):
	@mkdir -p $(TOOLS)/bin
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
	@echo "built build/bundle.tar.gz (revision $$(node -e 'console.log(JSON.parse(require("fs").readFileSync("build/bundle/.manifest")).revision)'))"

policy: build/bundle.tar.gz

build: deps policy
	$(NODE_BIN)/tsc -p tsconfig.json

## Tests -------------------------------------------------------------------
fmt:
	$(OPA) fmt -w policies
	$(NODE_BIN)/prettier --write "src/**/*.ts" "test/**/*.ts" "scripts/**/*.mjs"

fmt-check: deps
	@test -z "$$($(OPA) fmt -l policies)" || { echo "opa fmt: these files need formatting:"; $(OPA) fmt -l policies; exit 1; }
	$(NODE_BIN)/prettier --check "src/**/*.ts" "test/**/*.ts" "scripts/**/*.mjs"

lint: deps
	$(OPA) check --strict policies
	$(NODE_BIN)/tsc -p tsconfig.test.json

test-rego: deps build/vectors/data.json
	$(OPA) test policies build/vectors --timeout 300s --coverage --format=json > build/coverage.json || { $(OPA) test policies build/vectors --timeout 300s -v | tail -40; exit 1; }
	@$(OPA) test policies build/vectors --timeout 300s | tail -1
	@node scripts/coverage-summary.mjs build/coverage.json

# The vectors are JSON arrays; OPA data must be an object, so the test target wraps them.
VECTOR_FILES := $(VECTORS) $(wildcard test/vectors/*.json)
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

## Cross-runtime parity, fuzzing, soak, benchmarks -----------------------
parity: build
	bash scripts/parity/run.sh

fuzz: build
	FUZZ_RUNS=$${FUZZ_RUNS:-100000} $(NODE_BIN)/vitest run --config test/fuzz/vitest.config.ts

soak: build
	node scripts/soak/run.mjs

bench: build
	node scripts/bench/run.mjs
