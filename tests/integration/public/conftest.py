"""A fresh node per test (over ``database_url``: SQLite and PostgreSQL) with its app.

The operator-API helpers (request bodies, ``ok``) come from the API tests, so a
change to the API's contract shows up here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from registry.bootstrap import Node, build_node
from registry.entrypoints.api import create_app
from registry.settings import Settings, load_settings
from tests.integration.api.conftest import AUDITOR_TOKEN, OPERATOR_TOKEN


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
def app(node: Node) -> FastAPI:
    return create_app(node)


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def operator(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as client:
        yield client
