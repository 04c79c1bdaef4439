"""Fixtures of the messaging edge's integration tests.

``kafka_bootstrap`` (a real broker) and ``database_url`` (a fresh SQLite or
PostgreSQL database per test) come from tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from registry.adapters.messaging import MESSAGING_METADATA

from .support import EFFECTS_METADATA, UniqueNames


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    MESSAGING_METADATA.create_all(engine)
    EFFECTS_METADATA.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def names() -> UniqueNames:
    return UniqueNames(f"test.{uuid.uuid4().hex[:12]}")
