"""Automatic reconciliation at this node: publish our snapshot, compare everyone's.

Every ``REGISTRY_RECONCILIATION_PERIOD_S`` (``registry.settings``) the node

1. reads its own ledger in one transaction (Party level: the ranges it holds per
   approach, originating registry, vintage and metric; the transfers still in
   flight; the unit-log announcements still in its outbox; the transfers it has
   committed) and queues the signed ``HoldingsSnapshot`` through the outbox, on
   the snapshot topic keyed by its Party;
2. waits (bounded) until its unit index has read the unit log and the decision
   topic to their end, then compares the latest snapshot of every Party (its own
   included) with the index and with its own transfer records with that Party
   (``registry.domain.reconciliation.reconcile``), if it is fresh (taken within
   ``stale_after``, a few periods). The ranges the index changed for records
   signed after the snapshot may have been taken (``taken_at`` less the clock
   margin, from the index's journal) are left out, as are the snapshot's ranges
   in flight; every other difference is a finding, from ONE snapshot. A
   snapshot the journal does not cover (taken before a restart of this node, or
   older than the journal's bounds) is not compared, with one log line.

Findings are kept in the node's database (open while the difference lasts),
counted, logged once when new, and shown by ``GET /v1/reconciliation``, the
public page and ``registry-node reconcile``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

import structlog

from a6wire.messages import (
    SNAPSHOT_COMMITTED_TRANSFERS_MAX,
    SNAPSHOT_GROUPS_MAX,
    SNAPSHOT_IN_FLIGHT_TRANSFERS_MAX,
    SNAPSHOT_RANGES_MAX,
    Envelope,
    HoldingsGroup,
    HoldingsSnapshot,
    SnapshotDirection,
    SnapshotRange,
    SnapshotTransfer,
)
from registry.application.custody import UnitIndex
from registry.domain.custody import RangeKey, Segment
from registry.domain.reconciliation import (
    Direction,
    Finding,
    GroupKey,
    HoldingGroup,
    HoldingsView,
    LocalTransfer,
    RecentChanges,
    TransferRef,
    cutoff_of,
    normalised,
    reconcile,
)

_log = structlog.get_logger(__name__)

# A snapshot older than this (by its own clock against ours) is not compared; the
# composition root passes a few reconciliation periods.
STALE_AFTER_DEFAULT = timedelta(minutes=15)
# Our own transfer records with one Party read for one comparison (the most recent).
LOCAL_TRANSFERS_COMPARED_MAX = 10 * SNAPSHOT_COMMITTED_TRANSFERS_MAX
# Findings one report lists (the most recent first).
REPORT_FINDINGS_MAX = 1_000


# -- what the ledger says, as read for a snapshot -------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldRange:
    """A range the ledger holds (HELD or RESERVED), at Party level."""

    cooperative_approach_id: str
    originating_registry_id: str
    vintage: int
    metric: str
    first_serial: int
    last_serial: int


@dataclass(frozen=True, slots=True)
class LedgerState:
    """One consistent read of this node's ledger for its snapshot."""

    held: tuple[HeldRange, ...]
    in_flight: tuple[TransferRef, ...]
    unannounced: tuple[tuple[str, str, int, int], ...]
    # Most recent first, at most SNAPSHOT_COMMITTED_TRANSFERS_MAX + 1 (to tell completeness).
    committed: tuple[TransferRef, ...]


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as kept: which Party's snapshot showed it, since when, and whether it lasts."""

    finding: Finding
    party: str
    first_seen_at: datetime
    last_seen_at: datetime
    open: bool


@dataclass(frozen=True, slots=True)
class PartyComparison:
    """When a Party's snapshot was last compared here, and what it was."""

    party: str
    snapshot_id: str
    taken_at: datetime
    compared_at: datetime
    differences: int


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    parties: tuple[PartyComparison, ...]
    findings: tuple[StoredFinding, ...]


