"""initial ledger schema

Revision ID: 0001_initial
Revises: (none)
Create Date: 2026-11-24 00:43:30.565056
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("holder_entity_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "audit_entries",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("originating_registry_id", sa.String(length=5), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.Column("first_identifier", sa.String(length=200), nullable=False),
        sa.Column("last_identifier", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("from_account_id", sa.String(length=64), nullable=True),
        sa.Column("to_account_id", sa.String(length=64), nullable=True),
        sa.Column("transfer_id", sa.String(length=128), nullable=True),
        sa.Column("counterparty_party", sa.String(length=3), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_action", ["action"], unique=False)
        batch_op.create_index(
            "ix_audit_entries_block", ["originating_registry_id", "first_serial"], unique=False
        )

    op.create_table(
        "authorisation_usage",
        sa.Column("authorisation_id", sa.String(length=64), nullable=False),
        sa.Column("counted_quantity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("authorisation_id", name=op.f("pk_authorisation_usage")),
    )
    op.create_table(
        "authorisations",
        sa.Column("authorising_party", sa.String(length=3), nullable=False),
        sa.Column("authorisation_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("authorised_on", sa.Date(), nullable=False),
        sa.Column("cooperative_approach_id", sa.String(length=6), nullable=False),
        sa.Column("authorised_parties", sa.JSON(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("authorised_entities", sa.JSON(), nullable=False),
        sa.Column("quantity_cap", sa.BigInteger(), nullable=True),
        sa.Column("mitigation_from", sa.Date(), nullable=True),
        sa.Column("mitigation_to", sa.Date(), nullable=True),
        sa.Column("use_from", sa.Date(), nullable=True),
        sa.Column("use_to", sa.Date(), nullable=True),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("oimp_first_transfer", sa.String(length=32), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "authorising_party", "authorisation_id", "version", name=op.f("pk_authorisations")
        ),
    )
    op.create_table(
        "cooperative_approaches",
        sa.Column("cooperative_approach_id", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("participating_parties", sa.JSON(), nullable=False),
        sa.Column("vintage_from", sa.Integer(), nullable=False),
        sa.Column("vintage_to", sa.Integer(), nullable=False),
        sa.Column("in_force_from", sa.Date(), nullable=False),
        sa.Column("in_force_until", sa.Date(), nullable=True),
        sa.Column("sectors", sa.JSON(), nullable=False),
        sa.Column("activity_types", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("metric_higher_is_better", sa.Boolean(), nullable=False),
        sa.Column("omge_share", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("cooperative_approach_id", name=op.f("pk_cooperative_approaches")),
    )
    op.create_table(
        "corresponding_adjustments",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("party", sa.String(length=3), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("first_identifier", sa.String(length=200), nullable=False),
        sa.Column("last_identifier", sa.String(length=200), nullable=False),
        sa.Column("transfer_id", sa.String(length=128), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_corresponding_adjustments")),
    )
    with op.batch_alter_table("corresponding_adjustments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_corresponding_adjustments_party_year_metric",
            ["party", "year", "metric"],
            unique=False,
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=128), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", "principal", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "registry_node",
        sa.Column("singleton", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("party", sa.String(length=3), nullable=False),
        sa.Column("registry_id", sa.String(length=5), nullable=False),
        sa.Column("transfers_frozen", sa.Boolean(), nullable=False),
        sa.Column("freeze_reason", sa.Text(), nullable=False),
        sa.Column("next_serial", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_registry_node")),
    )
    op.create_table(
        "reservations",
        sa.Column("transfer_id", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("counterparty_party", sa.String(length=3), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("omge_quantity", sa.BigInteger(), nullable=False),
        sa.Column("first_transfer_quantity", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquiring_entity", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_state", ["state"], unique=False)

    op.create_table(
        "serial_blocks",
        sa.Column(
            "block_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.Column("cooperative_approach_id", sa.String(length=6), nullable=False),
        sa.Column("originating_registry_id", sa.String(length=5), nullable=False),
        sa.Column("first_transferring_party", sa.String(length=3), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("gwp_values", sa.String(length=200), nullable=False),
        sa.Column("mitigation_type", sa.String(length=200), nullable=False),
        sa.Column("sector", sa.String(length=200), nullable=False),
        sa.Column("activity_type", sa.String(length=200), nullable=False),
        sa.Column("first_transfer_done", sa.Boolean(), nullable=False),
        sa.Column("authorisation_id", sa.String(length=64), nullable=True),
        sa.Column("authorisation_version", sa.Integer(), nullable=True),
        sa.Column("transfer_id", sa.String(length=128), nullable=True),
        sa.Column("transfer_role", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_serial_blocks_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("block_id", name=op.f("pk_serial_blocks")),
    )
    with op.batch_alter_table("serial_blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_serial_blocks_account_approach_order",
            [
                "account_id",
                "status",
                "cooperative_approach_id",
                "originating_registry_id",
                "first_serial",
            ],
            unique=False,
        )
        batch_op.create_index(
            "ix_serial_blocks_account_held_order",
            ["account_id", "status", "originating_registry_id", "first_serial"],
            unique=False,
        )
        batch_op.create_index(
            "ix_serial_blocks_serials",
            ["originating_registry_id", "first_serial", "last_serial"],
            unique=False,
        )
        batch_op.create_index("ix_serial_blocks_transfer", ["transfer_id"], unique=False)
        batch_op.create_index(
            "uq_serial_blocks_present_first_serial",
            ["originating_registry_id", "first_serial"],
            unique=True,
            sqlite_where=sa.text("status <> 'TRANSFERRED_OUT'"),
            postgresql_where=sa.text("status <> 'TRANSFERRED_OUT'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("serial_blocks", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_serial_blocks_present_first_serial",
            sqlite_where=sa.text("status <> 'TRANSFERRED_OUT'"),
            postgresql_where=sa.text("status <> 'TRANSFERRED_OUT'"),
        )
        batch_op.drop_index("ix_serial_blocks_transfer")
        batch_op.drop_index("ix_serial_blocks_serials")
        batch_op.drop_index("ix_serial_blocks_account_held_order")
        batch_op.drop_index("ix_serial_blocks_account_approach_order")

    op.drop_table("serial_blocks")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_state")

    op.drop_table("reservations")
    op.drop_table("registry_node")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("corresponding_adjustments", schema=None) as batch_op:
        batch_op.drop_index("ix_corresponding_adjustments_party_year_metric")

    op.drop_table("corresponding_adjustments")
    op.drop_table("cooperative_approaches")
    op.drop_table("authorisations")
    op.drop_table("authorisation_usage")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_block")
        batch_op.drop_index("ix_audit_entries_action")

    op.drop_table("audit_entries")
    op.drop_table("accounts")
