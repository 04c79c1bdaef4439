"""Inbox dedupe: a consumed message's id is recorded in the same transaction as its effect.

Kafka delivers at least once and the outbox relay publishes at least once,
so every handler sees duplicates. The handler asks ``seen_before`` inside its
transaction; a duplicate is acknowledged and ignored. ``record`` inserts the
id with the effect; if two consumers race on one message (a rebalance in the
middle of handling), the primary key lets only one transaction commit and
the other fails with ``DuplicateMessageError``, is rolled back and is redelivered
as a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Table, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import DuplicateMessageError
from .outbox import utc_now
from .tables import MESSAGE_ID_LENGTH_MAX_CHARS


class Inbox:
    """Message ids already applied by this node; see the module docstring."""

    def __init__(self, table: Table, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._clock = clock

    def seen_before(self, session_or_connection: Session | Connection, message_id: str) -> bool:
        """True if a committed (or this transaction's) record already names ``message_id``."""
        _check_message_id(message_id)
        query = select(exists().where(self._table.c.message_id == message_id))
        return bool(session_or_connection.execute(query).scalar_one())

    def record(
        self,
        session_or_connection: Session | Connection,
        message_id: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Record ``message_id`` as applied, in the caller's transaction."""
        _check_message_id(message_id)
        if partition < 0 or offset < 0:
            raise ValueError(f"partition {partition} and offset {offset} must not be negative")
        statement = insert(self._table).values(
            message_id=message_id,
            topic=topic,
            kafka_partition=partition,
            kafka_offset=offset,
            received_at=self._clock(),
        )
        try:
            session_or_connection.execute(statement)
        except IntegrityError as error:
            raise DuplicateMessageError(
                f"message {message_id!r} is already in the inbox"
            ) from error


def _check_message_id(message_id: str) -> None:
    if not message_id or len(message_id) > MESSAGE_ID_LENGTH_MAX_CHARS:
        raise ValueError(
            f"message id must be 1 to {MESSAGE_ID_LENGTH_MAX_CHARS} characters, "
            f"got {len(message_id)}"
        )
