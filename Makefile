# Beetel — developer and operator commands. `make demo` and `make test` are the quickstart.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
# The suite's processes (pytest-xdist): each gets its own test database and Redis database.
TEST_PROCESSES ?= 2
APPS := config core pbx crm integration cabinet sandbox
TEMPLATE_DIRS = $(shell find . -path ./.venv -prune -o -type d -name templates -print)
# Every process defaults to the production settings (config/entrypoint.py); the development
# targets below opt in to the development ones unless DJANGO_SETTINGS_MODULE says otherwise.
DEV_SETTINGS ?= config.settings.local
DEV := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-$(DEV_SETTINGS)}

.PHONY: install test lint format demo run migrate messages bench chaos widget clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create the virtualenv and install everything the project needs

test: install ## the whole suite against PostgreSQL and Redis (DATABASE_URL / REDIS_URL override), on TEST_PROCESSES processes
	$(BIN)/pytest -n $(TEST_PROCESSES)

lint: install ## ruff (lint + format check), the import contracts, mypy on the apps, djLint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(APPS)
	$(BIN)/djlint --lint $(TEMPLATE_DIRS)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/djlint --reformat $(TEMPLATE_DIRS) || true

migrate: install
	$(DEV) $(PY) manage.py migrate --noinput

demo: install ## fresh machine -> running portal with the sandbox; prints the URLs
	$(DEV) DEMO_HOST=$(DEMO_HOST) DEMO_PORT=$(DEMO_PORT) $(PY) manage.py demo

run: install ## the Procfile: release (migrate, static files), then web + worker-events + worker + beat (production settings; needs their env variables)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start release
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start web worker-events worker beat

bench: install ## every benchmark (loopback, throwaway databases); each figure beside its target
	-$(PY) bench/ingest.py
	-$(PY) bench/recordings.py
	-$(PY) bench/pipeline.py
	-$(PY) bench/scale.py
	-$(PY) bench/history.py

chaos: install ## the whole stack under faults (Redis, workers, beat, amoCRM, Beeline, PostgreSQL): 500 calls, one row per fault; fails on any lost or duplicated call
	$(PY) bench/chaos.py

widget: install ## the widget zip for upload to amoCRM (PUBLIC_URL baked in) -> dist/
	$(PY) manage.py build_widget

messages: install
	$(DEV) $(PY) manage.py makemessages -l en -l ru --ignore '.venv/*'
	$(DEV) $(PY) manage.py compilemessages --ignore '.venv/*'

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .mypy_cache .ruff_cache .pytest_cache
