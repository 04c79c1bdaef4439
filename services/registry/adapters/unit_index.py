"""The federation unit log's writer and the unit index's tables, on the ledger's database.

- ``UnitLogPublisher`` turns the ledger's announcements into signed ``UNITS``
  records and writes them to the outbox on the ledger's own connection, so an
  issuance and its announcement commit together or not at all.
- ``unit_index_segments`` holds the index (``registry.domain.custody``): one row
  per segment of one (approach, originating registry) interval map.
- ``unit_index_offsets`` holds the next offset the index will read per topic
  partition; it is written in the transaction that folds the record in, so a
  restart resumes where the index stopped, and a record read again (the consumer
  group's commit comes after ours) is skipped.
- ``unit_index_applied`` holds the key of every record folded in (a unit record's
  sender and id, a transfer's full key): a record republished by its sender's
  relay, or a later decision for a transfer already decided, changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)

from a6wire.messages import Envelope, UnitEvent, UnitRecord
from a6wire.topics import unit_log_key
from a6wire.verification import decode_envelope, encode_envelope
from registry.adapters.database import SqlTransaction
from registry.adapters.messaging import MESSAGING_TABLES, Outbox
from registry.adapters.messaging.tables import TOPIC_NAME_LENGTH_MAX_CHARS
from registry.adapters.tables import AutoIncrementId
from registry.adapters.tables import metadata as ledger_metadata
from registry.application.custody import announcement_of
from registry.domain.custody import RangeKey, Segment, UnitAnnouncement

SEGMENTS_TABLE_NAME = "unit_index_segments"
OFFSETS_TABLE_NAME = "unit_index_offsets"
APPLIED_TABLE_NAME = "unit_index_applied"
APPROACH_ID_LENGTH_MAX_CHARS = 64
REGISTRY_ID_LENGTH_MAX_CHARS = 32
METRIC_LENGTH_MAX_CHARS = 200
RECORD_KEY_LENGTH_MAX_CHARS = 128

MESSAGE_ID_HEADER = "message_id"
MESSAGE_TYPE_HEADER = "message_type"


def define_unit_index_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    if SEGMENTS_TABLE_NAME in metadata.tables:
        return (
            metadata.tables[SEGMENTS_TABLE_NAME],
            metadata.tables[OFFSETS_TABLE_NAME],
            metadata.tables[APPLIED_TABLE_NAME],
        )
    segments = Table(
        SEGMENTS_TABLE_NAME,
        metadata,
        Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        Column("cooperative_approach_id", String(APPROACH_ID_LENGTH_MAX_CHARS), nullable=False),
        Column("originating_registry_id", String(REGISTRY_ID_LENGTH_MAX_CHARS), nullable=False),
        Column("first_serial", BigInteger(), nullable=False),
        Column("last_serial", BigInteger(), nullable=False),
        Column("issued", Integer(), nullable=False),
        Column("vintage", Integer(), nullable=True),
        Column("metric", String(METRIC_LENGTH_MAX_CHARS), nullable=True),
        # [[party, net count], ...], sorted by Party, zeros left out.
        Column("holdings", JSON(), nullable=False),
        Column("left_circulation", Integer(), nullable=False),
        # [[party, departures], ...]: who announced the range leaving circulation.
        Column("departures", JSON(), nullable=False),
    )
    Index(
        "ix_unit_index_segments_range",
        segments.c.cooperative_approach_id,
        segments.c.originating_registry_id,
        segments.c.first_serial,
    )
    offsets = Table(
        OFFSETS_TABLE_NAME,
        metadata,
        Column("topic", String(TOPIC_NAME_LENGTH_MAX_CHARS), nullable=False),
        Column("kafka_partition", Integer(), nullable=False),
        Column("next_offset", BigInteger(), nullable=False),
        PrimaryKeyConstraint("topic", "kafka_partition"),
    )
    applied = Table(
        APPLIED_TABLE_NAME,
        metadata,
        Column("record_key", String(RECORD_KEY_LENGTH_MAX_CHARS), primary_key=True),
    )
    return segments, offsets, applied


SEGMENTS_TABLE, OFFSETS_TABLE, APPLIED_TABLE = define_unit_index_tables(ledger_metadata)


# -- the writer ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitLogRow:
    """One signed ``UNITS`` record as the outbox stores it (topic, key, value, headers)."""

    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str]


class UnitLogPublisher:
    """Signs announcements and queues them on the unit log through the outbox.

    ``rows`` is the one place an announcement becomes a signed record; ``write``
    puts those rows in the SQL outbox, and the in-memory twin
    (``registry.adapters.transfer_unit_of_work.OutboxUnitLog``) in its own.
    """

    def __init__(
        self,
        seal: Callable[[UnitRecord, datetime], Envelope],
        topic: str,
        clock: Callable[[], datetime],
        *,
        record_ids: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._seal = seal
        self._topic = topic
        self._clock = clock
        self._record_ids = record_ids
        self._outbox = Outbox(MESSAGING_TABLES.outbox)
        # Set by the edge once it runs: pokes the relay after a commit.
        self.on_commit: Callable[[], None] | None = None

    @property
    def topic(self) -> str:
        return self._topic

    def rows(self, announcements: Sequence[UnitAnnouncement]) -> list[UnitLogRow]:
        now = self._clock()
        rows = []
        for announcement in announcements:
            envelope = self._seal(_wire(announcement, self._record_ids()), now)
            rows.append(
                UnitLogRow(
                    self._topic,
                    unit_log_key(announcement.originating_registry_id),
                    encode_envelope(envelope),
                    {
                        MESSAGE_ID_HEADER: str(envelope.message_id),
                        MESSAGE_TYPE_HEADER: envelope.message_type.value,
                    },
                )
            )
        return rows

    def write(self, connection: Connection, announcements: Sequence[UnitAnnouncement]) -> None:
        for row in self.rows(announcements):
            self._outbox.add(connection, row.topic, row.key, row.value, row.headers)

    def committed(self) -> None:
        if self.on_commit is not None:
            self.on_commit()


def _wire(announcement: UnitAnnouncement, record_id: uuid.UUID) -> UnitRecord:
    return UnitRecord(
        transfer_id=record_id,
        event=UnitEvent(announcement.event.value),
        party=announcement.party,
        cooperative_approach_id=announcement.cooperative_approach_id,
        originating_registry_id=announcement.originating_registry_id,
        first_serial=announcement.first_serial,
        last_serial=announcement.last_serial,
        quantity=announcement.last_serial - announcement.first_serial + 1,
        vintage=announcement.vintage,
        metric=announcement.metric,
        authorisation_id=announcement.authorisation_id,
        authorisation_version=announcement.authorisation_version,
    )


class SqlUnitLog:
    """The ledger unit of work's ``unit_log``: announcements join its transaction."""

    def __init__(self, connection: Connection, publisher: UnitLogPublisher | None) -> None:
        self._connection = connection
        self._publisher = publisher
        self.wrote = False

    def announce(self, announcements: Sequence[UnitAnnouncement]) -> None:
        # API-only mode (no key, no directory): this node is in no federation to tell.
        if self._publisher is None or not announcements:
            return
        self._publisher.write(self._connection, announcements)
        self.wrote = True

    @property
    def can_announce(self) -> bool:
        return self._publisher is not None

    def announced(self) -> list[UnitAnnouncement]:
        """Every announcement in this node's outbox, sent or not (its rows are never deleted)."""
        if self._publisher is None:
            return []
        outbox = MESSAGING_TABLES.outbox
        rows = self._connection.execute(
            select(outbox.c.value).where(outbox.c.topic == self._publisher.topic)
        ).scalars()
        found = []
        for value in rows:
            record = decode_envelope(value).payload
            if isinstance(record, UnitRecord):
                found.append(announcement_of(record))
        return found


