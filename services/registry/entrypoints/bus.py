"""The Kafka entrypoint of the transfer protocol: thin subscribers over the handlers.

Each subscriber gets a record's raw bytes, decodes them into an ``a6wire``
envelope within the bounds of ``a6wire.decoding``, checks it, and calls ONE
handler, which records the message id in the inbox table in the same
transaction as its effect.

A record that can never apply is *refused*: bytes that do not decode, an
envelope that fails verification (unknown sender, bad signature, a sender in
the wrong role, a DECISION on an inbox, anything but a valid DECISION on the
decision topic), or a message its handler refuses for good (a ledger rule, a
broken ledger invariant, a handler bug). It is written to the quarantine table
with its reason code and coordinates, logged once and counted, and then
acknowledged, so the consumer commits past it: redelivering it would fail the
same way forever and block its partition, and on the decision topic, which
every member reads from the start, block it for every Party.

Only a failure of this node's own database is raised (``StorageUnavailableError``
from the adapters, or a race on one message, ``DuplicateMessageError``): the
record is redelivered, after a backoff, until the database answers. That
includes a failure to write the quarantine row itself, since committing past
a record nobody recorded would lose it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from a6wire.directory import FederationDirectory
from a6wire.errors import WireError
from a6wire.messages import Decision, Envelope, HoldingsSnapshot, Prepare, UnitRecord
from a6wire.reasons import ReasonCode
from a6wire.topics import snapshot_key
from a6wire.verification import decode_envelope, verify_envelope, verify_signature
from registry.adapters.messaging import DuplicateMessageError, RawKafkaRecord, RefusedRecord
from registry.application.custody import UnitIndex
from registry.application.federation import DirectoryBehindError
from registry.application.ports import StorageUnavailableError
from registry.application.transfers import (
    LedgerInvariantError,
    MessagePosition,
    NoticeEarlyError,
    Transfers,
)
from registry.domain.errors import DomainError
from registry.protocol.arbiter import decision_refusal

_log = structlog.get_logger(__name__)

# Failures after which a retry can succeed: the record is redelivered. The
# adapters translate their driver's errors into StorageUnavailableError;
# SQLAlchemyError is kept as a net for a path that does not yet, since refusing a
# valid record because the database blinked would lose it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StorageUnavailableError,
    DuplicateMessageError,
    SQLAlchemyError,
    # A first-transfer notice read before this node read its transfer's COMMIT:
    # redelivered until the transfer is final here (it always becomes final).
    NoticeEarlyError,
    # A member or key this node has not read yet on the directory topic: redelivered
    # until the directory is read to its end (registry.application.federation).
    DirectoryBehindError,
)
# Refusals a directory version still unread could turn into an acceptance.
DIRECTORY_DEPENDENT_REASONS = frozenset(
    {
        ReasonCode.UNKNOWN_SENDER,
        ReasonCode.BAD_SIGNATURE,
        ReasonCode.INVALID_VOTE_EVIDENCE,
        ReasonCode.INVALID_PREPARE_EVIDENCE,
    }
)


# Whether directory versions may wait unread, for a record sent at this time
# (registry.application.federation.LiveDirectory.is_behind).
DirectoryBehind = Callable[[datetime | None], bool]


def _never_behind(_sent_at: datetime | None = None) -> bool:
    return False


# How much of an error's text goes into a log line.
LOG_DETAIL_LENGTH_MAX_CHARS = 500


class TopicKind(StrEnum):
    """Which of a node's two subscriptions a record came from (a metric label)."""

    INBOX = "inbox"
    DECISION = "decision"
    UNIT_LOG = "unit_log"
    SNAPSHOT = "snapshot"


class QuarantineSink(Protocol):
    """Where refused records go (``registry.adapters.messaging.SqlQuarantine``)."""

    def record(self, refused: RefusedRecord) -> bool:
        """Store ``refused``; False if its coordinates are already stored."""
        ...


QuarantineObserver = Callable[[str, str], None]
"""Called with (topic kind, reason code) once per newly quarantined record."""