class ReconciliationRepository(Protocol):
    def ledger_state(self) -> LedgerState: ...

    def queue_snapshot(self, envelope: Envelope) -> None:
        """Add our signed snapshot to the outbox, in this transaction."""
        ...

    def keep_snapshot(self, envelope: Envelope, received_at: datetime) -> bool:
        """Keep a Party's snapshot if it is newer than the one kept; False if not."""
        ...

    def latest_snapshots(self, received_before: datetime | None = None) -> list[Envelope]:
        """Each Party's latest snapshot; only those kept before ``received_before`` if given."""
        ...

    def local_transfers(self, party: str, limit: int) -> list[LocalTransfer]:
        """Our records of transfers with ``party``, most recent first."""
        ...

    def record_findings(
        self, party: str, findings: Sequence[Finding], now: datetime
    ) -> list[Finding]:
        """Keep ``party``'s current findings (closing the others); return the new ones."""
        ...

    def findings(self, limit: int) -> list[StoredFinding]: ...


class ReconciliationUnitOfWork(Protocol):
    @property
    def reconciliation(self) -> ReconciliationRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


Seal = Callable[[HoldingsSnapshot, datetime], Envelope]
FindingObserver = Callable[[Finding], None]


# -- the snapshot, from the ledger state ------------------------------------------------------


def _range(values: tuple[str, str, int, int]) -> SnapshotRange:
    approach, registry, first, last = values
    return SnapshotRange(
        cooperative_approach_id=approach,
        originating_registry_id=registry,
        first_serial=first,
        last_serial=last,
    )


def _transfer(ref: TransferRef) -> SnapshotTransfer:
    return SnapshotTransfer(
        transfer_id=uuid.UUID(ref.transfer_id),
        coordinator_party=ref.coordinator_party,
        counterparty=ref.counterparty,
        direction=SnapshotDirection(ref.direction.value),
        ranges=tuple(_range(r) for r in ref.ranges),
    )


def snapshot_of(
    state: LedgerState, *, party: str, registry_id: str, taken_at: datetime
) -> HoldingsSnapshot:
    """The snapshot payload, within its bounds: what does not fit is marked incomplete."""
    budget = SNAPSHOT_RANGES_MAX
    in_flight = state.in_flight[:SNAPSHOT_IN_FLIGHT_TRANSFERS_MAX]
    budget -= sum(len(t.ranges) for t in in_flight)
    unannounced = state.unannounced[: max(budget, 0)]
    budget -= len(unannounced)
    by_group: dict[GroupKey, list[tuple[int, int]]] = {}
    for held in state.held:
        key = GroupKey(
            held.cooperative_approach_id, held.originating_registry_id, held.vintage, held.metric
        )
        by_group.setdefault(key, []).append((held.first_serial, held.last_serial))
    groups: list[HoldingsGroup] = []
    for key in sorted(by_group)[:SNAPSHOT_GROUPS_MAX]:
        ranges = normalised(by_group[key])
        total = sum(last - first + 1 for first, last in ranges)
        kept = ranges[: max(budget, 0)]
        budget -= len(kept)
        groups.append(
            HoldingsGroup(
                cooperative_approach_id=key.cooperative_approach_id,
                originating_registry_id=key.originating_registry_id,
                vintage=key.vintage,
                metric=key.metric,
                total=total,
                ranges=tuple(kept),
                ranges_complete=len(kept) == len(ranges),
            )
        )
    committed = [
        SnapshotTransfer(
            transfer_id=uuid.UUID(ref.transfer_id),
            coordinator_party=ref.coordinator_party,
            counterparty=ref.counterparty,
            direction=SnapshotDirection(ref.direction.value),
        )
        for ref in state.committed[:SNAPSHOT_COMMITTED_TRANSFERS_MAX]
    ]
    return HoldingsSnapshot(
        transfer_id=uuid.uuid4(),
        party=party,
        registry_id=registry_id,
        taken_at=taken_at,
        groups=tuple(groups),
        in_flight=tuple(_transfer(t) for t in in_flight),
        in_flight_complete=len(in_flight) == len(state.in_flight)
        and len(unannounced) == len(state.unannounced)
        and len(by_group) <= SNAPSHOT_GROUPS_MAX,
        unannounced=tuple(_range(r) for r in unannounced),
        committed=tuple(committed),
        committed_complete=len(state.committed) <= SNAPSHOT_COMMITTED_TRANSFERS_MAX,
    )


