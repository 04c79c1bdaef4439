"""The unit index keeps who announced each range leaving circulation

Revision ID: 0011_unit_index_departures
Revises: 0010_reconciliation
Create Date: 2026-12-01 20:30:00.000000

A departure (cancellation or use) takes a range out of circulation only when the
Party that holds it announced it (PROTOCOL.md invariant 8); the index therefore
keeps the departures per Party. Segments folded before this revision counted
departures without their Party, which cannot be recovered from the rows; the
revision empties the index (segments, offsets and applied record keys) so the
node folds the unit log and the decision topic again from their beginning, as a
node that joins does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_unit_index_departures"
down_revision: str | None = "0010_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _forget_the_index() -> None:
    op.execute("DELETE FROM unit_index_segments")
    op.execute("DELETE FROM unit_index_offsets")
    op.execute("DELETE FROM unit_index_applied")


def upgrade() -> None:
    _forget_the_index()
    with op.batch_alter_table("unit_index_segments") as batch:
        batch.add_column(sa.Column("departures", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    _forget_the_index()
    with op.batch_alter_table("unit_index_segments") as batch:
        batch.drop_column("departures")
