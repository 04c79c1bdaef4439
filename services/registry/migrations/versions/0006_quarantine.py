"""Quarantine of refused bus records (defined in registry.adapters.messaging.quarantine)

Revision ID: 0006_quarantine
Revises: 0005_reservation_transfer_key
Create Date: 2026-12-01 16:00:00.000000

A record the node refuses (undecodable, unverifiable, or refused by its
handler for good) is kept here with its coordinates, so that the consumer can
commit past it instead of redelivering it forever.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_quarantine"
down_revision: str | None = "0005_reservation_transfer_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("record_key", sa.LargeBinary(), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=True),
        sa.Column("value_prefix", sa.LargeBinary(), nullable=False),
        sa.Column("value_size_bytes", sa.Integer(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "topic", "kafka_partition", "kafka_offset", name=op.f("pk_quarantine")
        ),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
