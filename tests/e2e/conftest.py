"""End-to-end fixtures: real registry node processes on a real Kafka broker.

``federation_factory``
    ``make(parties=("CHE", "GHA", "THA"), *, seed=True, database="sqlite") -> Federation``:
    runs ``registry-node init`` per Party in a fresh temporary directory, writes one
    federation directory, starts one ``registry-node serve`` process per Party on free
    ports against the session's ``kafka_bootstrap`` broker, waits until every node is
    healthy and, with ``seed``, seeds accounts, cooperative approaches, LoAs and
    issuances through the API (``deploy/federation/seed.py``). ``database="sqlite"``
    gives each node its own SQLite file; ``"postgresql"`` its own fresh PostgreSQL
    database (from the session ``postgres_url``), dropped after the nodes stop. Every
    federation made is stopped at teardown, and the teardown fails if any node
    process is left.

``federation``
    one seeded three-Party federation (CHE, GHA, THA) per test: tests that kill and
    restart nodes need their own.

``federation_module``
    one seeded three-Party federation per module, for tests that only read, or that
    use fresh accounts or transfer ids so they do not see each other's effects.

One caveat for writers of e2e tests: a node's Kafka consumer groups are named after
its Party, so two live federations with the same Parties on one broker split each
other's inbox partitions. Do not keep ``federation_module`` alive next to
``federation`` in one module, and give a suite that runs alongside these fixtures
Party codes of its own (``federation_factory(("PER", "SWE", "KEN"))`` needs matching
seed data, or ``seed=False``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import pytest
from deploy.federation.launcher import (
    DatabaseUrlFactory,
    Federation,
    FederationSpec,
    PartySpec,
    group_alive,
)
from deploy.federation.seed import seed_federation
from sqlalchemy import Engine, text

DEFAULT_PARTIES = ("CHE", "GHA", "THA")


class FederationFactory(Protocol):
    def __call__(
        self,
        parties: Sequence[str] = DEFAULT_PARTIES,
        *,
        seed: bool = True,
        database: Literal["sqlite", "postgresql"] = "sqlite",
    ) -> Federation: ...


def _launch(
    base_dir: Path,
    kafka_bootstrap: str,
    parties: Sequence[str],
    *,
    seed: bool,
    database: DatabaseUrlFactory | None,
) -> Federation:
    federation = Federation(
        FederationSpec(
            parties=[PartySpec(party) for party in parties],
            base_dir=base_dir,
            kafka_bootstrap=kafka_bootstrap,
            # Free ports: tests run next to a developer's `make demo` federation.
            api_port_base=None,
            database=database or "sqlite",
        )
    )
    federation.prepare()
    federation.start()
    if seed:
        try:
            seed_federation(federation.nodes)
        except BaseException:
            federation.stop()
            raise
    return federation


def _stop_and_check(federations: list[Federation]) -> None:
    pids = [pid for federation in federations for pid in _pids(federation)]
    for federation in reversed(federations):
        federation.stop()
    left = [pid for pid in pids if group_alive(pid)]
    assert not left, f"node process groups left behind after stop(): {left}"


def _pids(federation: Federation) -> list[int]:
    return [pid for party in federation.nodes if (pid := federation.pid(party)) is not None]


@pytest.fixture
def federation_factory(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[FederationFactory]:
    made: list[Federation] = []
    databases: list[str] = []
    admin: Engine | None = None

    def postgres_database(party: str) -> str:
        nonlocal admin
        if admin is None:
            # Looked up only when asked for, so SQLite federations never start PostgreSQL.
            admin = request.getfixturevalue("postgres_admin_engine")
        name = f"t_{party.lower()}_{uuid.uuid4().hex}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        databases.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    def make(
        parties: Sequence[str] = DEFAULT_PARTIES,
        *,
        seed: bool = True,
        database: Literal["sqlite", "postgresql"] = "sqlite",
    ) -> Federation:
        base_dir = tmp_path_factory.mktemp("federation")
        factory = postgres_database if database == "postgresql" else None
        federation = _launch(base_dir, kafka_bootstrap, parties, seed=seed, database=factory)
        made.append(federation)
        return federation

    yield make
    try:
        _stop_and_check(made)
    finally:
        # Dropped only once the nodes are gone; FORCE covers a connection left open.
        if admin is not None:
            with admin.connect() as connection:
                for name in databases:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def federation(federation_factory: FederationFactory) -> Federation:
    return federation_factory()


@pytest.fixture(scope="module")
def federation_module(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    base_dir = tmp_path_factory.mktemp("federation-module")
    federation = _launch(base_dir, kafka_bootstrap, DEFAULT_PARTIES, seed=True, database=None)
    yield federation
    _stop_and_check([federation])