def view_of(snapshot: HoldingsSnapshot) -> HoldingsView:
    """The snapshot as the pure comparison reads it."""

    def ref(transfer: SnapshotTransfer) -> TransferRef:
        return TransferRef(
            str(transfer.transfer_id),
            transfer.coordinator_party,
            transfer.counterparty,
            Direction(transfer.direction.value),
            tuple(
                (
                    r.cooperative_approach_id,
                    r.originating_registry_id,
                    r.first_serial,
                    r.last_serial,
                )
                for r in transfer.ranges
            ),
        )

    return HoldingsView(
        party=snapshot.party,
        groups=tuple(
            HoldingGroup(
                GroupKey(g.cooperative_approach_id, g.originating_registry_id, g.vintage, g.metric),
                g.total,
                tuple(g.ranges),
                g.ranges_complete,
            )
            for g in snapshot.groups
        ),
        in_flight=tuple(ref(t) for t in snapshot.in_flight),
        in_flight_complete=snapshot.in_flight_complete,
        unannounced=tuple(
            (r.cooperative_approach_id, r.originating_registry_id, r.first_serial, r.last_serial)
            for r in snapshot.unannounced
        ),
        committed=tuple(ref(t) for t in snapshot.committed),
        committed_complete=snapshot.committed_complete,
    )


# -- the service -------------------------------------------------------------------------------


