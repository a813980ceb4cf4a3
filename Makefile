# PLM-EDC: `make run` serves the demo on SQLite; `make test` runs lint and the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PATIENTS ?= 60
DEMO_SEED ?= 2025

.PHONY: run test lint format venv deps dev-deps migrate demo messages check clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.deps $@

venv: $(BIN)/python
deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

migrate: deps
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0

demo: migrate
	$(BIN)/python manage.py seed_demo --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED)

## Debian packages beyond Python (CJK fonts for the plots); best effort: never stops a target.
system-deps:
	-bash scripts/install-system-deps.sh

## The app on the embedded default (SQLite under var/, tasks inline) with the demo cohort.
run: system-deps demo
	@echo "PLM-EDC on http://$(HOST):$(PORT)/ (demo users above; Ctrl-C stops it)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check

## Lint plus the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set), in
## PYTEST_WORKERS processes (pytest-xdist; `auto` is one per core, 0 runs in this process), each
## with its own test database; the browser journey (tests/e2e) runs in it too.
PYTEST_WORKERS ?= auto
test: system-deps lint
	$(BIN)/python -m pytest --create-db -n $(PYTEST_WORKERS) --dist worksteal --durations=25 $(PYTEST_ARGS)

format: dev-deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Refresh the Chinese catalogue after changing texts (needs GNU gettext).
messages: deps
	$(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=tests --ignore=static --no-obsolete
	$(BIN)/python manage.py compilemessages -l zh_Hans --ignore=.venv

clean:
	rm -rf $(VENV) var/plm_edc.sqlite3
