"""Fixtures for the operator API: a fresh node per test over the ``database_url`` fixture."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from registry.bootstrap import Node, build_node
from registry.entrypoints.api import create_app
from registry.settings import Settings, load_settings

OPERATOR_TOKEN = "operator-token-for-tests-0001"
AUDITOR_TOKEN = "auditor-token-for-tests-00001"

# TEMPORARY until tests/conftest.py provides the shared fixture.
_POSTGRES_ADMIN_URL = os.environ.get(
    "A6_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/postgres"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    name = f"api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield _POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        party="THA",
        registry_id="THA01",
        database_url=database_url,
        data_dir=tmp_path / "node",
        operator_tokens=[OPERATOR_TOKEN],
        auditor_tokens=[AUDITOR_TOKEN],
    )


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    built = build_node(settings, migrate=True)
    yield built
    built.close()


@pytest.fixture
def anonymous(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as client:
        yield client


@pytest.fixture
def operator(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node), headers=_bearer(OPERATOR_TOKEN)) as client:
        yield client


@pytest.fixture
def auditor(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node), headers=_bearer(AUDITOR_TOKEN)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