# -- the index -----------------------------------------------------------------------------


class SqlUnitIndexRepository:
    """The index's rows, on one connection (one transaction)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _where(self, key: RangeKey):  # type: ignore[no-untyped-def]
        return and_(
            SEGMENTS_TABLE.c.cooperative_approach_id == key.cooperative_approach_id,
            SEGMENTS_TABLE.c.originating_registry_id == key.originating_registry_id,
        )

    def segments(self, key: RangeKey, first: int, last: int) -> list[Segment]:
        """The segments overlapping or touching ``first``..``last``."""
        rows = self._connection.execute(
            select(SEGMENTS_TABLE)
            .where(
                self._where(key),
                SEGMENTS_TABLE.c.first_serial <= last + 1,
                SEGMENTS_TABLE.c.last_serial >= first - 1,
            )
            .order_by(SEGMENTS_TABLE.c.first_serial)
        ).mappings()
        return [_segment(row) for row in rows]

    def replace(self, key: RangeKey, old: Sequence[Segment], new: Sequence[Segment]) -> None:
        for segment in old:
            self._connection.execute(
                delete(SEGMENTS_TABLE).where(
                    self._where(key), SEGMENTS_TABLE.c.first_serial == segment.first
                )
            )
        if new:
            self._connection.execute(
                insert(SEGMENTS_TABLE),
                [
                    {
                        "cooperative_approach_id": key.cooperative_approach_id,
                        "originating_registry_id": key.originating_registry_id,
                        "first_serial": segment.first,
                        "last_serial": segment.last,
                        "issued": segment.issued,
                        "vintage": segment.vintage,
                        "metric": segment.metric,
                        "holdings": [list(pair) for pair in segment.holdings],
                        "left_circulation": segment.left_circulation,
                        "departures": [list(pair) for pair in segment.departures],
                    }
                    for segment in new
                ],
            )

    def all_segments(self) -> list[tuple[RangeKey, Segment]]:
        rows = self._connection.execute(
            select(SEGMENTS_TABLE).order_by(
                SEGMENTS_TABLE.c.cooperative_approach_id,
                SEGMENTS_TABLE.c.originating_registry_id,
                SEGMENTS_TABLE.c.first_serial,
            )
        ).mappings()
        return [
            (
                RangeKey(row["cooperative_approach_id"], row["originating_registry_id"]),
                _segment(row),
            )
            for row in rows
        ]

    def claim(self, record_key: str) -> bool:
        """Mark a record folded in; False if it was already."""
        found = self._connection.execute(
            select(APPLIED_TABLE.c.record_key).where(APPLIED_TABLE.c.record_key == record_key)
        ).first()
        if found is not None:
            return False
        self._connection.execute(insert(APPLIED_TABLE).values(record_key=record_key))
        return True

    def offsets(self) -> dict[tuple[str, int], int]:
        rows = self._connection.execute(select(OFFSETS_TABLE)).mappings()
        return {(row["topic"], row["kafka_partition"]): int(row["next_offset"]) for row in rows}

    def advance(self, topic: str, partition: int, next_offset: int) -> None:
        where = and_(OFFSETS_TABLE.c.topic == topic, OFFSETS_TABLE.c.kafka_partition == partition)
        current = self._connection.execute(
            select(OFFSETS_TABLE.c.next_offset).where(where)
        ).scalar_one_or_none()
        if current is None:
            self._connection.execute(
                insert(OFFSETS_TABLE).values(
                    topic=topic, kafka_partition=partition, next_offset=next_offset
                )
            )
        elif next_offset > current:
            self._connection.execute(
                update(OFFSETS_TABLE).where(where).values(next_offset=next_offset)
            )


def _segment(row: object) -> Segment:
    data = dict(row)  # type: ignore[call-overload]
    return Segment(
        first=int(data["first_serial"]),
        last=int(data["last_serial"]),
        issued=int(data["issued"]),
        vintage=data["vintage"],
        metric=data["metric"],
        holdings=tuple((str(party), int(count)) for party, count in data["holdings"]),
        left_circulation=int(data["left_circulation"]),
        departures=tuple((str(party), int(count)) for party, count in data["departures"]),
    )


class SqlUnitIndexUnitOfWork(SqlTransaction):
    """One transaction on the index; driver errors become ``StorageUnavailableError``."""

    index: SqlUnitIndexRepository

    def _opened(self, connection: Connection) -> None:
        self.index = SqlUnitIndexRepository(connection)
