"""Quarantine: records this node refused, kept where an operator can see them.

A record that can never apply (bytes that do not decode within the bounds of
``a6wire.decoding``, an envelope that fails verification, a message a handler
refused deterministically) must not hold its partition: redelivering it would
fail the same way forever, and on the decision topic, which every member reads
from the start, it would block that partition for every current and future
Party. The subscriber records it here, in one transaction of its own, and then
lets the consumer commit past it.

A row is keyed by the record's coordinates (topic, partition, offset), so a
record redelivered after a crash between this commit and the offset commit is
not a second row; ``record`` says whether the row is new, and only a new row
is logged and counted. Only a bounded prefix of the bytes is kept, with their
full size, so a hostile record cannot fill the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from registry.adapters.tables import UtcDateTime
from registry.adapters.tables import metadata as ledger_metadata
from registry.application.ports import StorageUnavailableError

from .outbox import utc_now
from .tables import TOPIC_NAME_LENGTH_MAX_CHARS

QUARANTINE_TABLE_NAME = "quarantine"
# What is kept of a refused record: enough to recognise it and to decode its
# start by hand, never the whole of an oversized one.
QUARANTINE_VALUE_PREFIX_MAX_BYTES = 4 * 1024
QUARANTINE_KEY_PREFIX_MAX_BYTES = 256
QUARANTINE_DETAIL_LENGTH_MAX_CHARS = 1_000
REASON_CODE_LENGTH_MAX_CHARS = 64
TRANSFER_ID_LENGTH_MAX_CHARS = 36


def define_quarantine_table(metadata: MetaData) -> Table:
    """Add ``quarantine`` to ``metadata`` (once) and return it."""
    if QUARANTINE_TABLE_NAME in metadata.tables:
        return metadata.tables[QUARANTINE_TABLE_NAME]
    return Table(
        QUARANTINE_TABLE_NAME,
        metadata,
        Column("topic", String(TOPIC_NAME_LENGTH_MAX_CHARS), nullable=False),
        Column("kafka_partition", Integer(), nullable=False),
        Column("kafka_offset", BigInteger(), nullable=False),
        Column("record_key", LargeBinary(), nullable=True),
        Column("reason_code", String(REASON_CODE_LENGTH_MAX_CHARS), nullable=False),
        Column("detail", String(QUARANTINE_DETAIL_LENGTH_MAX_CHARS), nullable=False),
        # Known when the bytes decoded far enough to name a transfer.
        Column("transfer_id", String(TRANSFER_ID_LENGTH_MAX_CHARS), nullable=True),
        Column("value_prefix", LargeBinary(), nullable=False),
        Column("value_size_bytes", Integer(), nullable=False),
        Column("quarantined_at", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("topic", "kafka_partition", "kafka_offset"),
    )


QUARANTINE_TABLE = define_quarantine_table(ledger_metadata)


@dataclass(frozen=True, slots=True)
class RefusedRecord:
    """One record the node will not apply, with where it was and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason_code: str
    detail: str
    transfer_id: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """A row of the quarantine table as read back."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    reason_code: str
    detail: str
    transfer_id: str | None
    value_prefix: bytes
    value_size_bytes: int
    quarantined_at: datetime


class InMemoryQuarantine:
    """The quarantine of the in-memory node (unit tests, the simulator): same contract."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int, int], RefusedRecord] = {}

    def record(self, refused: RefusedRecord) -> bool:
        coordinates = (refused.topic, refused.partition, refused.offset)
        if coordinates in self._rows:
            return False
        self._rows[coordinates] = refused
        return True

    def refused(self) -> list[RefusedRecord]:
        """Every refused record, by coordinates."""
        return [self._rows[coordinates] for coordinates in sorted(self._rows)]


def _storable_text(text: str) -> str:
    """``text`` as every database stores it: no NUL (PostgreSQL refuses it), no lone
    surrogate (not encodable); a detail often quotes the hostile input itself."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class SqlQuarantine:
    """The quarantine table of one node's database; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        table: Table = QUARANTINE_TABLE,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._table = table
        self._clock = clock

    def record(self, refused: RefusedRecord) -> bool:
        """Store ``refused`` in its own transaction; False if its coordinates already are.

        Raises ``StorageUnavailableError`` if the database fails: the caller must
        then hold the partition, since committing past the record would lose it.
        """
        row = {
            "topic": refused.topic,
            "kafka_partition": refused.partition,
            "kafka_offset": refused.offset,
            "record_key": None
            if refused.key is None
            else refused.key[:QUARANTINE_KEY_PREFIX_MAX_BYTES],
            "reason_code": refused.reason_code[:REASON_CODE_LENGTH_MAX_CHARS],
            "detail": _storable_text(refused.detail)[:QUARANTINE_DETAIL_LENGTH_MAX_CHARS],
            "transfer_id": refused.transfer_id,
            "value_prefix": refused.value[:QUARANTINE_VALUE_PREFIX_MAX_BYTES],
            "value_size_bytes": len(refused.value),
            "quarantined_at": self._clock(),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(self._table).values(**row))
        except IntegrityError:
            if self._exists(refused.topic, refused.partition, refused.offset):
                return False
            raise StorageUnavailableError("the quarantine row could not be written") from None
        except SQLAlchemyError as error:
            raise StorageUnavailableError(f"quarantine: {type(error).__name__}") from error
        return True

    def rows(self, topic: str | None = None) -> list[QuarantinedRow]:
        """Every row (of ``topic``), by coordinates: for operators and tests."""
        table = self._table
        query = select(table).order_by(table.c.topic, table.c.kafka_partition, table.c.kafka_offset)
        if topic is not None:
            query = query.where(table.c.topic == topic)
        try:
            with self._engine.connect() as connection:
                found = connection.execute(query).all()
        except SQLAlchemyError as error:
            raise StorageUnavailableError(f"quarantine: {type(error).__name__}") from error
        return [
            QuarantinedRow(
                topic=row.topic,
                partition=row.kafka_partition,
                offset=row.kafka_offset,
                key=row.record_key,
                reason_code=row.reason_code,
                detail=row.detail,
                transfer_id=row.transfer_id,
                value_prefix=bytes(row.value_prefix),
                value_size_bytes=row.value_size_bytes,
                quarantined_at=row.quarantined_at,
            )
            for row in found
        ]

    def _exists(self, topic: str, partition: int, offset: int) -> bool:
        table = self._table
        query = select(table.c.kafka_offset).where(
            table.c.topic == topic,
            table.c.kafka_partition == partition,
            table.c.kafka_offset == offset,
        )
        try:
            with self._engine.connect() as connection:
                return connection.execute(query).first() is not None
        except SQLAlchemyError as error:
            raise StorageUnavailableError(f"quarantine: {type(error).__name__}") from error
