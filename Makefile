# The README's commands. Each target installs what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install test test-slow demo kafka-up kafka-down postgres-up postgres-down lint format bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

## make test: the whole quick suite against a real Kafka broker and PostgreSQL (both started if absent).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-slow: the long fault and simulation campaigns.
test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

## make demo: a local federation of registry nodes over a real broker (DEMO_ARGS=--exit to stop after the story).
# exec: the demo is make's own child, so it learns of make's death (see demo.py).
demo: install
	exec $(PY) deploy/federation/demo.py $(DEMO_ARGS)

kafka-up: install
	$(PY) deploy/kafka/broker.py start --port $(KAFKA_PORT)

kafka-down: install
	$(PY) deploy/kafka/broker.py stop --port $(KAFKA_PORT)

postgres-up: install
	$(PY) deploy/postgres/local_postgres.py start

postgres-down: install
	$(PY) deploy/postgres/local_postgres.py stop

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/ledger_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
