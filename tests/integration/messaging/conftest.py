"""Fixtures of the messaging edge's integration tests.

``kafka_bootstrap`` (a real broker) and ``database_url`` (a fresh SQLite or
PostgreSQL database per test) come from tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from .support import UniqueNames, messaging_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = messaging_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def names() -> UniqueNames:
    return UniqueNames(f"test.{uuid.uuid4().hex[:12]}")
