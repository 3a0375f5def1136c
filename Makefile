# One entry point. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Point every recipe at the configured server, or start the local cluster.
DB_ENV = eval "$$($(BIN)/segments db up)"

# The demo runs the real DAG with `airflow dags test`, in a project-local Airflow home.
AIRFLOW_ENV = export AIRFLOW_HOME="$(CURDIR)/.local/airflow" AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	AIRFLOW__CORE__LOAD_EXAMPLES=False

DEMO_ACCOUNTS ?= 3
DEMO_CONTACTS ?= 20000
DEMO_SEED ?= 7
DEMO_DAYS ?= 7
# `make bench`: issue 10's scale data set (docs/performance.md); smaller with BENCH_CONTACTS=.
BENCH_ACCOUNTS ?= 5
BENCH_CONTACTS ?= 1000000
BENCH_SEED ?= 7
# `make test` runs the test modules in this many processes (pytest-xdist; docs/testing.md).
TEST_WORKERS ?= 2

.PHONY: help setup postgres browser db demo test test-fast pytest lint format bench clean

help:
	@echo "make demo   - set up, start Postgres, load demo data, run the pipeline"
	@echo "make test   - set up, then pytest, sqlfluff and ruff"
	@echo "make test-fast - the unit lane only (tests/unit): no database, no cluster started"
	@echo "make lint | format | bench | clean"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

# PostgreSQL server binaries, for every target that needs the database (not test-fast).
postgres:
	scripts/ensure-postgres.sh

# The Chromium the report's browser test drives (Debian's package when root); only the
# tests need it, so `make demo` works without one.
browser:
	scripts/ensure-chromium.sh

db: setup postgres
	$(DB_ENV) && $(BIN)/segments db init

# A week of daily runs (a backfill, oldest first), so history has something to show. The
# first failed day fails `make demo`; success prints a summary table, then what Broadcast sees.
demo: db
	$(DB_ENV) && $(BIN)/segments demo-data --accounts $(DEMO_ACCOUNTS) --contacts $(DEMO_CONTACTS) --seed $(DEMO_SEED)
	$(DB_ENV) && $(AIRFLOW_ENV) && $(BIN)/airflow db migrate >/dev/null
	$(DB_ENV) && $(AIRFLOW_ENV) && $(BIN)/segments demo-dags --days $(DEMO_DAYS)
	$(DB_ENV) && $(BIN)/segments status
	$(DB_ENV) && echo "report: $$($(BIN)/segments report)"

test: setup postgres browser
	$(DB_ENV) && $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
	$(MAKE) --no-print-directory lint

# The unit lane needs no PostgreSQL: no DB_ENV, so the local cluster is never started.
test-fast: setup
	$(BIN)/pytest tests/unit -q $(ARGS)

pytest: setup postgres browser
	$(DB_ENV) && $(BIN)/pytest $(ARGS)

lint: setup postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	# --processes 0: one per core (the dbt templater compiles once, the files lint in parallel).
	$(DB_ENV) && $(BIN)/segments db init && $(BIN)/sqlfluff lint --processes 0 models
	# The package's SQL files: psycopg placeholders, not dbt (src/segmentation/warehouse/sql/.sqlfluff).
	$(BIN)/sqlfluff lint --templater placeholder src/segmentation/warehouse/sql

format: setup postgres
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(DB_ENV) && $(BIN)/sqlfluff fix models
	$(BIN)/sqlfluff fix --templater placeholder src/segmentation/warehouse/sql

bench: setup postgres
	$(DB_ENV) && $(BIN)/python -m segmentation_dev.bench --accounts $(BENCH_ACCOUNTS) \
		--contacts $(BENCH_CONTACTS) --seed $(BENCH_SEED) $(ARGS)

clean:
	-$(BIN)/segments db down
	rm -rf $(VENV) .local
