# Beetel — developer and operator commands. `make demo` and `make test` are the quickstart.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
APPS := config integration pbx crm cabinet sandbox

.PHONY: install test lint format demo run migrate messages clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create the virtualenv and install everything the project needs

test: install ## the whole suite against PostgreSQL and Redis (DATABASE_URL / REDIS_URL override)
	$(BIN)/pytest

lint: install ## ruff (lint + format check), mypy on the apps, djLint on the templates
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(APPS)
	$(BIN)/djlint --lint templates $(wildcard */templates)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/djlint --reformat templates $(wildcard */templates) || true

migrate: install
	$(PY) manage.py migrate --noinput

demo: install ## fresh machine -> running portal with the sandbox; prints the URLs
	DEMO_HOST=$(DEMO_HOST) DEMO_PORT=$(DEMO_PORT) $(PY) manage.py demo

run: install ## the Procfile processes (production-like; needs the production env variables)
	$(BIN)/honcho start

messages: install
	$(PY) manage.py makemessages -l en -l ru --ignore '.venv/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .mypy_cache .ruff_cache .pytest_cache
