# The README's commands. Each target installs what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install test test-slow demo kafka-up kafka-down postgres-up postgres-down lint format bench clean \
	containers compose-up compose-down compose-demo

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

## make demo: a local federation of registry nodes over a real broker (DEMO_ARGS=--exit to stop after the story;
# DEMO_ARGS="--secure --brokers 3": a TLS cluster with a Kafka identity per Party and ACLs).
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

## Containers (docker-compose.yml): `docker compose` where the CLI plugin exists, else docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

## make containers: a container host (engine, dockerd, base image) and the project's images.
containers:
	deploy/containers/prepare.sh

## make compose-up: the three-Party federation in containers, returning once all nodes are healthy.
# prepare.sh builds the images (one build path, one layer cache), so `up` needs no --build.
# .env (git-ignored) holds the PostgreSQL password compose reads; generated once.
compose-up: install
	deploy/containers/prepare.sh
	@test -f .env || echo "A6_POSTGRES_PASSWORD=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(24))')" > .env
	$(COMPOSE) up --detach
	$(PY) deploy/containers/compose_demo.py --compose "$(COMPOSE)" --wait-only

## make compose-down: stop and remove the containers and their volumes (keys, databases).
compose-down:
	# The password only matters to `up`; `down` must work without .env too.
	A6_POSTGRES_PASSWORD=$${A6_POSTGRES_PASSWORD:-unused-by-down} $(COMPOSE) down --volumes --remove-orphans

## make compose-demo: the demo's story against a fresh compose federation.
compose-demo: install
	$(MAKE) compose-down
	$(MAKE) compose-up
	$(PY) deploy/containers/compose_demo.py --compose "$(COMPOSE)"

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
