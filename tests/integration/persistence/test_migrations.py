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


def test_older_audit_entries_get_their_block_attributes_back(database_url: str) -> None:
    # An entry written before revision 0008 lacks sector, activity type, mitigation
    # type, GWP values and authorisation version; the block holding its serials has them.
    upgrade_database(database_url, "0005_reservation_transfer_key")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO accounts (account_id, kind, status, name)"
                    " VALUES ('CHE-A', 'HOLDING', 'OPEN', '')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO serial_blocks (account_id, status, first_serial, last_serial,"
                    " cooperative_approach_id, originating_registry_id, first_transferring_party,"
                    " vintage, metric, gwp_values, mitigation_type, sector, activity_type,"
                    " first_transfer_done, authorisation_id, authorisation_version)"
                    " VALUES ('CHE-A', 'HELD', 1, 100, 'CA0001', 'CHE01', 'CHE', 2025, 'tCO2e',"
                    " 'AR5', 'emission reduction', 'energy', 'cookstoves', false, 'LOA-1', 2)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO audit_entries (occurred_at, action, originating_registry_id,"
                    " first_serial, last_serial, first_identifier, last_identifier, quantity)"
                    " VALUES (:at, 'ACQUISITION', 'CHE01', 41, 60, 'a', 'b', 20)"
                ),
                {"at": AT},
            )
        upgrade_database(database_url)
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT sector, activity_type, mitigation_type, gwp_values,"
                    " authorisation_version, first_transfer FROM audit_entries"
                )
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("energy", "cookstoves", "emission reduction", "AR5", 2, None)
