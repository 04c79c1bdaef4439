"""Audit entries carry every block attribute the AEF reports; approaches a conversion factor

Revision ID: 0008_aef_fields
Revises: 0007_ndc
Create Date: 2026-12-01 16:00:00.000000

Every new column is nullable. Entries written before this revision get the block
attributes back from the serial blocks that hold their first serial: sector,
activity type, mitigation type, GWP values and authorisation version belong to a
serial for life, so any block row holding it says the same. Whether an old
acquisition was a first transfer was never recorded: it stays NULL, and the AEF
checker flags such a row rather than the report inventing the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_aef_fields"
down_revision: str | None = "0007_ndc"
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
    for column in _BLOCK_ATTRIBUTES:
        op.execute(_backfill(column))


# Attributes a serial keeps for life, copied from the block rows onto older entries.
_BLOCK_ATTRIBUTES = (
    "sector",
    "activity_type",
    "mitigation_type",
    "gwp_values",
    "authorisation_version",
)


def _backfill(column: str) -> str:
    # One correlated UPDATE per column: the same SQL on SQLite and PostgreSQL.
    return (
        f"UPDATE audit_entries SET {column} = ("
        f"SELECT serial_blocks.{column} FROM serial_blocks"
        " WHERE serial_blocks.originating_registry_id = audit_entries.originating_registry_id"
        " AND serial_blocks.first_serial <= audit_entries.first_serial"
        " AND audit_entries.first_serial <= serial_blocks.last_serial"
        f" LIMIT 1) WHERE {column} IS NULL"
    )


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
