"""Tables of the cross-border transfer protocol, on the ledger's ``MetaData``.

They live in the ledger's database because the protocol state, the winning
decision and the ledger effects of one transition commit in one transaction.
Revision 0004 creates them; ``migrations/env.py`` imports this module so that
autogenerate and the schema-vs-metadata test see them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, String, Table

from registry.adapters.tables import CODE_LENGTH_MAX, ID_LENGTH_MAX, UtcDateTime, metadata

TRANSFER_ID_LENGTH_MAX = 36  # a UUID in its hyphenated form
PARTY_LENGTH_MAX = 3
# Several participants are joined with commas in ``to_party``.
PARTIES_LENGTH_MAX = 200
PHASE_LENGTH_MAX = 32

protocol_transfers = Table(
    "protocol_transfers",
    metadata,
    Column("transfer_id", String(TRANSFER_ID_LENGTH_MAX), primary_key=True),
    Column("coordinator_party", String(PARTY_LENGTH_MAX), primary_key=True),
    Column("role", String(CODE_LENGTH_MAX), nullable=False),
    Column("status", String(CODE_LENGTH_MAX), nullable=False),
    Column("phase", String(PHASE_LENGTH_MAX), nullable=False),
    Column("completed", Boolean(), nullable=False),
    Column("from_party", String(PARTY_LENGTH_MAX), nullable=False),
    Column("to_party", String(PARTIES_LENGTH_MAX), nullable=False),
    Column("from_account_id", String(ID_LENGTH_MAX), nullable=False),
    Column("to_account_id", String(ID_LENGTH_MAX), nullable=False),
    Column("quantity", BigInteger(), nullable=False),
    # Block summaries and reason codes, as the API shows them.
    Column("blocks", JSON(), nullable=False),
    Column("reasons", JSON(), nullable=False),
    # The protocol machine's state (CoordinatorState or ParticipantState) as JSON;
    # NULL for a transfer refused by this node's ledger before any PREPARE left.
    Column("state", JSON(), nullable=True),
    Column("next_wake_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
# The ticker's query ("due timers"), the list's ("newest of one status") and recovery's.
Index("ix_protocol_transfers_next_wake_at", protocol_transfers.c.next_wake_at)
Index("ix_protocol_transfers_status", protocol_transfers.c.status, protocol_transfers.c.created_at)

protocol_decisions = Table(
    "protocol_decisions",
    metadata,
    Column("transfer_id", String(TRANSFER_ID_LENGTH_MAX), primary_key=True),
    Column("coordinator_party", String(PARTY_LENGTH_MAX), primary_key=True),
    Column("outcome", String(CODE_LENGTH_MAX), nullable=False),
    Column("decided_by", String(PARTY_LENGTH_MAX), nullable=False),
    Column("message_id", String(TRANSFER_ID_LENGTH_MAX), nullable=False),
    # The signed record itself, so that the winner can be shown to anyone later.
    Column("record", JSON(), nullable=False),
    Column("read_at", UtcDateTime(), nullable=False),
)
