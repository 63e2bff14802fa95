# The two commands of README.md: `make run` and `make test`. Each prepares what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTED := $(VENV)/.installed-test

.PHONY: run test install test-services bench schema clean

# `make run` installs the product alone; `make test` adds the test tools, PostgreSQL's
# storage and the linters.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TESTED): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,postgresql]'
	touch $(TESTED)

install: $(TESTED)

run: $(STAMP)
	$(BIN)/deskbase run

test-services:
	@bash scripts/install-test-services

test: $(TESTED) test-services
	$(BIN)/ruff check platform tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The JSON Schemas an editor checks definitions and overlays with (docs/workbench.md).
schema: $(STAMP)
	$(BIN)/deskbase schema --output var/deskbase-definitions.schema.json
	$(BIN)/deskbase schema --overlay --output var/deskbase-overlay.schema.json

bench: $(TESTED)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis .mypy_cache .ruff_cache
