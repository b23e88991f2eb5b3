# sluice: every target does one job. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | cksum | cut -d' ' -f1)

# Terraform: the provider comes from a local filesystem mirror (no registry access here). The default is
# where this project's machines keep it; point TF_PLUGIN_MIRROR elsewhere on yours.
TF_PLUGIN_MIRROR ?= /opt/tf-plugins
ENV ?= dev
PORT ?= 8080
FUZZ_RUNS ?= 5
export TF_PLUGIN_MIRROR ENV PORT

.PHONY: help venv test lint unit integration system tooling tf-check run demo build preflight plan deploy destroy deploy-local \
	bench cost loadtest loadtest-concurrency loadtest-tenants loadtest-smoke clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv with the pinned runtime and dev dependencies

test: lint ## install what is needed, then lint, the whole suite, the infrastructure checks, the Terraform applied to the emulator, and a load smoke run
	$(PY) -m pytest
	$(MAKE) --no-print-directory tf-check
	$(MAKE) --no-print-directory deploy-local
	$(MAKE) --no-print-directory loadtest-smoke

lint: $(STAMP) ## ruff (format + lint) and mypy --strict on core, ingest, consumers and local
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core ingest consumers local

unit: $(STAMP) ## only the unit tests (no sockets, no moto)
	$(PY) -m pytest tests/unit

integration: $(STAMP) ## only the integration tests (adapters and handlers against moto in-process)
	$(PY) -m pytest tests/integration

system: $(STAMP) ## only the system tests (the real local stack as processes)
	$(PY) -m pytest tests/system

tooling: $(STAMP) ## only the tests of the tooling (emulator and its patches, event sources, load test, bench)
	$(PY) -m pytest tests/tooling

fuzz: $(STAMP) ## the property tests on fresh random examples, FUZZ_RUNS times (make test runs a fixed set)
	@for i in $$(seq $(FUZZ_RUNS)); do HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/unit -q -x || exit 1; done

tf-check: ## terraform fmt/validate/test offline against the provider mirror, and checkov
	bash infra/scripts/check.sh

run: $(STAMP) ## run the whole pipeline locally on an embedded AWS emulator (Ctrl-C stops it)
	$(PY) -m local run --port $(PORT)

demo: $(STAMP) ## post webhooks and logs (corpus, or synthetic) to a running `make run`, show what landed
	$(PY) -m local demo --url http://127.0.0.1:$(PORT)

build: $(STAMP) ## build the Lambda zip for the runtime's platform, with 3.12 bytecode if LAMBDA_PYTHON/python3.12 exists (dist/)
	$(PY) infra/scripts/build.py

preflight: ## check the account's Lambda concurrency quota against what $(ENV) reserves (plan/deploy run it too)
	bash infra/scripts/tf.sh preflight

plan: build ## terraform plan against real AWS with infra/envs/$(ENV).tfvars
	bash infra/scripts/tf.sh plan

deploy: build ## terraform apply against real AWS with infra/envs/$(ENV).tfvars
	bash infra/scripts/tf.sh apply

destroy: ## terraform destroy of the $(ENV) stack
	bash infra/scripts/tf.sh destroy

deploy-local: build ## apply the same Terraform against the local emulator, then destroy it again
	bash infra/scripts/tf.sh local

bench: $(STAMP) ## benchmarks: speed and cost against a baseline measured in the same run
	$(PY) -m loadtest.bench

cost: $(STAMP) ## monthly cost and capacity plan: make cost RPS=100 EVENT_BYTES=1024 BATCH=1 [TENANT_SHARE=0.5]
	$(PY) -m loadtest.cost --rps $(or $(RPS),100) --event-bytes $(or $(EVENT_BYTES),1024) --batch $(or $(BATCH),1) $(if $(TENANT_SHARE),--tenant-share $(TENANT_SHARE))

loadtest: $(STAMP) ## headless Locust run against the local stack, or HOST=https://... for a deployment
	$(PY) -m loadtest.run $(if $(HOST),--host $(HOST))

loadtest-concurrency: $(STAMP) ## the same burst at worker concurrency 1, 2, 4, 8: table and PNG plot
	$(PY) -m loadtest.concurrency

loadtest-tenants: $(STAMP) ## noisy neighbour: 3 quiet tenants, then one flooding at 20x its quota: table, PNG, verdicts
	$(PY) -m loadtest.tenants

loadtest-smoke: $(STAMP) ## a few seconds of load against the local stack, so the suite cannot rot
	$(PY) -m loadtest.run --smoke

clean: ## remove the virtual environment, build output and caches
	rm -rf $(VENV) .venv-checkov dist build .pytest_cache .mypy_cache .ruff_cache loadtest/out .local infra/.terraform
