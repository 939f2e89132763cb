# coldtrace: `make demo` runs everything on embedded defaults, `make test` runs the test suite.
# Both set themselves up: Debian packages, TimescaleDB, a venv from requirements.lock, private services.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | md5sum | cut -c1-12)

.PHONY: setup system venv web-deps interop-deps services services-stop test lint typecheck check demo bench clean

setup: system venv web-deps

system:
	@bash scripts/install-system-deps.sh

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

# The dashboard's chart library (uPlot, MIT), pinned by its package-lock and served unmodified
# from node_modules by /ui/vendor/.
VENDOR := cloud/web/vendor
VENDOR_STAMP := $(VENDOR)/node_modules/.installed-$(shell cat $(VENDOR)/package-lock.json | md5sum | cut -c1-12)

web-deps: $(VENDOR_STAMP)

$(VENDOR_STAMP): $(VENDOR)/package-lock.json
	@cd $(VENDOR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The independent OPC-UA server of the interop tests (node-opcua, pinned by its package-lock).
INTEROP := tests/interop/opcua-server
INTEROP_STAMP := $(INTEROP)/node_modules/.installed-$(shell cat $(INTEROP)/package-lock.json | md5sum | cut -c1-12)

# The independent MQTT broker (aedes, MIT), pinned the same way.
MQTT_INTEROP := tests/interop/mqtt-broker
MQTT_INTEROP_STAMP := $(MQTT_INTEROP)/node_modules/.installed-$(shell cat $(MQTT_INTEROP)/package-lock.json | md5sum | cut -c1-12)

interop-deps: $(INTEROP_STAMP) $(MQTT_INTEROP_STAMP)

$(INTEROP_STAMP): $(INTEROP)/package-lock.json
	@cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(MQTT_INTEROP_STAMP): $(MQTT_INTEROP)/package-lock.json
	@cd $(MQTT_INTEROP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

services: setup
	@$(BIN)/coldtrace services start

services-stop:
	@test -x $(BIN)/coldtrace && $(BIN)/coldtrace services stop || true

# The suite runs in parallel (pytest-xdist): most tests wait on sockets, processes and timers, so
# three workers on two cores finish in about half the serial time. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 3

test: setup interop-deps
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: venv
	@$(BIN)/mypy .

check: lint typecheck test

demo: setup
	@$(BIN)/coldtrace demo

bench: setup
	@for b in bench/[a-z]*.py; do m=$$(basename $$b .py); echo "== bench.$$m"; $(BIN)/python -m bench.$$m || exit 1; done

clean: services-stop
	rm -rf $(VENV) .data
