"""The federation unit index at this node: fold public records in, answer custody questions.

Two subscriptions feed it (``registry.entrypoints.bus.UnitIndexBus``): the unit
log (issuances, cancellations, uses, each signed by the registry that announces
it) and the decision topic (each winning COMMIT carries the coordinator's signed
PREPARE: its serial ranges moved from the coordinator's Party to the acquiring
registry's). Each record is folded in by ``registry.domain.custody`` in ONE
transaction with the next offset of its partition and its own key, so a restart
resumes where the index stopped and a record seen twice changes nothing.

For the decision topic the index applies the arbiter's rule itself: the first
record of a transfer (by its full key) that counts as a decision wins, and only
a winning COMMIT moves anything. Every node reads one partition in one order, so
every node's index agrees.

Writes are serialised by one lock: the two subscriptions run in worker threads,
and two transactions rewriting the same segments must not interleave.

The index also keeps, in memory, a bounded journal of the ranges it changed and
when the record behind each change was signed (``IndexJournal``): reconciliation
leaves out of a snapshot's comparison the ranges changed by records signed after
the snapshot may have been taken. After a restart the journal knows nothing of
the changes folded in before, so it covers only snapshots taken a clock margin
after those could have been signed (its horizon).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from a6wire.identifiers import registry_party
from a6wire.messages import Decision, Envelope, Outcome, Prepare, UnitRecord
from registry.application.transfers.ports import MessagePosition
from registry.domain.custody import (
    Change,
    RangeKey,
    Segment,
    UnitAnnouncement,
    UnitEventKind,
    apply_change,
    change_of,
    check_custody,
    movement,
)
from registry.domain.errors import ReasonCode
from registry.domain.reconciliation import CLOCK_SKEW_MARGIN, IndexJournal, RecentChanges
from registry.protocol.arbiter import EnvelopeVerifier, decision_refusal


class UnitIndexRepository(Protocol):
    def segments(self, key: RangeKey, first: int, last: int) -> list[Segment]:
        """The segments overlapping or touching ``first``..``last``."""
        ...

    def replace(self, key: RangeKey, old: Sequence[Segment], new: Sequence[Segment]) -> None: ...

    def all_segments(self) -> list[tuple[RangeKey, Segment]]: ...

    def claim(self, record_key: str) -> bool:
        """Mark a record folded in; False if it was already."""
        ...

    def offsets(self) -> dict[tuple[str, int], int]: ...

    def advance(self, topic: str, partition: int, next_offset: int) -> None: ...


class UnitIndexUnitOfWork(Protocol):
    @property
    def index(self) -> UnitIndexRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


# Told (topic, partition, next offset) after each record is folded in or skipped.
OffsetObserver = Callable[[str, int, int], None]


def announcement_of(record: UnitRecord) -> UnitAnnouncement:
    return UnitAnnouncement(
        event=UnitEventKind(record.event.value),
        party=record.party,
        cooperative_approach_id=record.cooperative_approach_id,
        originating_registry_id=record.originating_registry_id,
        first_serial=record.first_serial,
        last_serial=record.last_serial,
        vintage=record.vintage,
        metric=record.metric,
        authorisation_id=record.authorisation_id,
        authorisation_version=record.authorisation_version,
    )


def committed_moves(decision: Decision) -> list[tuple[RangeKey, Change]]:
    """What a winning COMMIT moved, from the PREPARE it carries (the arbiter checked it)."""
    if decision.outcome is not Outcome.COMMIT or decision.prepare is None:
        return []
    prepare = decision.prepare.payload
    if not isinstance(prepare, Prepare):
        return []
    to_party = registry_party(prepare.to_registry_id)
    return [
        (
            RangeKey(block.cooperative_approach_id, block.originating_registry_id),
            movement(block.first_serial, block.last_serial, prepare.coordinator_party, to_party),
        )
        for block in prepare.blocks
    ]


class UnitIndex:
    """See the module docstring."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitIndexUnitOfWork],
        verify: EnvelopeVerifier,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._unit_of_work = unit_of_work
        self._verify = verify
        self._clock = clock
        self._lock = threading.Lock()
        # Started under the lock before the first fold or read (``_journal_started``).
        self._journal: IndexJournal | None = None
        self.on_advanced: OffsetObserver | None = None

    def _journal_started(self) -> IndexJournal:
        """The journal; the caller holds the lock.

        An index that has folded nothing yet will journal every change it holds.
        One that resumes after a restart holds changes folded before it started,
        signed at the latest (by their senders' clocks) a clock margin after now.
        """
        if self._journal is None:
            uow = self._unit_of_work()
            with uow:
                resumed = bool(uow.index.offsets())
            horizon = (
                self._clock() + CLOCK_SKEW_MARGIN if resumed else datetime.min.replace(tzinfo=UTC)
            )
            self._journal = IndexJournal(horizon)
        return self._journal

    def _fold(
        self,
        position: MessagePosition,
        record_key: str | None,
        changes: Iterable[tuple[RangeKey, Change]],
        signed_at: datetime | None = None,
        transfer: tuple[str, str] | None = None,
    ) -> bool:
        """One transaction: the changes (once per record key) and the partition's offset."""
        applied = False
        with self._lock:
            journal = self._journal_started()
            folded: list[tuple[RangeKey, Change]] = []
            uow = self._unit_of_work()
            with uow:
                if record_key is not None and uow.index.claim(record_key):
                    applied = True
                    for key, change in changes:
                        old = uow.index.segments(key, change.first, change.last)
                        uow.index.replace(key, old, apply_change(old, change))
                        folded.append((key, change))
                uow.index.advance(position.topic, position.partition, position.offset + 1)
                uow.commit()
            if folded and signed_at is not None:
                now = self._clock()
                for key, change in folded:
                    journal.record(
                        key,
                        change.first,
                        change.last,
                        signed_at=signed_at,
                        folded_at=now,
                        transfer=transfer,
                    )
        if self.on_advanced is not None:
            self.on_advanced(position.topic, position.partition, position.offset + 1)
        return applied

    def handle_unit_record(self, envelope: Envelope, position: MessagePosition) -> bool:
        """Fold in one verified unit record (the edge checked signature and role)."""
        record = envelope.payload
        if not isinstance(record, UnitRecord):
            raise TypeError("not a unit record")
        announcement = announcement_of(record)
        key = RangeKey(announcement.cooperative_approach_id, announcement.originating_registry_id)
        record_key = f"U:{envelope.sender_party}:{envelope.message_id}"
        return self._fold(position, record_key, [(key, change_of(announcement))], envelope.sent_at)

    def handle_decision_record(self, envelope: Envelope, position: MessagePosition) -> bool:
        """The first record of a transfer that counts as a decision wins; a COMMIT moves units."""
        decision = envelope.payload
        if not isinstance(decision, Decision) or decision_refusal(envelope, self._verify):
            # Not a decision that counts: it neither wins nor blocks (the decision
            # subscriber quarantines it); the index only moves past it.
            return self._fold(position, None, [])
        record_key = f"T:{decision.coordinator_party}:{decision.transfer_id}"
        return self._fold(
            position,
            record_key,
            committed_moves(decision),
            envelope.sent_at,
            (str(decision.transfer_id), decision.coordinator_party),
        )

    def skip(self, position: MessagePosition) -> None:
        """A record refused for good (quarantined): the index moves past it."""
        self._fold(position, None, [])

    def offsets(self) -> dict[tuple[str, int], int]:
        uow = self._unit_of_work()
        with uow:
            return uow.index.offsets()

    def custody_refusals(self, prepare: Prepare) -> tuple[str, ...]:
        """Why the PREPARE's sender may not transfer its blocks, from this index."""
        found: list[str] = []
        uow = self._unit_of_work()
        with uow:
            for block in prepare.blocks:
                key = RangeKey(block.cooperative_approach_id, block.originating_registry_id)
                segments = uow.index.segments(key, block.first_serial, block.last_serial)
                found.extend(
                    check_custody(
                        segments,
                        block.first_serial,
                        block.last_serial,
                        sender=prepare.coordinator_party,
                        vintage=block.vintage,
                        metric=block.metric,
                    )
                )
        return tuple(dict.fromkeys(found))

    def holdings(self) -> list[tuple[RangeKey, Segment]]:
        uow = self._unit_of_work()
        with uow:
            return uow.index.all_segments()

    def holdings_with_changes(
        self, cutoffs: Sequence[datetime]
    ) -> tuple[list[tuple[RangeKey, Segment]], list[RecentChanges | None]]:
        """The holdings and, per cutoff, what records signed after it changed.

        One read under the fold lock, so no change is in the holdings and missing
        from the journal. None for a cutoff the journal does not cover.
        """
        with self._lock:
            journal = self._journal_started()
            holdings = self.holdings()
            changes = [
                journal.changed_after(cutoff) if journal.covers(cutoff) else None
                for cutoff in cutoffs
            ]
        return holdings, changes


__all__ = [
    "ReasonCode",
    "UnitIndex",
    "UnitIndexRepository",
    "UnitIndexUnitOfWork",
    "announcement_of",
    "committed_moves",
]
