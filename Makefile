# The README's two commands: `make run` (demo desk in the Dagster UI) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.desk
HOST ?= 127.0.0.1
PORT ?= 3000
# Instance files, concatenated: add dagster-postgres.yaml for PostgreSQL storage (DAGSTER_PG_URL).
DAGSTER_YAML ?= dagster.yaml
DEMO_DAYS ?= 10

.PHONY: install run demo-backfill dev test test-unit test-integration test-e2e lint fmt bench clean

$(BIN)/desk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/desk

install: $(BIN)/desk

$(DAGSTER_HOME)/dagster.yaml: $(DAGSTER_YAML)
	mkdir -p $(DAGSTER_HOME)
	cat $(DAGSTER_YAML) > $(DAGSTER_HOME)/dagster.yaml

## run: install, backfill the demo desk's last $(DEMO_DAYS) business days, start the UI + daemon
run: install $(DAGSTER_HOME)/dagster.yaml demo-backfill dev

demo-backfill: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/desk backfill --start $$($(BIN)/python -c "import pandas as pd; print((pd.Timestamp.now(tz='UTC').normalize() - pd.offsets.BDay($(DEMO_DAYS))).strftime('%Y-%m-%d'))") --end $$(date -u +%F)

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

## test: install, lint, then the whole suite (unit, integration, e2e)
test: install lint
	$(BIN)/pytest -n 2 --dist loadgroup

test-unit: install
	$(BIN)/pytest desk_pipeline_tests/unit

test-integration: install
	$(BIN)/pytest desk_pipeline_tests/integration

test-e2e: install
	$(BIN)/pytest desk_pipeline_tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks.bench

clean:
	rm -rf $(VENV) .desk .pytest_cache
