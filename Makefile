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
# The desk calendar (DESK_START_DATE, DESK_TIMEZONE) of the warehouse in DAGSTER_HOME, kept in
# DESK_ENV: `make desk-env` writes it, and every desk process on that warehouse reads it for a
# variable its environment does not set (make's own, the UI's runs and daemon, `desk` in the
# user's shell, `desk serve`), so all cut the same days. An explicit value (the environment,
# make's command line) wins; else the file's, so the calendar never moves under the days stored
# in it (the start only moves earlier, to the demo's first day); else UTC and the demo's first
# day, so the UI lists no months of empty partitions.
DESK_ENV := $(DAGSTER_HOME)/desk.env
recorded = $(shell sed -n 's/^$(1)=//p' "$(DESK_ENV)" 2>/dev/null | tr -d "\"'" | tail -n 1)
# The demo desk: the last DEMO_DAYS calendar days up to today, in DESK_TIMEZONE, starting on a
# business day (the Friday before, when the first falls on a weekend: the simulated desk trades
# on business days, and a book has no EOD before its first trade); weekends carry Friday's
# positions.
DEMO_DAYS ?= 14
DEMO_TZ := $(or $(DESK_TIMEZONE),$(call recorded,DESK_TIMEZONE),UTC)
DEMO_START := $(shell export TZ=$(DEMO_TZ); day=$$(date -d "$$(( $(DEMO_DAYS) - 1 )) days ago" +%F); \
  while [ "$$(date -d "$$day" +%u)" -gt 5 ]; do day=$$(date -d "$$day yesterday" +%F); done; echo $$day)
DEMO_END := $(shell TZ=$(DEMO_TZ) date +%F)
CALENDAR_START := $(or $(DESK_START_DATE),$(firstword $(sort $(call recorded,DESK_START_DATE) $(DEMO_START))))

.PHONY: install instance desk-env migrate run demo-backfill dev test test-unit test-integration test-e2e lint fmt bench clean chromium

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

## desk-env: write the calendar above to $(DESK_ENV) when it changed, whole and by a rename, as
## instance writes dagster.yaml: a desk process starting meanwhile reads the old file or the new.
## `make run` writes it after `desk migrate`, which refuses a DESK_TIMEZONE other than the one
## the warehouse records: a refused calendar is never written.
desk-env:
	@set -euo pipefail; mkdir -p "$(DAGSTER_HOME)"; \
	calendar=$$(printf '%s\n' \
	  '# The desk calendar of the warehouse in this folder, written by make run (make desk-env).' \
	  '# Every desk process on the warehouse reads it: the UI, its daemon and runs, desk and the' \
	  '# API in the project folder. A DESK_* variable set in the environment wins over it.' \
	  'DESK_START_DATE=$(CALENDAR_START)' \
	  'DESK_TIMEZONE=$(DEMO_TZ)'); \
	if [ "$$calendar" != "$$(cat "$(DESK_ENV)" 2>/dev/null)" ]; then \
	  target=$$(readlink -f "$(DESK_ENV)"); \
	  partial=$$(mktemp "$$(dirname "$$target")/.desk.env.XXXXXX"); \
	  trap 'rm -f "$$partial"' EXIT; \
	  printf '%s\n' "$$calendar" > "$$partial"; \
	  if [ -e "$$target" ]; then chmod --reference="$$target" "$$partial"; \
	  else chmod "$$(printf %o $$(( 0666 & ~0$$(umask) )))" "$$partial"; fi; \
	  mv -fT "$$partial" "$$target"; \
	  echo "desk-env: $(DESK_ENV) written: DESK_START_DATE=$(CALENDAR_START), DESK_TIMEZONE=$(DEMO_TZ)"; fi

## run: install, backfill the demo desk's last $(DEMO_DAYS) days, start the UI + daemon
run: install instance migrate desk-env demo-backfill dev

## migrate: bring the warehouse schema to the latest revision (deployments run it first)
migrate: install instance
	$(BIN)/desk migrate

demo-backfill: install instance desk-env
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
dev: install instance desk-env
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
