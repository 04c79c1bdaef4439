"""Reservations are keyed by the full transfer key (transfer id, coordinator)

Revision ID: 0005_reservation_transfer_key
Revises: 0004_transfer_protocol
Create Date: 2026-12-01 16:30:00.000000

Transfer ids are drawn by coordinators, so only (transfer id, coordinator) names
one transfer across the federation; a reservation keyed by the id alone let
another member's decision under the same id release or finalise it. Existing
rows get their coordinator from what they already say: an outgoing reservation
is this node's own transfer, an incoming one is coordinated by its transferring
Party. The id stays unique at a node: that is the store's guard of the rule that
a node admits one coordinator per transfer id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_reservation_transfer_key"
down_revision: str | None = "0004_transfer_protocol"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coordinator_party", sa.String(length=3), nullable=True))
    op.execute(
        "UPDATE reservations SET coordinator_party = CASE direction "
        "WHEN 'OUTGOING' THEN (SELECT party FROM registry_node) "
        "ELSE counterparty_party END"
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.alter_column("coordinator_party", existing_type=sa.String(3), nullable=False)
        batch_op.drop_constraint("pk_reservations", type_="primary")
        batch_op.create_primary_key("pk_reservations", ["transfer_id", "coordinator_party"])
        batch_op.create_index("uq_reservations_transfer_id", ["transfer_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("uq_reservations_transfer_id")
        batch_op.drop_constraint("pk_reservations", type_="primary")
        batch_op.create_primary_key("pk_reservations", ["transfer_id"])
        batch_op.drop_column("coordinator_party")
