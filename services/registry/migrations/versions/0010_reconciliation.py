"""Reconciliation: the latest holdings snapshot of each Party, and the findings

Revision ID: 0010_reconciliation
Revises: 0009_unit_index
Create Date: 2026-12-01 20:00:00.000000

Defined in registry.adapters.reconciliation. Every node keeps the latest
verified holdings snapshot of each Party (its signed bytes) and the findings of
comparing them with its unit index and its own transfer records.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_reconciliation"
down_revision: str | None = "0009_unit_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_snapshots",
        sa.Column("party", sa.String(length=3), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("party", name=op.f("pk_reconciliation_snapshots")),
    )
    op.create_table(
        "reconciliation_findings",
        sa.Column(
            "finding_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("cooperative_approach_id", sa.String(length=6), nullable=False),
        sa.Column("originating_registry_id", sa.String(length=5), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=True),
        sa.Column("last_serial", sa.BigInteger(), nullable=True),
        sa.Column("vintage", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(length=200), nullable=True),
        sa.Column("transfer_ids", sa.JSON(), nullable=False),
        sa.Column("stated", sa.BigInteger(), nullable=True),
        sa.Column("expected", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("finding_id", name=op.f("pk_reconciliation_findings")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_reconciliation_findings_fingerprint")),
    )
    op.create_index(
        "ix_reconciliation_findings_party_open",
        "reconciliation_findings",
        ["party", "open"],
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_findings_party_open", table_name="reconciliation_findings")
    op.drop_table("reconciliation_findings")
    op.drop_table("reconciliation_snapshots")
