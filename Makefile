# Huimin: `make run` serves on http://127.0.0.1:8080, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run seed test lint bench fuzz load chaos clean console h5 api-types

# The front ends (web/, Node 20): npm ci when the lock file changes, vite build when a
# source changes. The app serves web/dist/console at /console/ (staff console) and
# web/dist/h5 at /h5/ (resident app).
WEB := web
WEB_DEPS := $(WEB)/node_modules/.installed
CONSOLE_STAMP := $(WEB)/dist/.console-built
H5_STAMP := $(WEB)/dist/.h5-built
CONSOLE_SOURCES := $(shell find $(WEB)/src $(WEB)/vite.config.ts $(WEB)/tsconfig.json -type f ! -name '*.test.ts' 2>/dev/null)

$(WEB_DEPS): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_STAMP): $(WEB_DEPS) $(CONSOLE_SOURCES)
	cd $(WEB) && APP=console node_modules/.bin/vite build --logLevel warn
	touch $@

console: $(CONSOLE_STAMP)

$(H5_STAMP): $(WEB_DEPS) $(CONSOLE_SOURCES)
	cd $(WEB) && APP=h5 node_modules/.bin/vite build --logLevel warn
	touch $@

h5: $(H5_STAMP)

# Regenerate the console's API types from the OpenAPI document (a test fails when they are stale).
api-types: $(STAMP_RUN) $(WEB_DEPS)
	mkdir -p var
	$(PY) run.py openapi -o var/openapi.json
	cd $(WEB) && node_modules/.bin/openapi-typescript ../var/openapi.json -o src/api/schema.d.ts


$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN) $(CONSOLE_STAMP) $(H5_STAMP)
	$(PY) run.py seed
	$(PY) run.py serve

seed: $(STAMP_RUN)
	$(PY) run.py seed

# Two test processes (one per core), each with its own embedded database server; a test
# module stays in one process, so its module fixtures are made once. TEST_WORKERS=0 runs
# everything in one process.
TEST_WORKERS ?= 2
test: $(STAMP_DEV) $(CONSOLE_STAMP) $(H5_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Longer property-based fuzzing of every operation (the bounded run is part of `make test`).
FUZZ_EXAMPLES ?= 60
fuzz: $(STAMP_DEV)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --timeout=3600 tests/fuzz $(PYTEST_ARGS)

bench: $(STAMP_DEV)
	$(PY) -m bench

# The throughput curve on loopback: open-loop arrivals at stepped rates through nginx (if
# installed) to two web processes and a `run.py worker`, next to the same curve for the bare
# driver operations (the floor), then the ledger check (about 8 minutes; writes
# var/load-curve.json; LOAD_ARGS="--rates 5,10,20 --step-seconds 30" to change the steps).
# `python -m loadtest` without --curve is the closed-loop mixed load that `make chaos` uses.
load: $(STAMP_DEV)
	$(PY) -m loadtest --curve $(LOAD_ARGS)

# The same load while MongoDB and Redis are stopped for 10 s each and a web process is
# killed; ends with the ledger check and a verdict (about 150 s of load).
chaos: $(STAMP_DEV)
	$(PY) -m loadtest --chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules $(WEB)/dist
