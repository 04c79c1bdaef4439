"""The Alembic revision and the table metadata describe the same schema, on every dialect."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from registry.adapters import unit_index as _unit_index  # noqa: F401 - its tables join the metadata
from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.messaging.tables import MESSAGING_TABLES
from registry.adapters.tables import metadata

AT = datetime(2026, 1, 1, tzinfo=UTC)


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


def test_reservations_get_their_coordinator_when_keyed_by_the_full_transfer_key(
    database_url: str,
) -> None:
    # Rows written before revision 0005: an outgoing one is this node's own
    # transfer, an incoming one is coordinated by its transferring Party.
    upgrade_database(database_url, "0004_transfer_protocol")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO registry_node (singleton, party, registry_id, transfers_frozen,"
                    " freeze_reason, next_serial) VALUES (1, 'CHE', 'CHE01', false, '', 1)"
                ),
                {},
            )
            for transfer_id, direction, counterparty in (
                ("T-OUT", "OUTGOING", "GHA"),
                ("T-IN", "INCOMING", "THA"),
            ):
                connection.execute(
                    text(
                        "INSERT INTO reservations (transfer_id, direction, account_id,"
                        " counterparty_party, purpose, quantity, omge_quantity,"
                        " first_transfer_quantity, state, created_at, updated_at)"
                        " VALUES (:id, :direction, 'A', :counterparty, 'NDC', 1, 0, 0,"
                        " 'PENDING', :at, :at)"
                    ),
                    {
                        "id": transfer_id,
                        "direction": direction,
                        "counterparty": counterparty,
                        "at": AT,
                    },
                )
        upgrade_database(database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT transfer_id, coordinator_party FROM reservations ORDER BY 1")
            ).all()
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("T-IN", "THA"), ("T-OUT", "CHE")]
    assert differences == []
