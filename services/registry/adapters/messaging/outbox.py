"""The transactional outbox writer: messages commit with the state change that caused them.

``Outbox.add`` is called inside the caller's database transaction, on the
caller's ``Session`` or ``Connection``. If that transaction rolls back, the
message was never sent; if it commits, the relay will publish it, at least
once. Nothing here talks to Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, Table, insert
from sqlalchemy.orm import Session

from .errors import InvalidOutboxMessageError
from .tables import TOPIC_NAME_LENGTH_MAX_CHARS

# The producer's max_request_size (build_node_broker) bounds one record; a row
# larger than this could never be published and would block the relay forever,
# so it is refused while the caller can still roll back.
MESSAGE_SIZE_MAX_BYTES = 900 * 1024
HEADER_COUNT_MAX = 32

# Kafka's legal topic characters.
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Writes outbox rows on the caller's transaction; see the module docstring."""

    def __init__(self, table: Table, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._clock = clock

    def add(
        self,
        session_or_connection: Session | Connection,
        topic: str,
        key: bytes | str | None,
        value: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """Queue one record for ``topic`` in the caller's open transaction; return its id.

        The id is the publish order. The caller pokes the relay (``notify``)
        after its commit, or the relay finds the row at its next poll.
        """
        key_bytes = key.encode() if isinstance(key, str) else key
        header_map = dict(headers or {})
        _check_message(topic, key_bytes, value, header_map)
        result = session_or_connection.execute(
            insert(self._table)
            .values(
                topic=topic,
                key=key_bytes,
                value=value,
                headers=header_map,
                created_at=self._clock(),
                sent_at=None,
                attempt_count=0,
            )
            .returning(self._table.c.id)
        )
        return int(result.scalar_one())


def _check_message(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> None:
    """Refuse before commit what Kafka would refuse after it, when nobody could roll back."""
    if not _TOPIC_NAME.fullmatch(topic) or len(topic) > TOPIC_NAME_LENGTH_MAX_CHARS:
        raise InvalidOutboxMessageError(f"{topic!r} is not a legal Kafka topic name")
    if not isinstance(value, bytes):
        raise InvalidOutboxMessageError(
            f"value must be bytes (a serialised envelope), not {type(value)}"
        )
    size_bytes = len(value) + len(key or b"") + sum(len(k) + len(v) for k, v in headers.items())
    if size_bytes > MESSAGE_SIZE_MAX_BYTES:
        raise InvalidOutboxMessageError(
            f"message of {size_bytes} bytes exceeds {MESSAGE_SIZE_MAX_BYTES} bytes"
        )
    if len(headers) > HEADER_COUNT_MAX:
        raise InvalidOutboxMessageError(f"{len(headers)} headers exceed {HEADER_COUNT_MAX}")
    for name, header_value in headers.items():
        if not isinstance(name, str) or not isinstance(header_value, str):
            raise InvalidOutboxMessageError(f"header {name!r} must map a str to a str")