class Reconciliation:
    """See the module docstring."""

    def __init__(
        self,
        unit_of_work: Callable[[], ReconciliationUnitOfWork],
        index: UnitIndex,
        seal: Seal,
        *,
        party: str,
        registry_id: str,
        clock: Callable[[], datetime],
        stale_after: timedelta = STALE_AFTER_DEFAULT,
    ) -> None:
        self._stale_after = stale_after
        self._unit_of_work = unit_of_work
        self._index = index
        self._seal = seal
        self.party = party
        self._registry_id = registry_id
        self._clock = clock
        # Per Party, the id of the snapshot last compared (or skipped) here.
        self._previous: dict[str, str] = {}
        self._compared: dict[str, PartyComparison] = {}
        # Told of each new finding (the metrics counter); set by the entrypoint.
        self.on_new_finding: FindingObserver | None = None
        # Pokes the relay after our snapshot is queued; set by the entrypoint.
        self.on_outbox_commit: Callable[[], None] | None = None

    def publish_snapshot(self) -> HoldingsSnapshot:
        """Read the ledger and queue our signed snapshot, in one transaction."""
        now = self._clock()
        uow = self._unit_of_work()
        with uow:
            state = uow.reconciliation.ledger_state()
            snapshot = snapshot_of(
                state, party=self.party, registry_id=self._registry_id, taken_at=now
            )
            uow.reconciliation.queue_snapshot(self._seal(snapshot, now))
            uow.commit()
        _log.info(
            "holdings snapshot queued",
            party=self.party,
            snapshot_id=str(snapshot.transfer_id),
            taken_at=now.isoformat(),
        )
        if self.on_outbox_commit is not None:
            self.on_outbox_commit()
        return snapshot

    def receive(self, envelope: Envelope) -> bool:
        """Keep a verified snapshot (the edge checked signature and sender)."""
        if not isinstance(envelope.payload, HoldingsSnapshot):
            raise TypeError("not a holdings snapshot")
        uow = self._unit_of_work()
        with uow:
            kept = uow.reconciliation.keep_snapshot(envelope, self._clock())
            uow.commit()
        return kept

    def now(self) -> datetime:
        """This service's clock, the one that stamps a kept snapshot's ``received_at``."""
        return self._clock()

    def compare(self, received_before: datetime | None = None) -> list[Finding]:
        """Compare every Party's latest snapshot; return the findings new at this node.

        The caller has waited for the unit index to read the logs to the end offsets
        it took at ``received_before`` or later. Only snapshots kept before then are
        compared: a snapshot reflects records its Party had on the logs before taking
        it, so those records are within the offsets waited for. A snapshot kept
        during the wait may reflect records after them; the next round compares it.
        """
        uow = self._unit_of_work()
        with uow:
            snapshots = uow.reconciliation.latest_snapshots(received_before)
        now = self._clock()
        fresh = [
            envelope.payload
            for envelope in snapshots
            if isinstance(envelope.payload, HoldingsSnapshot)
            # An old snapshot (the topic's history read by a node that joins, or a
            # Party that stopped publishing) is not compared with today's index.
            and now - envelope.payload.taken_at <= self._stale_after
        ]
        index, changes = self._index.holdings_with_changes(
            [cutoff_of(snapshot.taken_at) for snapshot in fresh]
        )
        new: list[Finding] = []
        for snapshot, recent in zip(fresh, changes, strict=True):
            new.extend(self._compare_one(snapshot, index, recent))
        return new

    def _compare_one(
        self,
        snapshot: HoldingsSnapshot,
        index: Sequence[tuple[RangeKey, Segment]],
        recent: RecentChanges | None,
    ) -> list[Finding]:
        party = snapshot.party
        snapshot_id = str(snapshot.transfer_id)
        if self._previous.get(party) == snapshot_id:
            return []  # compared already
        self._previous[party] = snapshot_id
        if recent is None:
            _log.warning(
                "reconciliation skipped a snapshot taken before the unit index's journal begins",
                party=self.party,
                snapshot_party=party,
                snapshot_id=snapshot_id,
                taken_at=snapshot.taken_at.isoformat(),
            )
            return []
        uow = self._unit_of_work()
        with uow:
            ours = uow.reconciliation.local_transfers(party, LOCAL_TRANSFERS_COMPARED_MAX + 1)
        ours_complete = len(ours) <= LOCAL_TRANSFERS_COMPARED_MAX
        findings = reconcile(
            view_of(snapshot),
            index,
            ours[:LOCAL_TRANSFERS_COMPARED_MAX],
            us=self.party,
            ours_complete=ours_complete,
            recent=recent,
        )
        now = self._clock()
        with self._unit_of_work() as uow:
            new = uow.reconciliation.record_findings(party, findings, now)
            uow.commit()
        self._compared[party] = PartyComparison(
            party, snapshot_id, snapshot.taken_at, now, len(findings)
        )
        for finding in new:
            _log.error(
                "reconciliation finding",
                kind=finding.kind.value,
                party=self.party,
                snapshot_party=party,
                snapshot_id=snapshot_id,
                parties=list(finding.parties),
                cooperative_approach_id=finding.cooperative_approach_id or None,
                originating_registry_id=finding.originating_registry_id or None,
                first_serial=finding.first_serial,
                last_serial=finding.last_serial,
                transfer_ids=list(finding.transfer_ids),
                stated=finding.stated,
                expected=finding.expected,
                detail=finding.detail,
            )
            if self.on_new_finding is not None:
                self.on_new_finding(finding)
        return new

    def report(self, limit: int = REPORT_FINDINGS_MAX) -> ReconciliationReport:
        uow = self._unit_of_work()
        with uow:
            findings = uow.reconciliation.findings(limit)
        return ReconciliationReport(
            tuple(self._compared[p] for p in sorted(self._compared)), tuple(findings)
        )


def counterparty_of(party: str, from_party: str, to_parties: Iterable[str]) -> str:
    """The other Party of a transfer as a node records it (the acquiring one, if we send)."""
    if from_party != party:
        return from_party
    others = [p for p in to_parties if p != party]
    return others[0] if others else from_party


__all__ = [
    "LOCAL_TRANSFERS_COMPARED_MAX",
    "HeldRange",
    "LedgerState",
    "PartyComparison",
    "Reconciliation",
    "ReconciliationReport",
    "ReconciliationRepository",
    "ReconciliationUnitOfWork",
    "StoredFinding",
    "counterparty_of",
    "snapshot_of",
    "view_of",
]
