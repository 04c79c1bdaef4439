"""The ledger's tables, as SQLAlchemy Core metadata; the domain never sees them.

Holdings are ranges, one row per serial block; quantities and serials are
64-bit. The indexes follow the handlers' queries: an account's HELD blocks in
serial order (optionally of one approach), serial-range overlap per
originating registry, the blocks of one transfer.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

# Names for constraints, so migrations can refer to them on every dialect.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
AutoIncrementId = BigInteger().with_variant(Integer(), "sqlite")

ID_LENGTH_MAX = 64
NAME_LENGTH_MAX = 200
CODE_LENGTH_MAX = 32


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing a naive datetime: the ledger records UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


registry_node = Table(
    "registry_node",
    metadata,
    # A node stores exactly one row; the fixed key makes a second one impossible.
    Column("singleton", Integer, primary_key=True, autoincrement=False),
    Column("party", String(3), nullable=False),
    Column("registry_id", String(5), nullable=False),
    Column("transfers_frozen", Boolean, nullable=False),
    Column("freeze_reason", Text, nullable=False),
    Column("next_serial", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(ID_LENGTH_MAX), primary_key=True),
    Column("kind", String(CODE_LENGTH_MAX), nullable=False),
    Column("status", String(CODE_LENGTH_MAX), nullable=False),
    Column("holder_entity_id", String(ID_LENGTH_MAX)),
    Column("name", String(NAME_LENGTH_MAX), nullable=False),
)

cooperative_approaches = Table(
    "cooperative_approaches",
    metadata,
    Column("cooperative_approach_id", String(6), primary_key=True),
    Column("name", String(NAME_LENGTH_MAX), nullable=False),
    Column("participating_parties", JSON, nullable=False),
    Column("vintage_from", Integer, nullable=False),
    Column("vintage_to", Integer, nullable=False),
    Column("in_force_from", Date, nullable=False),
    Column("in_force_until", Date),
    Column("sectors", JSON, nullable=False),
    Column("activity_types", JSON, nullable=False),
    Column("metric", String(NAME_LENGTH_MAX), nullable=False),
    Column("metric_higher_is_better", Boolean, nullable=False),
    # A decimal string: exact on every dialect, unlike a float.
    Column("omge_share", String(CODE_LENGTH_MAX)),
    # A decimal string too: tCO2e per unit of a non-GHG metric (migration 0008).
    Column("tco2e_per_unit", String(CODE_LENGTH_MAX)),
)

authorisations = Table(
    "authorisations",
    metadata,
    Column("authorising_party", String(3), primary_key=True),
    Column("authorisation_id", String(ID_LENGTH_MAX), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("authorised_on", Date, nullable=False),
    Column("cooperative_approach_id", String(6), nullable=False),
    Column("authorised_parties", JSON, nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("authorised_entities", JSON, nullable=False),
    Column("quantity_cap", BigInteger),
    Column("mitigation_from", Date),
    Column("mitigation_to", Date),
    Column("use_from", Date),
    Column("use_to", Date),
    Column("terms", Text, nullable=False),
    Column("oimp_first_transfer", String(CODE_LENGTH_MAX)),
    Column("revoked", Boolean, nullable=False),
)

authorisation_usage = Table(
    "authorisation_usage",
    metadata,
    Column("authorisation_id", String(ID_LENGTH_MAX), primary_key=True),
    Column("counted_quantity", BigInteger, nullable=False),
)

serial_blocks = Table(
    "serial_blocks",
    metadata,
    Column("block_id", AutoIncrementId, primary_key=True, autoincrement=True),
    Column("account_id", String(ID_LENGTH_MAX), ForeignKey("accounts.account_id"), nullable=False),
    Column("status", String(CODE_LENGTH_MAX), nullable=False),
    Column("first_serial", BigInteger, nullable=False),
    Column("last_serial", BigInteger, nullable=False),
    Column("cooperative_approach_id", String(6), nullable=False),
    Column("originating_registry_id", String(5), nullable=False),
    Column("first_transferring_party", String(3), nullable=False),
    Column("vintage", Integer, nullable=False),
    Column("metric", String(NAME_LENGTH_MAX), nullable=False),
    Column("gwp_values", String(NAME_LENGTH_MAX), nullable=False),
    Column("mitigation_type", String(NAME_LENGTH_MAX), nullable=False),
    Column("sector", String(NAME_LENGTH_MAX), nullable=False),
    Column("activity_type", String(NAME_LENGTH_MAX), nullable=False),
    Column("first_transfer_done", Boolean, nullable=False),
    Column("authorisation_id", String(ID_LENGTH_MAX)),
    Column("authorisation_version", Integer),
    Column("transfer_id", String(128)),
    Column("transfer_role", String(CODE_LENGTH_MAX)),
    Index(
        "ix_serial_blocks_account_held_order",
        "account_id",
        "status",
        "originating_registry_id",
        "first_serial",
    ),
    Index(
        "ix_serial_blocks_account_approach_order",
        "account_id",
        "status",
        "cooperative_approach_id",
        "originating_registry_id",
        "first_serial",
    ),
    Index("ix_serial_blocks_serials", "originating_registry_id", "first_serial", "last_serial"),
    Index("ix_serial_blocks_transfer", "transfer_id"),
    # The database's own guard against double holding: one present block per
    # (originating registry, first serial). Non-overlap of whole ranges is
    # checked by the handlers under a lock.
    Index(
        "uq_serial_blocks_present_first_serial",
        "originating_registry_id",
        "first_serial",
        unique=True,
        sqlite_where=text("status <> 'TRANSFERRED_OUT'"),
        postgresql_where=text("status <> 'TRANSFERRED_OUT'"),
    ),
)

corresponding_adjustments = Table(
    "corresponding_adjustments",
    metadata,
    Column("entry_id", AutoIncrementId, primary_key=True, autoincrement=True),
    Column("party", String(3), nullable=False),
    Column("year", Integer, nullable=False),
    Column("metric", String(NAME_LENGTH_MAX), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("cause", String(CODE_LENGTH_MAX), nullable=False),
    Column("first_identifier", String(NAME_LENGTH_MAX), nullable=False),
    Column("last_identifier", String(NAME_LENGTH_MAX), nullable=False),
    Column("transfer_id", String(128)),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_corresponding_adjustments_party_year_metric", "party", "year", "metric"),
)

# Every version of the Party's NDC configuration (registry.domain.ndc; migration
# 0007). Trajectory and reported emissions are lists of [year, metric, "decimal"].
ndc_configurations = Table(
    "ndc_configurations",
    metadata,
    Column("party", String(3), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("ndc_type", String(CODE_LENGTH_MAX), nullable=False),
    Column("period_start", Integer, nullable=False),
    Column("period_end", Integer, nullable=False),
    Column("target_year", Integer),
    Column("method", String(CODE_LENGTH_MAX)),
    Column("metrics", JSON, nullable=False),
    Column("trajectory", JSON, nullable=False),
    Column("reported_emissions", JSON, nullable=False),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("entry_id", AutoIncrementId, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("action", String(CODE_LENGTH_MAX), nullable=False),
    Column("originating_registry_id", String(5), nullable=False),
    Column("first_serial", BigInteger, nullable=False),
    Column("last_serial", BigInteger, nullable=False),
    Column("first_identifier", String(NAME_LENGTH_MAX), nullable=False),
    Column("last_identifier", String(NAME_LENGTH_MAX), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("from_account_id", String(ID_LENGTH_MAX)),
    Column("to_account_id", String(ID_LENGTH_MAX)),
    Column("transfer_id", String(128)),
    Column("counterparty_party", String(3)),
    # Block attributes and purpose as of the action, for the AEF (migration 0003).
    Column("cooperative_approach_id", String(6)),
    Column("vintage", Integer),
    Column("metric", String(NAME_LENGTH_MAX)),
    Column("first_transferring_party", String(3)),
    Column("authorisation_id", String(ID_LENGTH_MAX)),
    Column("purpose", String(CODE_LENGTH_MAX)),
    Column("year_of_use", Integer),
    # The rest of the block attributes, and an acquisition's first-transfer flag (0008).
    Column("sector", String(NAME_LENGTH_MAX)),
    Column("activity_type", String(NAME_LENGTH_MAX)),
    Column("mitigation_type", String(NAME_LENGTH_MAX)),
    Column("gwp_values", String(NAME_LENGTH_MAX)),
    Column("authorisation_version", Integer),
    Column("first_transfer", Boolean),
    Index("ix_audit_entries_block", "originating_registry_id", "first_serial"),
    Index("ix_audit_entries_action", "action"),
    # A report reads one year of the trail.
    Index("ix_audit_entries_occurred_at", "occurred_at"),
)

reservations = Table(
    "reservations",
    metadata,
    # A transfer is (transfer id, coordinator) across the federation (migration 0005).
    Column("transfer_id", String(128), primary_key=True),
    Column("coordinator_party", String(3), primary_key=True),
    Column("direction", String(CODE_LENGTH_MAX), nullable=False),
    Column("account_id", String(ID_LENGTH_MAX), nullable=False),
    Column("counterparty_party", String(3), nullable=False),
    Column("purpose", String(CODE_LENGTH_MAX), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("omge_quantity", BigInteger, nullable=False),
    Column("first_transfer_quantity", BigInteger, nullable=False),
    Column("state", String(CODE_LENGTH_MAX), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("acquiring_entity", String(ID_LENGTH_MAX)),
    Index("ix_reservations_state", "state"),
    # The store's own guard of the rule that a node admits one coordinator per
    # transfer id (registry.domain.transfers.check_transfer_id_claims).
    Index("uq_reservations_transfer_id", "transfer_id", unique=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("idempotency_key", String(255), primary_key=True),
    Column("principal", String(255), primary_key=True),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("request_fingerprint", String(128), nullable=False),
    Column("response_status", Integer, nullable=False),
    Column("response_body", JSON),
    Column("created_at", UtcDateTime, nullable=False),
)
