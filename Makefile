# The two commands the README promises: `make run` (the agent, runtime only) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: install install-test run test test-quick test-full runtime-deps system-deps bench torture lint docs

# The runtime alone: what `ingest-agent run` needs.
$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Test, benchmark and Postgres extras on top, for `make test` and `make bench`.
$(VENV)/.installed-test: $(VENV)/.installed-run
	$(BIN)/python -m pip install --quiet -e '.[test,bench,postgres]'
	touch $@

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

## Install (once) what the agent needs and run it in the foreground on the example config.
run: runtime-deps install
	$(BIN)/ingest-agent --config $(CONFIG) check
	$(BIN)/ingest-agent --config $(CONFIG) run

## Install what the tests need (Python packages and Debian servers) and run them.
test: system-deps install-test
	$(BIN)/python -m pytest -q --durations=25

## The tests that need no agent process, model, server, browser, benchmark or root: a
## minute or two, for the edit-test loop (`make test` before a commit).
test-quick: install-test
	$(BIN)/python -m pytest -q -m "not (agent or model or services or browser or bench or root)"

## The long proofs too (full-size bursts and torture); see benchmarks/README.md.
test-full: system-deps install-test
	$(BIN)/python -m pytest -q --run-slow

runtime-deps:
	bash scripts/install-system-deps.sh --runtime

system-deps:
	bash scripts/install-system-deps.sh

## What is derived from agent/formats.py: docs/formats.md's table, the example's allowed_types.
docs: install
	$(BIN)/python scripts/write_formats.py

lint: install-test
	$(BIN)/ruff check agent tests benchmarks
	$(BIN)/mypy agent tests benchmarks

## Every benchmark, figures written into benchmarks/README.md (the peers' rows need the
## `peer` extra: LlamaIndex, trafilatura and the other HTML readers).
bench: system-deps install-test
	$(BIN)/python -m pip install --quiet -e '.[peer]'
	$(BIN)/python benchmarks/run_all.py

## The full crash torture: 1,000 files, 20 SIGKILLs (a fixed seed replays a run).
torture: install-test
	$(BIN)/python -m tests.torture --files 1000 --kills 20 $(if $(SEED),--seed $(SEED))
