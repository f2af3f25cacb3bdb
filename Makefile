# dipddpm — every target that needs the virtual environment builds it first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
METHOD ?= staged
PROFILE ?= auto
ARGS ?=

export RAY_USAGE_STATS_ENABLED ?= 0

.DEFAULT_GOAL := help
SWEEP ?= sweeps/staged.yaml
RUN ?= runs/staged/cpu

.PHONY: help install test test-fast run sweep sweep-staged sweep-hybrid report bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: METHOD=$(METHOD) PROFILE=$(PROFILE) ARGS='$(ARGS)' (e.g. ARGS='--set dip.lr=1e-3')"

install: $(STAMP) ## create .venv with the package, CPU torch when there is no GPU, and test tools

$(STAMP): pyproject.toml .ci/install
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/install
	@touch $@

test: $(STAMP) ## run the test suite (unit + end-to-end)
	$(PY) -m pytest -q

test-fast: $(STAMP) ## unit tests only (skips the slow end-to-end ones)
	$(PY) -m pytest -q -m "not slow"

run: $(STAMP) ## one trial without Ray: make run METHOD=staged PROFILE=cpu ARGS='--set ...'
	$(PY) -m dipddpm run --method $(METHOD) --profile $(PROFILE) $(ARGS)

sweep-staged: $(STAMP) ## staged-DIP ablation on Ray Tune (cpu profile: ~15 min on 2 cores)
	$(PY) -m orchestrator sweep sweeps/staged.yaml --profile $(PROFILE) $(ARGS)

sweep-hybrid: $(STAMP) ## hybrid DIP->DDPM ablation on Ray Tune (cpu profile: ~15 min on 2 cores)
	$(PY) -m orchestrator sweep sweeps/hybrid.yaml --profile $(PROFILE) $(ARGS)

sweep: $(STAMP) ## any sweep: make sweep SWEEP=sweeps/x.yaml ARGS='--dry-run'
	$(PY) -m orchestrator sweep $(SWEEP) --profile $(PROFILE) $(ARGS)

report: $(STAMP) ## tables + report.md, results.csv, report.html from a run: make report RUN=runs/hybrid/cpu
	$(PY) -m orchestrator report $(RUN) $(ARGS)

bench: $(STAMP) ## benchmarks -> benchmarks/results.json (~10 min): make bench ARGS='--only dip,eval'
	$(PY) benchmarks/bench.py $(ARGS)

clean: ## remove outputs (out/) and caches, keep the venv
	rm -rf out .pytest_cache
