# The two commands the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: install run test test-full system-deps bench torture lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,postgres]'
	touch $@

install: $(VENV)/.installed

## Install (once) and run the agent in the foreground on the example config.
run: install
	$(BIN)/ingest-agent --config $(CONFIG) check
	$(BIN)/ingest-agent --config $(CONFIG) run

## Install what the tests need (Python packages and Debian servers) and run them.
test: system-deps install
	$(BIN)/python -m pytest -q

## The long proofs too (full-size bursts and torture); see benchmarks/README.md.
test-full: system-deps install
	$(BIN)/python -m pytest -q --run-slow

system-deps:
	bash scripts/install-system-deps.sh

lint: install
	$(BIN)/ruff check agent tests benchmarks

## Every benchmark, figures written into benchmarks/README.md (about 10 minutes).
bench: install
	$(BIN)/python benchmarks/run_all.py

## The full crash torture: 1,000 files, 20 SIGKILLs (a fixed seed replays a run).
torture: install
	$(BIN)/python -m tests.torture --files 1000 --kills 20 $(if $(SEED),--seed $(SEED))
