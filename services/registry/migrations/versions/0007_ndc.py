"""The Party's NDC configuration, one row per version

Revision ID: 0007_ndc
Revises: 0006_quarantine
Create Date: 2026-12-01 16:30:00.000000

What the corresponding-adjustment methods of decision 2/CMA.3 need to know
(registry.domain.ndc): the NDC's type, implementation period, target year,
method and metrics, and the Party's trajectory and reported emissions. A change
is a new version; the newest is current.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ndc"
down_revision: str | None = "0006_quarantine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ndc_configurations",
        sa.Column("party", sa.String(length=3), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ndc_type", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.Integer(), nullable=False),
        sa.Column("period_end", sa.Integer(), nullable=False),
        sa.Column("target_year", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("trajectory", sa.JSON(), nullable=False),
        sa.Column("reported_emissions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("party", "version", name=op.f("pk_ndc_configurations")),
    )


def downgrade() -> None:
    op.drop_table("ndc_configurations")
