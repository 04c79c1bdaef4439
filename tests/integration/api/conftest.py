"""Fixtures for the operator API: a fresh node per test over the ``database_url`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.bootstrap import Node, build_node
from registry.entrypoints.api import create_app
from registry.settings import Settings, load_settings

OPERATOR_TOKEN = "operator-token-for-tests-0001"
AUDITOR_TOKEN = "auditor-token-for-tests-00001"


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
