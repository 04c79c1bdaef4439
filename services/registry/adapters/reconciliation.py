"""Reconciliation's tables and its reads of the ledger, on the ledger's database.

- ``reconciliation_snapshots`` keeps the latest verified holdings snapshot of each
  Party (its signed bytes, as read from the snapshot topic);
- ``reconciliation_findings`` keeps every finding: which Party's snapshot showed
  it, when first and last, and whether the difference still lasts (``open``).

``ledger_state`` reads, in the unit of work's one transaction, what our own
snapshot states: the ranges the ledger holds (HELD or RESERVED) at Party level,
the transfers in flight (a PENDING reservation with its RESERVED or INCOMING
blocks, or a PENDING protocol record), the unit-log announcements still unsent
in the outbox, and the transfers the protocol records say are COMMITTED.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    update,
)

from a6wire.errors import WireError
from a6wire.identifiers import IdentifierError, parse_unique_identifier
from a6wire.messages import (
    SNAPSHOT_COMMITTED_TRANSFERS_MAX,
    Envelope,
    HoldingsSnapshot,
    UnitRecord,
)
from a6wire.reasons import ReasonCode
from a6wire.topics import snapshot_key
from a6wire.verification import decode_envelope, encode_envelope
from registry.adapters.database import SqlTransaction
from registry.adapters.messaging import MESSAGING_TABLES, Outbox
from registry.adapters.tables import AutoIncrementId, UtcDateTime, reservations, serial_blocks
from registry.adapters.tables import metadata as ledger_metadata
from registry.adapters.transfer_tables import protocol_transfers
from registry.application.reconciliation import (
    HeldRange,
    LedgerState,
    StoredFinding,
    counterparty_of,
)
from registry.domain.reconciliation import (
    Direction,
    Finding,
    LocalStatus,
    LocalTransfer,
    TransferRef,
)

SNAPSHOTS_TABLE_NAME = "reconciliation_snapshots"
FINDINGS_TABLE_NAME = "reconciliation_findings"
FINGERPRINT_LENGTH_CHARS = 64
DETAIL_LENGTH_MAX_CHARS = 500
MESSAGE_ID_HEADER = "message_id"
MESSAGE_TYPE_HEADER = "message_type"
# Blocks and records read for one snapshot; beyond the snapshot's own bounds, so
# that what is cut is cut by ``snapshot_of``, which says so in the snapshot.
LEDGER_ROWS_READ_MAX = 200_000


def define_reconciliation_tables(metadata: MetaData) -> tuple[Table, Table]:
    if SNAPSHOTS_TABLE_NAME in metadata.tables:
        return metadata.tables[SNAPSHOTS_TABLE_NAME], metadata.tables[FINDINGS_TABLE_NAME]
    snapshots = Table(
        SNAPSHOTS_TABLE_NAME,
        metadata,
        Column("party", String(3), primary_key=True),
        Column("snapshot_id", String(36), nullable=False),
        Column("taken_at", UtcDateTime(), nullable=False),
        Column("received_at", UtcDateTime(), nullable=False),
        Column("record", LargeBinary(), nullable=False),
    )
    findings = Table(
        FINDINGS_TABLE_NAME,
        metadata,
        Column("finding_id", AutoIncrementId, primary_key=True, autoincrement=True),
        Column("fingerprint", String(FINGERPRINT_LENGTH_CHARS), nullable=False, unique=True),
        Column("party", String(3), nullable=False),
        Column("kind", String(32), nullable=False),
        Column("parties", JSON(), nullable=False),
        Column("cooperative_approach_id", String(6), nullable=False),
        Column("originating_registry_id", String(5), nullable=False),
        Column("first_serial", BigInteger(), nullable=True),
        Column("last_serial", BigInteger(), nullable=True),
        Column("vintage", Integer(), nullable=True),
        Column("metric", String(200), nullable=True),
        Column("transfer_ids", JSON(), nullable=False),
        Column("stated", BigInteger(), nullable=True),
        Column("expected", BigInteger(), nullable=True),
        Column("detail", Text(), nullable=False),
        Column("first_seen_at", UtcDateTime(), nullable=False),
        Column("last_seen_at", UtcDateTime(), nullable=False),
        Column("open", Boolean(), nullable=False),
    )
    Index("ix_reconciliation_findings_party_open", findings.c.party, findings.c.open)
    return snapshots, findings


SNAPSHOTS_TABLE, FINDINGS_TABLE = define_reconciliation_tables(ledger_metadata)

_PRESENT_HELD = ("HELD", "RESERVED")
_IN_FLIGHT_BLOCKS = ("RESERVED", "INCOMING")


def fingerprint(party: str, finding: Finding) -> str:
    identity = [str(part) for part in (party, *finding.identity)]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


class SqlReconciliationRepository:
    """Reconciliation's reads and writes on one connection (one transaction)."""

    def __init__(
        self, connection: Connection, party: str, snapshot_topic: str, unit_log_topic: str
    ):
        self._connection = connection
        self._party = party
        self._snapshot_topic = snapshot_topic
        self._unit_log_topic = unit_log_topic
        self._outbox = Outbox(MESSAGING_TABLES.outbox)

    # -- our snapshot ------------------------------------------------------------------------

    def ledger_state(self) -> LedgerState:
        held = tuple(
            HeldRange(
                row.cooperative_approach_id,
                row.originating_registry_id,
                int(row.vintage),
                row.metric,
                int(row.first_serial),
                int(row.last_serial),
            )
            for row in self._connection.execute(
                select(serial_blocks)
                .where(serial_blocks.c.status.in_(_PRESENT_HELD))
                .limit(LEDGER_ROWS_READ_MAX)
            )
        )
        return LedgerState(held, self._in_flight(), self._unannounced(), self._committed())

    def _in_flight(self) -> tuple[TransferRef, ...]:
        refs: dict[tuple[str, str], TransferRef] = {}
        pending = self._connection.execute(
            select(reservations)
            .where(reservations.c.state == "PENDING")
            .limit(LEDGER_ROWS_READ_MAX)
        ).all()
        for row in pending:
            blocks = self._connection.execute(
                select(serial_blocks).where(
                    serial_blocks.c.transfer_id == row.transfer_id,
                    serial_blocks.c.status.in_(_IN_FLIGHT_BLOCKS),
                )
            ).all()
            refs[(row.transfer_id, row.coordinator_party)] = TransferRef(
                row.transfer_id,
                row.coordinator_party,
                row.counterparty_party,
                Direction(row.direction),
                tuple(
                    (
                        b.cooperative_approach_id,
                        b.originating_registry_id,
                        int(b.first_serial),
                        int(b.last_serial),
                    )
                    for b in blocks
                ),
            )
        for row in self._connection.execute(
            select(protocol_transfers)
            .where(protocol_transfers.c.status == "PENDING")
            .limit(LEDGER_ROWS_READ_MAX)
        ):
            refs.setdefault((row.transfer_id, row.coordinator_party), self._ref(row))
        return tuple(refs.values())

    def _ref(self, row: Any) -> TransferRef:
        outgoing = row.coordinator_party == self._party
        return TransferRef(
            row.transfer_id,
            row.coordinator_party,
            counterparty_of(self._party, row.from_party, row.to_party.split(",")),
            Direction.OUTGOING if outgoing else Direction.INCOMING,
            _summary_ranges(row.blocks),
        )

    def _unannounced(self) -> tuple[tuple[str, str, int, int], ...]:
        outbox = MESSAGING_TABLES.outbox
        found: list[tuple[str, str, int, int]] = []
        for row in self._connection.execute(
            select(outbox.c.value).where(
                outbox.c.topic == self._unit_log_topic, outbox.c.sent_at.is_(None)
            )
        ):
            try:
                record = decode_envelope(bytes(row.value)).payload
            except WireError:
                continue  # our own row; it will be quarantined by every reader
            if isinstance(record, UnitRecord):
                found.append(
                    (
                        record.cooperative_approach_id,
                        record.originating_registry_id,
                        record.first_serial,
                        record.last_serial,
                    )
                )
        return tuple(found)

    def _committed(self) -> tuple[TransferRef, ...]:
        rows = self._connection.execute(
            select(protocol_transfers)
            .where(protocol_transfers.c.status == "COMMITTED")
            .order_by(protocol_transfers.c.updated_at.desc())
            .limit(SNAPSHOT_COMMITTED_TRANSFERS_MAX + 1)
        )
        return tuple(self._ref(row) for row in rows)

    def queue_snapshot(self, envelope: Envelope) -> None:
        payload = envelope.payload
        if not isinstance(payload, HoldingsSnapshot):
            raise TypeError("not a holdings snapshot")
        self._outbox.add(
            self._connection,
            self._snapshot_topic,
            snapshot_key(payload.party),
            encode_envelope(envelope),
            {
                MESSAGE_ID_HEADER: str(envelope.message_id),
                MESSAGE_TYPE_HEADER: envelope.message_type.value,
            },
        )

    # -- everyone's snapshots ----------------------------------------------------------------

    def keep_snapshot(self, envelope: Envelope, received_at: datetime) -> bool:
        payload = envelope.payload
        if not isinstance(payload, HoldingsSnapshot):
            raise TypeError("not a holdings snapshot")
        where = SNAPSHOTS_TABLE.c.party == payload.party
        kept = self._connection.execute(
            select(SNAPSHOTS_TABLE.c.taken_at).where(where)
        ).scalar_one_or_none()
        values = {
            "snapshot_id": str(payload.transfer_id),
            "taken_at": payload.taken_at,
            "received_at": received_at,
            "record": encode_envelope(envelope),
        }
        if kept is None:
            self._connection.execute(insert(SNAPSHOTS_TABLE).values(party=payload.party, **values))
            return True
        if payload.taken_at <= kept:
            return False  # an older one, read late (a replay, or the topic's history)
        self._connection.execute(update(SNAPSHOTS_TABLE).where(where).values(**values))
        return True

    def latest_snapshots(self, received_before: datetime | None = None) -> list[Envelope]:
        query = select(SNAPSHOTS_TABLE.c.record).order_by(SNAPSHOTS_TABLE.c.party)
        if received_before is not None:
            query = query.where(SNAPSHOTS_TABLE.c.received_at < received_before)
        rows = self._connection.execute(query)
        return [decode_envelope(bytes(row.record)) for row in rows]

    def local_transfers(self, party: str, limit: int) -> list[LocalTransfer]:
        rows = self._connection.execute(
            select(protocol_transfers)
            .where(
                or_(
                    protocol_transfers.c.from_party == party,
                    protocol_transfers.c.to_party.contains(party),
                )
            )
            .order_by(protocol_transfers.c.created_at.desc())
            .limit(limit)
        )
        out: list[LocalTransfer] = []
        for row in rows:
            ref = self._ref(row)
            if ref.counterparty == party:
                out.append(LocalTransfer(ref, LocalStatus(row.status)))
        return out

    # -- findings ----------------------------------------------------------------------------

    def record_findings(
        self, party: str, findings: Sequence[Finding], now: datetime
    ) -> list[Finding]:
        table = FINDINGS_TABLE
        current = {fingerprint(party, finding): finding for finding in findings}
        known = {
            row.fingerprint: row
            for row in self._connection.execute(select(table).where(table.c.party == party))
        }
        new: list[Finding] = []
        for print_, finding in current.items():
            if print_ in known:
                self._connection.execute(
                    update(table)
                    .where(table.c.fingerprint == print_)
                    .values(last_seen_at=now, open=True)
                )
                if not known[print_].open:
                    new.append(finding)  # the difference is back
                continue
            new.append(finding)
            self._connection.execute(insert(table).values(**_row(party, finding, print_, now)))
        gone = [p for p, row in known.items() if row.open and p not in current]
        if gone:
            self._connection.execute(
                update(table).where(table.c.fingerprint.in_(gone)).values(open=False)
            )
        return new

    def findings(self, limit: int) -> list[StoredFinding]:
        table = FINDINGS_TABLE
        rows = self._connection.execute(
            select(table)
            .order_by(table.c.open.desc(), table.c.last_seen_at.desc(), table.c.finding_id)
            .limit(limit)
        )
        return [
            StoredFinding(
                Finding(
                    kind=ReasonCode(row.kind),
                    parties=tuple(row.parties),
                    cooperative_approach_id=row.cooperative_approach_id,
                    originating_registry_id=row.originating_registry_id,
                    first_serial=row.first_serial,
                    last_serial=row.last_serial,
                    vintage=row.vintage,
                    metric=row.metric,
                    transfer_ids=tuple(row.transfer_ids),
                    stated=row.stated,
                    expected=row.expected,
                    detail=row.detail,
                ),
                row.party,
                row.first_seen_at,
                row.last_seen_at,
                bool(row.open),
            )
            for row in rows
        ]