# The directory version to verify against: a fixed one, or the version the node
# holds at each call (registry.application.federation.LiveDirectory.current).
DirectorySource = FederationDirectory | Callable[[], FederationDirectory]


def _source(directory: DirectorySource) -> Callable[[], FederationDirectory]:
    if isinstance(directory, FederationDirectory):
        return lambda: directory
    return directory


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Refusal(Exception):  # noqa: N818 - internal control flow, never escapes this module
    def __init__(self, reason_code: str, detail: str, *, logged_with_trace: bool = False):
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail
        self.logged_with_trace = logged_with_trace


class TransferBus:
    """The inbox and decision subscribers' handlers of one node."""

    def __init__(
        self,
        transfers: Transfers,
        directory: DirectorySource,
        quarantine: QuarantineSink,
        *,
        on_quarantined: QuarantineObserver | None = None,
        now: Callable[[], datetime] = _utc_now,
        directory_behind: DirectoryBehind = _never_behind,
    ) -> None:
        self._transfers = transfers
        self._directory = _source(directory)
        self._directory_behind = directory_behind
        self._quarantine = quarantine
        self._now = now
        self.on_quarantined = on_quarantined
        # Set when this node runs the federation unit index: waits (bounded) until
        # the index has read the logs to their end, and says whether it did.
        self.custody_gate: CustodyGate | None = None

    @property
    def party(self) -> str:
        return self._transfers.party

    def _check_inbox(self, envelope: Envelope) -> None:
        try:
            # On an inbox a previous key counts until its deadline by this node's clock.
            verify_envelope(envelope, self._directory(), at=self._now())
        except WireError as error:
            _unless_directory_behind(error.reason_code, self._directory_behind, envelope)
            raise _Refusal(error.reason_code, str(error)) from error
        if isinstance(envelope.payload, Decision):
            raise _Refusal(ReasonCode.DECISION_ON_INBOX, "a DECISION belongs on the decision topic")
        if isinstance(envelope.payload, UnitRecord | HoldingsSnapshot):
            raise _Refusal(
                ReasonCode.UNIT_RECORD_MISPLACED,
                f"a {envelope.payload.type} record belongs on its federation topic",
            )

    def _verify_signature(self, envelope: Envelope) -> None:
        # A kept log: judged at the record's sent_at, the same for every reader.
        verify_signature(envelope, self._directory())

    def _check_decision(self, envelope: Envelope) -> None:
        # The arbiter's own rule: a record it refuses can never win, for any Party,
        # so quarantining it changes no winner (the handler judges it again).
        refusal = decision_refusal(envelope, self._verify_signature)
        if refusal is not None:
            _unless_directory_behind(refusal, self._directory_behind, envelope)
            raise _Refusal(refusal, "the record does not count as a decision")

    def handle_inbox_bytes(
        self,
        data: bytes,
        position: MessagePosition,
        key: bytes | None = None,
        custody_current: bool | None = None,
    ) -> None:
        """Synchronous core of the inbox subscriber (also what the unit tests drive)."""
        self._handle(TopicKind.INBOX, data, position, key, custody_current)

    def handle_decision_bytes(
        self, data: bytes, position: MessagePosition, key: bytes | None = None
    ) -> None:
        self._handle(TopicKind.DECISION, data, position, key)

    def _handle(
        self,
        kind: TopicKind,
        data: bytes,
        position: MessagePosition,
        key: bytes | None,
        custody_current: bool | None = None,
    ) -> None:
        envelope: Envelope | None = None
        try:
            envelope = _decoded(data)
            if kind is TopicKind.INBOX:
                self._check_inbox(envelope)
                handler: Callable[[Envelope, MessagePosition], None] = (
                    self._transfers.handle_inbox_envelope
                    if custody_current is None
                    else partial(
                        self._transfers.handle_inbox_envelope, custody_current=custody_current
                    )
                )
                self._guarded(handler, envelope, position)
            else:
                self._check_decision(envelope)
                self._guarded(self._transfers.handle_decision_record, envelope, position)
        except _Refusal as refusal:
            self._refuse(kind, data, position, key, envelope, refusal)

    def _guarded(
        self,
        handler: Callable[[Envelope, MessagePosition], None],
        envelope: Envelope,
        position: MessagePosition,
    ) -> None:
        try:
            handler(envelope, position)
        except TRANSIENT_ERRORS:
            raise
        # Deterministic: the same record would fail the same way on every retry.
        except LedgerInvariantError as error:
            raise _Refusal(ReasonCode.LEDGER_INVARIANT, str(error)) from error
        except DomainError as error:
            raise _Refusal(str(error.reason), str(error)) from error
        except WireError as error:
            raise _Refusal(error.reason_code, str(error)) from error
        except Exception as error:
            # A bug in a handler. Redelivering would hit it again forever; the
            # record is kept in quarantine, where an operator finds it, and an
            # inbox message is re-sent by its peer once the bug is fixed.
            raise _handler_bug(
                self.party, "handler failed on a record; it is quarantined", envelope, error
            ) from error

    def _refuse(
        self,
        kind: TopicKind,
        data: bytes,
        position: MessagePosition,
        key: bytes | None,
        envelope: Envelope | None,
        refusal: _Refusal,
    ) -> None:
        _quarantine(
            self._quarantine,
            self.on_quarantined,
            self.party,
            kind,
            data,
            position,
            key,
            envelope,
            refusal,
        )

    def is_new_prepare(self, data: bytes) -> bool:
        """A PREPARE this node has not answered yet: only its vote depends on custody.

        A coordinator re-sends its PREPARE until it hears back; the copies are
        answered from what this node already decided, so waiting for the index on
        each would only slow the inbox (after a broker outage, to a crawl).
        """
        try:
            payload = decode_envelope(data).payload
        except Exception:
            return False  # refused by the handler, which decodes it again
        if not isinstance(payload, Prepare):
            return False
        return not self._transfers.knows_transfer(payload.transfer_id, payload.coordinator_party)

    async def on_inbox(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        custody_current: bool | None = None
        if self.custody_gate is not None and await asyncio.to_thread(
            self.is_new_prepare, record.value
        ):
            # Here, on the event loop and outside any transaction: the handler's
            # worker thread opens its transaction only once the wait is over.
            custody_current = await self.custody_gate.wait_until_current()
        await asyncio.to_thread(
            self.handle_inbox_bytes, record.value, position, record.key, custody_current
        )

    async def on_decision(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        await asyncio.to_thread(self.handle_decision_bytes, record.value, position, record.key)


def _quarantine(
    quarantine: QuarantineSink,
    on_quarantined: QuarantineObserver | None,
    party: str,
    kind: TopicKind,
    data: bytes,
    position: MessagePosition,
    key: bytes | None,
    envelope: Envelope | None,
    refusal: _Refusal,
) -> None:
    transfer_id = None if envelope is None else str(envelope.transfer_id)
    refused = RefusedRecord(
        topic=position.topic,
        partition=position.partition,
        offset=position.offset,
        key=key,
        value=data,
        reason_code=refusal.reason_code,
        detail=refusal.detail,
        transfer_id=transfer_id,
    )
    # Raises StorageUnavailableError if the row cannot be written: the record
    # is then redelivered rather than committed past unrecorded.
    if not quarantine.record(refused):
        return  # a redelivery of a record already quarantined, logged and counted
    log_line = _log.error if refusal.logged_with_trace else _log.warning
    log_line(
        "record refused and quarantined",
        topic_kind=kind.value,
        topic=position.topic,
        partition=position.partition,
        offset=position.offset,
        reason_code=refusal.reason_code,
        detail=refusal.detail[:LOG_DETAIL_LENGTH_MAX_CHARS],
        size_bytes=len(data),
        transfer_id=transfer_id,
        party=party,
        message_type=None if envelope is None else envelope.message_type.value,
    )
    if on_quarantined is not None:
        on_quarantined(kind.value, refusal.reason_code)


class UnitIndexBus:
    """The unit index's two subscribers: the unit log and (again) the decision topic.

    A unit record that does not decode or verify (unknown sender, bad signature, a
    Party announcing for another, an issuance not from the originating registry,
    anything but a UNITS record) is quarantined and the index moves past it. On the
    decision topic the decision subscriber already quarantines what does not count;
    here the index folds in the winners and moves past everything else.
    """

    def __init__(
        self,
        index: UnitIndex,
        directory: DirectorySource,
        quarantine: QuarantineSink,
        *,
        party: str,
        on_quarantined: QuarantineObserver | None = None,
        directory_behind: DirectoryBehind = _never_behind,
    ) -> None:
        self._index = index
        self._directory_behind = directory_behind
        self._directory = _source(directory)
        self._quarantine = quarantine
        self.party = party
        self.on_quarantined = on_quarantined

    def handle_unit_bytes(
        self, data: bytes, position: MessagePosition, key: bytes | None = None
    ) -> None:
        envelope: Envelope | None = None
        try:
            envelope = _decoded(data)
            try:
                verify_envelope(envelope, self._directory())
            except WireError as error:
                _unless_directory_behind(error.reason_code, self._directory_behind, envelope)
                raise _Refusal(error.reason_code, str(error)) from error
            if not isinstance(envelope.payload, UnitRecord):
                raise _Refusal(
                    ReasonCode.UNIT_RECORD_MISPLACED, "only UNITS records belong on the unit log"
                )
            self._folded(self._index.handle_unit_record, envelope, position)
        except _Refusal as refusal:
            _quarantine(
                self._quarantine,
                self.on_quarantined,
                self.party,
                TopicKind.UNIT_LOG,
                data,
                position,
                key,
                envelope,
                refusal,
            )
            self._index.skip(position)

    def _folded(
        self,
        fold: Callable[[Envelope, MessagePosition], bool],
        envelope: Envelope,
        position: MessagePosition,
    ) -> None:
        try:
            fold(envelope, position)
        except TRANSIENT_ERRORS:
            raise  # the node's own database: redelivered after a backoff
        except Exception as error:
            # A bug in the fold: redelivering would hit it forever and hold the log.
            raise _handler_bug(
                self.party, "the unit index failed on a record; it is quarantined", envelope, error
            ) from error

    def handle_decision_bytes(
        self, data: bytes, position: MessagePosition, key: bytes | None = None
    ) -> None:
        envelope: Envelope | None = None
        try:
            envelope = _decoded(data)
            # A COMMIT signed with a key (or by a member) of a version still unread is
            # read again later: folded now, it would not count and the index would miss it.
            refusal = decision_refusal(
                envelope, lambda record: verify_signature(record, self._directory())
            )
            if refusal is not None:
                _unless_directory_behind(refusal, self._directory_behind, envelope)
            self._folded(self._index.handle_decision_record, envelope, position)
        except _Refusal as refusal:
            if envelope is not None:
                # Decoded, yet the fold failed: only this subscriber knows of it.
                _quarantine(
                    self._quarantine,
                    self.on_quarantined,
                    self.party,
                    TopicKind.DECISION,
                    data,
                    position,
                    key,
                    envelope,
                    refusal,
                )
            # Undecodable: the decision subscriber quarantines it.
            self._index.skip(position)

    async def on_unit_record(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        await asyncio.to_thread(self.handle_unit_bytes, record.value, position, record.key)

    async def on_decision(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        await asyncio.to_thread(self.handle_decision_bytes, record.value, position, record.key)


class SnapshotKeeper(Protocol):
    """Where verified snapshots go (``registry.application.reconciliation.Reconciliation``)."""

    def receive(self, envelope: Envelope) -> bool:
        """Keep it if newer than the one kept of its Party; False if not."""
        ...


class SnapshotBus:
    """Reconciliation's subscriber on the snapshot topic: keep each Party's latest snapshot.

    A record that does not decode or verify, is not a HOLDINGS_SNAPSHOT signed by
    the registry it speaks for, or is keyed by another Party than its own (which
    would let compaction drop that Party's real snapshot) is quarantined.
    """

    def __init__(
        self,
        reconciliation: SnapshotKeeper,
        directory: DirectorySource,
        quarantine: QuarantineSink,
        *,
        party: str,
        on_quarantined: QuarantineObserver | None = None,
        directory_behind: DirectoryBehind = _never_behind,
    ) -> None:
        self._reconciliation = reconciliation
        self._directory = _source(directory)
        self._directory_behind = directory_behind
        self._quarantine = quarantine
        self.party = party
        self.on_quarantined = on_quarantined
        # Told after a newer snapshot of some Party was kept (from a worker thread).
        self.on_kept: Callable[[], None] | None = None

    def handle_snapshot_bytes(
        self, data: bytes, position: MessagePosition, key: bytes | None = None
    ) -> None:
        envelope: Envelope | None = None
        try:
            envelope = _decoded(data)
            try:
                verify_envelope(envelope, self._directory())
            except WireError as error:
                _unless_directory_behind(error.reason_code, self._directory_behind, envelope)
                raise _Refusal(error.reason_code, str(error)) from error
            payload = envelope.payload
            if not isinstance(payload, HoldingsSnapshot):
                raise _Refusal(
                    ReasonCode.UNIT_RECORD_MISPLACED,
                    "only HOLDINGS_SNAPSHOT records belong on the snapshot topic",
                )
            if key != snapshot_key(payload.party):
                raise _Refusal(
                    ReasonCode.WRONG_ROLE, "a snapshot is keyed by the Party it speaks for"
                )
            try:
                kept = self._reconciliation.receive(envelope)
            except TRANSIENT_ERRORS:
                raise
            except Exception as error:
                raise _handler_bug(
                    self.party, "keeping a snapshot failed; it is quarantined", envelope, error
                ) from error
        except _Refusal as refusal:
            _quarantine(
                self._quarantine,
                self.on_quarantined,
                self.party,
                TopicKind.SNAPSHOT,
                data,
                position,
                key,
                envelope,
                refusal,
            )
            return
        if kept and self.on_kept is not None:
            self.on_kept()

    async def on_snapshot(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        await asyncio.to_thread(self.handle_snapshot_bytes, record.value, position, record.key)


class CustodyGate(Protocol):
    async def wait_until_current(self) -> bool:
        """Wait (bounded) until the unit index has read the logs to their current end."""
        ...


def _unless_directory_behind(
    reason_code: str, directory_behind: DirectoryBehind, envelope: Envelope
) -> None:
    """Raise ``DirectoryBehindError`` for a refusal an unread directory version could lift."""
    if reason_code in DIRECTORY_DEPENDENT_REASONS and directory_behind(envelope.sent_at):
        raise DirectoryBehindError(f"{reason_code} while the federation directory is being read")


def _handler_bug(party: str, event: str, envelope: Envelope, error: Exception) -> _Refusal:
    """Log a handler's unexpected error once, with its trace; the refusal quarantines."""
    _log.exception(
        event,
        transfer_id=str(envelope.transfer_id),
        party=party,
        message_type=envelope.message_type.value,
        message_id=str(envelope.message_id),
    )
    return _Refusal(
        ReasonCode.HANDLER_FAILED, f"{type(error).__name__}: {error}", logged_with_trace=True
    )


def _decoded(data: bytes) -> Envelope:
    try:
        return decode_envelope(data)
    except WireError as error:
        raise _Refusal(error.reason_code, str(error)) from error
    except Exception as error:
        # decode_envelope turns every bound it knows into a WireError; anything
        # else is a gap in it, and still no reason to hold the partition.
        _log.exception("the decoder failed on a record; it is quarantined")
        raise _Refusal(
            ReasonCode.UNDECODABLE, f"{type(error).__name__}: {error}", logged_with_trace=True
        ) from error
