"""A migrated ledger database per test, on SQLite and on PostgreSQL (via ``database_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from registry.adapters.database import make_engine, upgrade_database


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
