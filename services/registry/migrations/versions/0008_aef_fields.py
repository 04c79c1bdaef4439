"""Audit entries carry every block attribute the AEF reports; approaches a conversion factor

Revision ID: 0008_aef_fields
Revises: 0005_reservation_transfer_key
Create Date: 2026-12-01 16:00:00.000000

Every new column is nullable: entries written before this revision keep NULL, and
the AEF checker then flags the rows that lack a field the AEF asks for, rather than
the report inventing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_aef_fields"
down_revision: str | None = "0005_reservation_transfer_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sector", sa.String(length=200)))
        batch_op.add_column(sa.Column("activity_type", sa.String(length=200)))
        batch_op.add_column(sa.Column("mitigation_type", sa.String(length=200)))
        batch_op.add_column(sa.Column("gwp_values", sa.String(length=200)))
        batch_op.add_column(sa.Column("authorisation_version", sa.Integer()))
        batch_op.add_column(sa.Column("first_transfer", sa.Boolean()))
    with op.batch_alter_table("cooperative_approaches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tco2e_per_unit", sa.String(length=32)))


def downgrade() -> None:
    with op.batch_alter_table("cooperative_approaches", schema=None) as batch_op:
        batch_op.drop_column("tco2e_per_unit")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("first_transfer")
        batch_op.drop_column("authorisation_version")
        batch_op.drop_column("gwp_values")
        batch_op.drop_column("mitigation_type")
        batch_op.drop_column("activity_type")
        batch_op.drop_column("sector")
