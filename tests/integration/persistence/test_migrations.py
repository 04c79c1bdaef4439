"""The Alembic revision and the table metadata describe the same schema, on every dialect."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.messaging.tables import MESSAGING_TABLES
from registry.adapters.tables import metadata


def test_the_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    # The messaging edge defines the outbox and inbox on the same metadata.
    assert MESSAGING_TABLES.inbox.metadata is metadata
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_upgrading_twice_is_harmless(database_url: str, engine: Engine) -> None:
    upgrade_database(database_url)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_sqlite_pragmas_are_set(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/node.db")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10_000}