def _row(party: str, finding: Finding, print_: str, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint": print_,
        "party": party,
        "kind": finding.kind.value,
        "parties": list(finding.parties),
        "cooperative_approach_id": finding.cooperative_approach_id,
        "originating_registry_id": finding.originating_registry_id,
        "first_serial": finding.first_serial,
        "last_serial": finding.last_serial,
        "vintage": finding.vintage,
        "metric": finding.metric,
        "transfer_ids": list(finding.transfer_ids),
        "stated": finding.stated,
        "expected": finding.expected,
        "detail": finding.detail[:DETAIL_LENGTH_MAX_CHARS],
        "first_seen_at": now,
        "last_seen_at": now,
        "open": True,
    }


def _summary_ranges(blocks: Any) -> tuple[tuple[str, str, int, int], ...]:
    """The (approach, registry, first, last) of a protocol record's block summaries."""
    out: list[tuple[str, str, int, int]] = []
    for block in blocks or ():
        try:
            first = parse_unique_identifier(block["first_identifier"])
            last = parse_unique_identifier(block["last_identifier"])
        except (IdentifierError, KeyError, TypeError):
            continue
        out.append(
            (
                first.cooperative_approach_id,
                first.originating_registry_id,
                first.serial,
                last.serial,
            )
        )
    return tuple(out)


class SqlReconciliationUnitOfWork(SqlTransaction):
    """One transaction; driver errors become ``StorageUnavailableError``."""

    # Our snapshot reads several tables: they must be one point in time.
    repeatable_read = True
    reconciliation: SqlReconciliationRepository

    def __init__(
        self, engine: Engine, *, party: str, snapshot_topic: str, unit_log_topic: str
    ) -> None:
        super().__init__(engine)
        self._party = party
        self._snapshot_topic = snapshot_topic
        self._unit_log_topic = unit_log_topic

    def _opened(self, connection: Connection) -> None:
        self.reconciliation = SqlReconciliationRepository(
            connection, self._party, self._snapshot_topic, self._unit_log_topic
        )
