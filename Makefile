# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-sqlite test-postgres install install-test chromium postgres worker demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian's chromium for the browser tests; Playwright never downloads a browser here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# A PostgreSQL server for the second pass of the suite (the tests start a throwaway cluster).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

## make run: migrate, load the demo project, start web + worker, print the URL and logins
run: install
	$(BIN)/labelloop demo
	@echo "Open http://$(HOST):$(PORT)/ and log in with one of the logins above."
	$(BIN)/labelloop serve --host $(HOST) --port $(PORT)

## make test: install what the tests need and run the whole suite, on SQLite and on PostgreSQL side by side
test: install-test chromium postgres
	PYTHON=$(BIN)/python scripts/test_both.sh

test-sqlite: install-test chromium
	$(BIN)/python -m pytest

test-postgres: install-test chromium postgres
	scripts/with_postgres.sh $(BIN)/python -m pytest -m "not engine"

worker: install
	$(BIN)/labelloop worker

bench: install-test
	$(BIN)/python benchmarks/bench_next_item.py

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
