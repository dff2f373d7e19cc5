# The two commands a new user needs: `make run` (the whole system, locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REDIS_STAMP := $(VENV)/.redis

.PHONY: run test lint devstack bench bench-devstack bench-pipeline clean preflight-run preflight-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENV): $(STAMP)

# The tests start real redis-servers; `make run` needs none (the rate limits fall back to memory).
$(REDIS_STAMP): $(STAMP) scripts/install-redis
	scripts/install-redis $(VENV)
	touch $(REDIS_STAMP)

# One clear line, before anything is installed, when the machine lacks something (scripts/preflight).
preflight-run preflight-test:
	@PYTHON=$(PYTHON) VENV=$(VENV) scripts/preflight $(@:preflight-%=%)

run: preflight-run $(STAMP)
	$(BIN)/neiromatrius run

devstack: $(STAMP)
	$(BIN)/neiromatrius devstack

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy

test: preflight-test lint $(REDIS_STAMP)
	$(BIN)/pytest

# Each appends its table to bench/RESULTS.md; run them on a quiet machine. BENCH_ARGS=--quick for a smoke run.
bench: bench-devstack bench-pipeline

bench-devstack: $(STAMP)
	$(BIN)/python bench/devstack.py

bench-pipeline: $(STAMP)
	$(BIN)/python bench/pipeline.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache
