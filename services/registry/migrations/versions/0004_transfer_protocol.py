"""Protocol state and winning decisions of cross-border transfers

Revision ID: 0004_transfer_protocol
Revises: 0003_audit_report_fields
Create Date: 2026-11-25 12:00:00.000000

Defined in registry.adapters.transfer_tables, on the ledger's metadata: the
state of a transfer commits with its ledger effects and its outbox rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_transfer_protocol"
down_revision: str | None = "0003_audit_report_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "protocol_transfers",
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("coordinator_party", sa.String(length=3), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("from_party", sa.String(length=3), nullable=False),
        sa.Column("to_party", sa.String(length=200), nullable=False),
        sa.Column("from_account_id", sa.String(length=64), nullable=False),
        sa.Column("to_account_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("next_wake_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "transfer_id", "coordinator_party", name=op.f("pk_protocol_transfers")
        ),
    )
    with op.batch_alter_table("protocol_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_protocol_transfers_next_wake_at", ["next_wake_at"], unique=False)
        batch_op.create_index(
            "ix_protocol_transfers_status", ["status", "created_at"], unique=False
        )
    op.create_table(
        "protocol_decisions",
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("coordinator_party", sa.String(length=3), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.String(length=3), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "transfer_id", "coordinator_party", name=op.f("pk_protocol_decisions")
        ),
    )


def downgrade() -> None:
    op.drop_table("protocol_decisions")
    with op.batch_alter_table("protocol_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_protocol_transfers_status")
        batch_op.drop_index("ix_protocol_transfers_next_wake_at")
    op.drop_table("protocol_transfers")
