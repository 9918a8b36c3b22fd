# The README's two commands: `make run` (demo desk in the Dagster UI) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.desk
HOST ?= 127.0.0.1
PORT ?= 3000
# Dagster instance files (in desk_pipeline/instance/), concatenated into $(DAGSTER_HOME)/dagster.yaml
# by every run: dagster.yaml and one storage overlay, dagster-sqlite.yaml (the embedded default)
# or dagster-postgres.yaml for PostgreSQL storage (reads DAGSTER_PG_URL).
INSTANCE_DIR := desk_pipeline/instance
DAGSTER_YAML ?= dagster.yaml dagster-sqlite.yaml
# The demo desk: the last DEMO_DAYS calendar days up to today, in DESK_TIMEZONE, starting on a
# business day (the Friday before, when the first falls on a weekend: the simulated desk trades
# on business days, and a book has no EOD before its first trade); weekends carry Friday's
# positions. `make run`'s calendar (DESK_START_DATE) starts on the demo's first day.
DEMO_DAYS ?= 14
DEMO_TZ := $(or $(DESK_TIMEZONE),UTC)
DEMO_START := $(shell export TZ=$(DEMO_TZ); day=$$(date -d "$$(( $(DEMO_DAYS) - 1 )) days ago" +%F); \
  while [ "$$(date -d "$$day" +%u)" -gt 5 ]; do day=$$(date -d "$$day yesterday" +%F); done; echo $$day)
DEMO_END := $(shell TZ=$(DEMO_TZ) date +%F)

.PHONY: install instance migrate run demo-backfill dev test test-unit test-integration test-e2e lint fmt bench clean chromium

$(BIN)/desk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/desk

install: $(BIN)/desk

## instance: write $(DAGSTER_HOME)/dagster.yaml from DAGSTER_YAML on every call (never a stale
## one: a file target would keep the storage of the first run), or refuse with the reason
## (compared by digest: `cat | cmp -s -` stopped reading at the first difference or at a missing
## file, on a fresh machine, and cat printed "write error: Broken pipe"). Written whole to a
## temporary file beside it (through a link: beside the linked file), with the old file's mode,
## then renamed over it: a Dagster webserver or daemon starting meanwhile reads the old file or
## the new, never an empty or partial one (`cat > dagster.yaml` truncated it in place); a failed
## write leaves the old file and no temporary one.
instance:
	@set -euo pipefail; files=""; \
	for name in $(DAGSTER_YAML); do \
	  if [ -f "$(INSTANCE_DIR)/$$name" ]; then files="$$files $(INSTANCE_DIR)/$$name"; \
	  elif [ -f "$$name" ]; then files="$$files $$name"; \
	  else echo "make: DAGSTER_YAML names $$name, which is neither in $(INSTANCE_DIR)/ ($$(ls $(INSTANCE_DIR) | xargs)) nor a file" >&2; exit 2; fi; \
	done; \
	if grep -q "env: DAGSTER_PG_URL" $$files && [ -z "$${DAGSTER_PG_URL:-}" ]; then \
	  echo "make: DAGSTER_YAML=\"$(DAGSTER_YAML)\" keeps Dagster's runs in PostgreSQL but DAGSTER_PG_URL is not set (e.g. postgresql://dagster@db.example:5432/dagster)" >&2; exit 2; fi; \
	mkdir -p "$(DAGSTER_HOME)"; \
	if [ "$$(cat $$files | sha256sum)" != "$$(sha256sum 2>/dev/null < "$(DAGSTER_HOME)/dagster.yaml")" ]; then \
	  target=$$(readlink -f "$(DAGSTER_HOME)/dagster.yaml"); \
	  partial=$$(mktemp "$$(dirname "$$target")/.dagster.yaml.XXXXXX"); \
	  trap 'rm -f "$$partial"' EXIT; \
	  cat $$files > "$$partial"; \
	  if [ -e "$$target" ]; then chmod --reference="$$target" "$$partial"; \
	  else chmod "$$(printf %o $$(( 0666 & ~0$$(umask) )))" "$$partial"; fi; \
	  mv -fT "$$partial" "$$target"; \
	  echo "instance: $(DAGSTER_HOME)/dagster.yaml written from$$files"; fi

# `make run`'s calendar starts where the demo's data starts (no months of empty partitions);
# an explicit DESK_START_DATE wins.
run demo-backfill dev: export DESK_START_DATE ?= $(DEMO_START)

## run: install, backfill the demo desk's last $(DEMO_DAYS) days, start the UI + daemon
run: install instance migrate demo-backfill dev

## migrate: bring the warehouse schema to the latest revision (deployments run it first)
migrate: install instance
	$(BIN)/desk migrate

demo-backfill: install instance
	$(BIN)/desk backfill --start $(DEMO_START) --end $(DEMO_END)
	@# The window that just closed, as the schedule's tick takes it: the 10-minute assets start
	@# materialised and pass their freshness policy before the daemon's first tick.
	$(BIN)/desk tick

# `dagster dev` says on each start that it is superseded by `dg dev` (dagster-dg, not a desk
# dependency): a notice for the desk's developers, ignored by its text (a category would make
# every Python process the UI starts import Dagster to resolve it). The code location's own
# Dagster notices are ignored where it loads (desk_pipeline/defs/__init__.py).
comma := ,
dev: export PYTHONWARNINGS := $(if $(PYTHONWARNINGS),$(PYTHONWARNINGS)$(comma))ignore:Function `dev_command` is superseded
dev: install instance
	@echo "Lineage with both asset groups open: http://$(HOST):$(PORT)/asset-groups?expanded=global@global:positions,global@global:collateral"
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

## test: install, lint, then the whole suite (unit, integration, e2e)
test: install lint
	$(BIN)/pytest -n 2 --dist loadscope

test-unit: install
	$(BIN)/pytest -n 2 desk_pipeline_tests/unit

test-integration: install
	$(BIN)/pytest desk_pipeline_tests/integration

test-e2e: install
	$(BIN)/pytest desk_pipeline_tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## chromium: Debian's Chromium, which the UI tests drive through Playwright (.ci/run calls it)
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@/usr/bin/chromium --version

bench: install
	$(BIN)/python -m benchmarks.bench

clean:
	rm -rf $(VENV) .desk .pytest_cache
