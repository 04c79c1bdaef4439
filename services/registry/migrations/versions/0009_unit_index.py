"""The federation unit index (defined in registry.adapters.unit_index)

Revision ID: 0009_unit_index
Revises: 0008_aef_fields
Create Date: 2026-12-01 17:00:00.000000

Every node keeps an index of which Party holds every serial range, built from
the federation unit log and the decision topic (PROTOCOL.md invariant 8): the
segments of its interval maps, the next offset it reads per topic partition
(written with the segments it changed), and the keys of the records folded in.

It was written after 0006_quarantine; main then gained 0007_ndc and
0008_aef_fields after that one, and this revision follows them so that the
migrations keep one head.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_unit_index"
down_revision: str | None = "0008_aef_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_index_segments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cooperative_approach_id", sa.String(length=64), nullable=False),
        sa.Column("originating_registry_id", sa.String(length=32), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(length=200), nullable=True),
        sa.Column("holdings", sa.JSON(), nullable=False),
        sa.Column("left_circulation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_index_segments")),
    )
    op.create_index(
        "ix_unit_index_segments_range",
        "unit_index_segments",
        ["cooperative_approach_id", "originating_registry_id", "first_serial"],
    )
    op.create_table(
        "unit_index_offsets",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "kafka_partition", name=op.f("pk_unit_index_offsets")),
    )
    op.create_table(
        "unit_index_applied",
        sa.Column("record_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("record_key", name=op.f("pk_unit_index_applied")),
    )


def downgrade() -> None:
    op.drop_table("unit_index_applied")
    op.drop_table("unit_index_offsets")
    op.drop_index("ix_unit_index_segments_range", table_name="unit_index_segments")
    op.drop_table("unit_index_segments")
