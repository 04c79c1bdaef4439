"""Audit entries carry the block attributes and purpose the AEF reports

Revision ID: 0003_audit_report_fields
Revises: 0002_outbox_inbox
Create Date: 2026-11-25 09:00:00.000000

Every column is nullable: entries written before this revision keep NULL, and a
report shows them with the attributes it can still read from the identifiers.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_audit_report_fields"
down_revision: str | None = "0002_outbox_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cooperative_approach_id", sa.String(length=6)))
        batch_op.add_column(sa.Column("vintage", sa.Integer()))
        batch_op.add_column(sa.Column("metric", sa.String(length=200)))
        batch_op.add_column(sa.Column("first_transferring_party", sa.String(length=3)))
        batch_op.add_column(sa.Column("authorisation_id", sa.String(length=64)))
        batch_op.add_column(sa.Column("purpose", sa.String(length=32)))
        batch_op.add_column(sa.Column("year_of_use", sa.Integer()))
        batch_op.create_index("ix_audit_entries_occurred_at", ["occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_occurred_at")
        batch_op.drop_column("year_of_use")
        batch_op.drop_column("purpose")
        batch_op.drop_column("authorisation_id")
        batch_op.drop_column("first_transferring_party")
        batch_op.drop_column("metric")
        batch_op.drop_column("vintage")
        batch_op.drop_column("cooperative_approach_id")
