# Interlude developer commands. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test check lint schema-check schema migrations clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Interlude needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## Install, migrate the SQLite database, seed the demo clinic once, and serve on http://127.0.0.1:8000/graphql
run: $(STAMP)
	$(BIN)/interlude migrate
	$(BIN)/interlude demo --if-empty
	$(BIN)/interlude serve

## Install and run the whole test suite on SQLite and PostgreSQL (starts the local PostgreSQL if it is down)
test: $(STAMP)
	@bash .ci/ensure-postgres
	$(BIN)/pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Fails when schema.graphql is stale or a model change has no migration
schema-check: $(STAMP)
	@$(BIN)/interlude export-schema | diff -u schema.graphql - \
		|| (echo "schema.graphql is stale: run 'make schema'" >&2; exit 1)
	$(BIN)/interlude check-migrations

schema: $(STAMP)
	$(BIN)/interlude export-schema --output schema.graphql

## Write a migration for model changes (review the generated file before committing)
migrations: $(STAMP)
	INTERLUDE_DATABASE_URL=sqlite://:memory: $(BIN)/tortoise makemigrations

check: lint schema-check test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
