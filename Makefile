# The two commands a new user needs: `make run` (the whole system, locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REDIS_STAMP := $(VENV)/.redis

.PHONY: run test lint devstack bench bench-devstack bench-pipeline clean preflight-run preflight-test console console-check

$(STAMP): pyproject.toml devstack/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./devstack
	touch $(STAMP)

$(VENV): $(STAMP)

# The tests start real redis-servers; `make run` needs none (the rate limits fall back to memory).
$(REDIS_STAMP): $(STAMP) scripts/install-redis
	scripts/install-redis $(VENV)
	touch $(REDIS_STAMP)

# One clear line, before anything is installed, when the machine lacks something (scripts/preflight).
preflight-run preflight-test:
	@PYTHON=$(PYTHON) VENV=$(VENV) scripts/preflight $(@:preflight-%=%)

# The operator console (frontend/): npm ci when package-lock.json changes, a build when its sources do.
FRONTEND_STAMP := frontend/node_modules/.neiromatrius-install

$(FRONTEND_STAMP): frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	sha256sum frontend/package-lock.json | cut -d' ' -f1 | tr -d '\n' > $(FRONTEND_STAMP)

console: $(STAMP) $(FRONTEND_STAMP)
	$(BIN)/neiromatrius console --build-only

console-check: $(FRONTEND_STAMP)
	cd frontend && npm run --silent lint && npm run --silent typecheck && npm run --silent test

run: preflight-run $(STAMP) console
	$(BIN)/neiromatrius run

devstack: $(STAMP)
	$(BIN)/neiromatrius devstack

lint: $(STAMP)
	$(BIN)/ruff check service devstack tests bench
	$(BIN)/ruff format --check service devstack tests bench
	$(BIN)/mypy

# The browser tests (tests/browser) install Debian's chromium (scripts/install-chromium) and build the console.
test: preflight-test lint console-check $(REDIS_STAMP)
	$(BIN)/pytest; status=$$?; echo "Console screenshots: $(CURDIR)/frontend/test-results/screenshots"; exit $$status

# Each appends its table to bench/RESULTS.md; run them on a quiet machine. BENCH_ARGS=--quick for a smoke run.
bench: bench-devstack bench-pipeline

bench-devstack: $(STAMP)
	$(BIN)/python bench/devstack.py

bench-pipeline: $(STAMP)
	$(BIN)/python bench/pipeline.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache frontend/node_modules frontend/.next
