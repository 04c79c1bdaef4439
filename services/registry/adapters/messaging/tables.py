"""The outbox and inbox tables, defined on the ledger's ``MetaData``.

The tables must live in the same database as the ledger, because the whole
point of both is to share its transactions: an outbox row commits with the
state change that caused it, an inbox row with the effect of the message it
names. They are therefore defined on ``registry.adapters.tables.metadata``,
so that one migration creates everything (and Alembic's autogenerate sees
them once this module is imported). ``define_messaging_tables`` can put them
on another ``MetaData`` (a simulation, a test) as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

from registry.adapters.tables import AutoIncrementId, UtcDateTime
from registry.adapters.tables import metadata as ledger_metadata

OUTBOX_TABLE_NAME = "outbox"
INBOX_TABLE_NAME = "inbox"

# Kafka refuses topic names longer than 249 characters.
TOPIC_NAME_LENGTH_MAX_CHARS = 249
# Message ids are envelope ids (UUIDs, or a sender-qualified id); 128 leaves room
# for a Party or registry prefix without inviting unbounded keys.
MESSAGE_ID_LENGTH_MAX_CHARS = 128


@dataclass(frozen=True)
class MessagingTables:
    """The two tables of the messaging edge, bound to one ``MetaData``."""

    outbox: Table
    inbox: Table


def define_messaging_tables(metadata: MetaData) -> MessagingTables:
    """Add ``outbox`` and ``inbox`` to ``metadata`` (once) and return them."""
    if OUTBOX_TABLE_NAME in metadata.tables:
        return MessagingTables(
            outbox=metadata.tables[OUTBOX_TABLE_NAME], inbox=metadata.tables[INBOX_TABLE_NAME]
        )
    outbox = Table(
        OUTBOX_TABLE_NAME,
        metadata,
        # The id is the publish order: the relay sends unsent rows by ascending id.
        Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        Column("topic", String(TOPIC_NAME_LENGTH_MAX_CHARS), nullable=False),
        Column("key", LargeBinary(), nullable=True),
        Column("value", LargeBinary(), nullable=False),
        Column("headers", JSON(), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("sent_at", UtcDateTime(), nullable=True),
        Column("attempt_count", Integer(), nullable=False, server_default=text("0")),
    )
    # The relay's only query is "unsent rows by id"; a partial index keeps it
    # proportional to the backlog rather than to the whole history.
    Index(
        "ix_outbox_unsent",
        outbox.c.id,
        postgresql_where=outbox.c.sent_at.is_(None),
        sqlite_where=outbox.c.sent_at.is_(None),
    )
    inbox = Table(
        INBOX_TABLE_NAME,
        metadata,
        Column("message_id", String(MESSAGE_ID_LENGTH_MAX_CHARS), primary_key=True),
        Column("topic", String(TOPIC_NAME_LENGTH_MAX_CHARS), nullable=False),
        # "offset" is a reserved word in PostgreSQL and "partition" a keyword;
        # the prefix spares every hand-written query from quoting them.
        Column("kafka_partition", Integer(), nullable=False),
        Column("kafka_offset", BigInteger(), nullable=False),
        Column("received_at", UtcDateTime(), nullable=False),
    )
    return MessagingTables(outbox=outbox, inbox=inbox)


MESSAGING_TABLES = define_messaging_tables(ledger_metadata)
