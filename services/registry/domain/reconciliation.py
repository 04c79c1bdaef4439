"""Automatic reconciliation: one Party's signed holdings snapshot against this node's records.

The ITL reconciled every registry in three steps: totals first, then the blocks
behind them, then the transactions that explain a difference. A node here does
the same for each Party's snapshot, from three sources it has:

- the **snapshot**: per (approach, originating registry, vintage, metric) the
  total the Party's ledger holds and the serial ranges behind it (Party level,
  no account), plus the Party's transfers still in flight (their ranges are not
  compared: they move while the snapshot is taken) and the ids of the transfers
  it has committed with each counterparty;
- the **unit index** (``registry.domain.custody``): which Party holds every range
  according to the federation's signed public records;
- **this node's own bilateral transfer records** with that Party.

``reconcile`` is pure: it neither waits nor reads. Whoever calls it must pass an
index that has read the logs to their end (a snapshot is taken after the
records it reflects were written), and the ranges the index changed for records
signed after the snapshot may have been taken (``recent``, from an
``IndexJournal``): a caught-up index may already hold a transfer the Party
committed, or units it issued, after its snapshot. Those ranges, like the
ranges in flight, are not compared for that snapshot; every other difference of
ONE snapshot is a finding.

Why that is exact: every record that changes the index is signed by its sender
at the moment its ledger change is committed (the coordinator's COMMIT in the
transaction that commits the transfer, a unit record in the transaction that
issues, cancels or uses). A change the snapshot's Party made after ``taken_at``
is therefore signed after ``taken_at``; a change another Party made towards it
(a COMMIT of a transfer to it) is either in the snapshot's in-flight list (it
voted before ``taken_at``) or signed after the Party's vote, so after
``taken_at``. Clocks differ between nodes by at most ``CLOCK_SKEW_MARGIN_S``, so
"signed after ``taken_at - CLOCK_SKEW_MARGIN_S``" catches every such change.

The finding kinds are reason codes (``a6wire.reasons``, the reconciliation
group): operators match on them in logs and metrics like on every other code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from a6wire.reasons import ReasonCode
from registry.domain.custody import RangeKey, Segment

Interval = tuple[int, int]

# How far apart two nodes' clocks may be, plus how long a ledger transaction may
# run between signing its record (COMMIT decision, unit record, both sealed
# inside it) and committing. Federation hosts keep NTP time (within milliseconds);
# beyond this margin an honest Party's change made just after its snapshot can be
# reported as a difference.
CLOCK_SKEW_MARGIN_S = 2.0
CLOCK_SKEW_MARGIN = timedelta(seconds=CLOCK_SKEW_MARGIN_S)
# The journal of recent index changes keeps at most this many changes...
INDEX_JOURNAL_CHANGES_MAX = 100_000
# ...signed at most this long before the latest one folded in: longer than the age
# at which a snapshot is no longer compared (a few periods), so any snapshot fresh
# enough to compare is covered unless the journal overflowed by count.
INDEX_JOURNAL_AGE_S = 3_600.0
INDEX_JOURNAL_AGE = timedelta(seconds=INDEX_JOURNAL_AGE_S)


@dataclass(frozen=True, slots=True, order=True)
class GroupKey:
    """The ITL's unit of comparison: units alike in approach, origin, vintage and metric."""

    cooperative_approach_id: str
    originating_registry_id: str
    vintage: int
    metric: str

    @property
    def range_key(self) -> RangeKey:
        return RangeKey(self.cooperative_approach_id, self.originating_registry_id)


@dataclass(frozen=True, slots=True)
class HoldingGroup:
    """What a Party's ledger holds of one group: a total and the ranges behind it."""

    key: GroupKey
    total: int
    ranges: tuple[Interval, ...]
    # False when the snapshot had to leave ranges out (its size bound): only the
    # total is then compared for this group.
    ranges_complete: bool = True


class Direction(StrEnum):
    OUTGOING = "OUTGOING"
    INCOMING = "INCOMING"


@dataclass(frozen=True, slots=True)
class TransferRef:
    """One cross-border transfer as a Party's records state it, at Party level."""

    transfer_id: str
    coordinator_party: str
    counterparty: str
    direction: Direction
    # (approach, originating registry, first, last) of each block it moves.
    ranges: tuple[tuple[str, str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class HoldingsView:
    """A Party's snapshot as the comparison needs it (``a6wire.messages.HoldingsSnapshot``)."""

    party: str
    groups: tuple[HoldingGroup, ...]
    # Transfers not final at the Party when it took the snapshot.
    in_flight: tuple[TransferRef, ...] = ()
    # False when the snapshot could not list every transfer in flight (its size
    # bound): its ranges and totals are then not compared, only its transfers.
    in_flight_complete: bool = True
    # Ranges whose announcement on the unit log the Party had not yet published.
    unannounced: tuple[tuple[str, str, int, int], ...] = ()
    # Transfers the Party has committed (most recent first, up to the snapshot's bound).
    committed: tuple[TransferRef, ...] = ()
    committed_complete: bool = True


class LocalStatus(StrEnum):
    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


@dataclass(frozen=True, slots=True)
class LocalTransfer:
    """This node's own record of a transfer with the Party under reconciliation."""

    ref: TransferRef
    status: LocalStatus


@dataclass(frozen=True, slots=True)
class Finding:
    """One discrepancy; every field is public (Party level, as in the AEF)."""

    kind: ReasonCode
    # The Party whose snapshot was compared, then every other Party concerned.
    parties: tuple[str, ...]
    cooperative_approach_id: str = ""
    originating_registry_id: str = ""
    first_serial: int | None = None
    last_serial: int | None = None
    vintage: int | None = None
    metric: str | None = None
    transfer_ids: tuple[str, ...] = ()
    # For TOTALS_MISMATCH: the snapshot's and the index's quantity.
    stated: int | None = None
    expected: int | None = None
    detail: str = ""

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two findings the same discrepancy, seen in two comparisons."""
        return (
            self.kind,
            self.parties,
            self.cooperative_approach_id,
            self.originating_registry_id,
            self.first_serial,
            self.last_serial,
            self.transfer_ids,
            self.stated,
            self.expected,
        )


# -- the journal of recent index changes ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexChange:
    """A range the unit index changed, and when the record that changed it was signed."""

    key: RangeKey
    first: int
    last: int
    signed_at: datetime
    # (transfer id, coordinator Party) when a COMMIT decision moved the range.
    transfer: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RecentChanges:
    """What records signed after a snapshot's cutoff changed: left out of its comparison."""

    ranges: tuple[tuple[RangeKey, Interval], ...] = ()
    # (transfer id, coordinator Party) of the transfers committed by those records.
    transfers: frozenset[tuple[str, str]] = frozenset()


class IndexJournal:
    """The unit index's recent changes, bounded by count and age.

    ``horizon``: every change the index holds and the journal does not list was
    signed at or before it. A snapshot whose cutoff (``taken_at`` less the clock
    margin) is before the horizon cannot be compared exactly (``covers``).
    Pure: the caller passes every time.
    """

    def __init__(
        self,
        horizon: datetime,
        *,
        changes_max: int = INDEX_JOURNAL_CHANGES_MAX,
        age: timedelta = INDEX_JOURNAL_AGE,
    ) -> None:
        self.horizon = horizon
        self._changes_max = changes_max
        self._age = age
        self._changes: deque[IndexChange] = deque()

    def record(
        self,
        key: RangeKey,
        first: int,
        last: int,
        *,
        signed_at: datetime,
        folded_at: datetime,
        transfer: tuple[str, str] | None = None,
    ) -> None:
        """One change, folded in at ``folded_at`` (our clock) from a record signed at ``signed_at``.

        A record cannot have been signed later than we read it, give or take the
        clock margin: a later stamp (a sender's wrong clock, or a hostile one
        keeping its ranges out of every comparison) counts as ``folded_at`` plus
        the margin.
        """
        signed = min(signed_at, folded_at + CLOCK_SKEW_MARGIN)
        self._changes.append(IndexChange(key, first, last, signed, transfer))
        while self._changes and (
            len(self._changes) > self._changes_max
            or self._changes[0].signed_at < signed - self._age
        ):
            dropped = self._changes.popleft()
            self.horizon = max(self.horizon, dropped.signed_at)

    def covers(self, cutoff: datetime) -> bool:
        """Whether every change signed after ``cutoff`` is listed."""
        return self.horizon <= cutoff

    def changed_after(self, cutoff: datetime) -> RecentChanges:
        """The ranges changed, and transfers committed, by records signed after ``cutoff``."""
        later = [c for c in self._changes if c.signed_at > cutoff]
        return RecentChanges(
            tuple((c.key, (c.first, c.last)) for c in later),
            frozenset(c.transfer for c in later if c.transfer is not None),
        )

    def __len__(self) -> int:
        return len(self._changes)


def cutoff_of(taken_at: datetime) -> datetime:
    """Changes signed after this may postdate a snapshot taken at ``taken_at``."""
    return taken_at - CLOCK_SKEW_MARGIN


# -- intervals -----------------------------------------------------------------------------


def normalised(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, overlapping and adjacent intervals joined."""
    out: list[Interval] = []
    for first, last in sorted(intervals):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def minus(intervals: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """``intervals`` without any serial of ``removed``."""
    cut = normalised(removed)
    out: list[Interval] = []
    for first, last in normalised(intervals):
        cursor = first
        for low, high in cut:
            if high < cursor or low > last:
                continue
            if low > cursor:
                out.append((cursor, low - 1))
            cursor = max(cursor, high + 1)
            if cursor > last:
                break
        if cursor <= last:
            out.append((cursor, last))
    return out


def intersect(left: Iterable[Interval], right: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    b = normalised(right)
    for first, last in normalised(left):
        for low, high in b:
            start, end = max(first, low), min(last, high)
            if start <= end:
                out.append((start, end))
    return normalised(out)


def quantity(intervals: Iterable[Interval]) -> int:
    return sum(last - first + 1 for first, last in normalised(intervals))


# -- the comparison ------------------------------------------------------------------------


@dataclass(slots=True)
class _IndexSide:
    """The index's segments of one range key, read for one Party."""

    segments: list[Segment] = field(default_factory=list)

    def held_by(self, party: str, vintage: int, metric: str) -> list[Interval]:
        return normalised(
            (s.first, s.last)
            for s in self.segments
            if dict(s.holdings).get(party, 0) >= 1 and s.vintage == vintage and s.metric == metric
        )

    def pieces(self, first: int, last: int) -> list[tuple[Interval, Segment | None]]:
        """``first``..``last`` cut at the segments' ends; None where nothing was recorded."""
        out: list[tuple[Interval, Segment | None]] = []
        cursor = first
        for segment in self.segments:
            if segment.last < first or segment.first > last:
                continue
            if segment.first > cursor:
                out.append(((cursor, segment.first - 1), None))
            start, end = max(segment.first, cursor), min(segment.last, last)
            out.append(((start, end), segment))
            cursor = end + 1
        if cursor <= last:
            out.append(((cursor, last), None))
        return out


def _index_by_key(index: Iterable[tuple[RangeKey, Segment]]) -> dict[RangeKey, _IndexSide]:
    sides: dict[RangeKey, _IndexSide] = {}
    for key, segment in index:
        sides.setdefault(key, _IndexSide()).segments.append(segment)
    for side in sides.values():
        side.segments.sort(key=lambda s: s.first)
    return sides


def _excluded(view: HoldingsView, key: RangeKey) -> list[Interval]:
    """Ranges not compared: in flight at the Party, or announced but not yet published."""
    ranges = [r for transfer in view.in_flight for r in transfer.ranges] + list(view.unannounced)
    return normalised(
        (first, last)
        for approach, registry, first, last in ranges
        if RangeKey(approach, registry) == key
    )


def _recent(recent: Sequence[tuple[RangeKey, Interval]], key: RangeKey) -> list[Interval]:
    return normalised(interval for changed, interval in recent if changed == key)


def _group_keys(view: HoldingsView, sides: dict[RangeKey, _IndexSide]) -> list[GroupKey]:
    """Every group the snapshot states or the index says the Party holds units of."""
    keys = {group.key for group in view.groups}
    for range_key, side in sides.items():
        for segment in side.segments:
            if (
                dict(segment.holdings).get(view.party, 0) >= 1
                and segment.vintage is not None
                and segment.metric is not None
            ):
                keys.add(
                    GroupKey(
                        range_key.cooperative_approach_id,
                        range_key.originating_registry_id,
                        segment.vintage,
                        segment.metric,
                    )
                )
    return sorted(keys)


def reconcile(
    view: HoldingsView,
    index: Iterable[tuple[RangeKey, Segment]],
    ours: Sequence[LocalTransfer],
    *,
    us: str,
    ours_complete: bool = True,
    recent: RecentChanges = RecentChanges(),
) -> list[Finding]:
    """Findings of one snapshot: totals first, then ranges, then transfers (the ITL's order).

    ``ours`` are this node's records of transfers with the snapshot's Party;
    ``ours_complete`` False when they were cut at a bound (then a transfer the
    Party committed and we have no record of is not reported: it may be older).
    ``recent``: the ranges the index changed, and the transfers committed, by
    records signed after the snapshot's cutoff
    (``IndexJournal.changed_after(cutoff_of(taken_at))``).
    """
    transfers = _transfer_findings(view, ours, us, ours_complete, recent.transfers)
    if not view.in_flight_complete:
        return transfers
    sides = _index_by_key(index)
    stated = {group.key: group for group in view.groups}
    totals: list[Finding] = []
    ranges: list[Finding] = []
    for key in _group_keys(view, sides):
        side = sides.get(key.range_key, _IndexSide())
        changed = _recent(recent.ranges, key.range_key)
        excluded = normalised(_excluded(view, key.range_key) + changed)
        group = stated.get(key, HoldingGroup(key, 0, ()))
        by_index = minus(side.held_by(view.party, key.vintage, key.metric), excluded)
        by_snapshot = minus(group.ranges, excluded)
        expected = quantity(by_index)
        claimed = (
            quantity(by_snapshot)
            if group.ranges_complete
            else group.total - quantity(intersect(excluded, by_index))
        )
        # A total without all its ranges cannot be corrected for a range that
        # changed after the snapshot (which side holds it is unknown): not compared.
        if claimed != expected and (group.ranges_complete or not changed):
            totals.append(_totals_finding(view.party, key, claimed, expected))
        if group.ranges_complete:
            ranges.extend(_range_findings(view.party, key, side, by_snapshot, by_index, ours))
    ranges.extend(_double_holdings(view.party, sides, ours))
    return totals + _distinct(ranges) + transfers


def _totals_finding(party: str, key: GroupKey, claimed: int, expected: int) -> Finding:
    return Finding(
        ReasonCode.TOTALS_MISMATCH,
        (party,),
        key.cooperative_approach_id,
        key.originating_registry_id,
        vintage=key.vintage,
        metric=key.metric,
        stated=claimed,
        expected=expected,
        detail=f"{party} states {claimed} units, the unit index {expected}",
    )


def _explaining(
    ours: Sequence[LocalTransfer], key: RangeKey, first: int, last: int
) -> tuple[str, ...]:
    """Our transfers that moved (part of) the range: what may explain a difference."""
    return tuple(
        sorted(
            {
                local.ref.transfer_id
                for local in ours
                for approach, registry, low, high in local.ref.ranges
                if RangeKey(approach, registry) == key and low <= last and high >= first
            }
        )
    )


def _range_findings(
    party: str,
    key: GroupKey,
    side: _IndexSide,
    by_snapshot: list[Interval],
    by_index: list[Interval],
    ours: Sequence[LocalTransfer],
) -> list[Finding]:
    found: list[Finding] = []
    for first, last in minus(by_snapshot, by_index):
        for (low, high), segment in side.pieces(first, last):
            found.append(_claimed_finding(party, key, low, high, segment, ours))
    for first, last in minus(by_index, by_snapshot):
        found.append(
            Finding(
                ReasonCode.RANGE_MISMATCH,
                (party,),
                key.cooperative_approach_id,
                key.originating_registry_id,
                first,
                last,
                key.vintage,
                key.metric,
                _explaining(ours, key.range_key, first, last),
                detail=f"the unit index says {party} holds these units; its snapshot does not",
            )
        )
    return found


def _claimed_finding(
    party: str,
    key: GroupKey,
    first: int,
    last: int,
    segment: Segment | None,
    ours: Sequence[LocalTransfer],
) -> Finding:
    """A range the snapshot claims and the index does not give the Party: why not."""
    others = () if segment is None else tuple(p for p, c in segment.holdings if c >= 1)
    if segment is None or segment.issued == 0:
        kind, detail = ReasonCode.HELD_NOT_ISSUED, f"{party} holds units never announced as issued"
    elif others:
        kind = ReasonCode.DOUBLE_HOLDING
        detail = f"{party} holds units the unit index puts at {', '.join(others)}"
    else:
        kind = ReasonCode.RANGE_MISMATCH
        detail = f"{party} holds units the unit index does not give it (cancelled, used or moved)"
    return Finding(
        kind,
        (party, *(p for p in others if p != party)),
        key.cooperative_approach_id,
        key.originating_registry_id,
        first,
        last,
        key.vintage,
        key.metric,
        _explaining(ours, key.range_key, first, last),
        detail=detail,
    )


def _double_holdings(
    party: str, sides: dict[RangeKey, _IndexSide], ours: Sequence[LocalTransfer]
) -> list[Finding]:
    """Ranges the index itself puts at the Party and at someone else (or twice at the Party)."""
    found: list[Finding] = []
    for key, side in sorted(
        sides.items(),
        key=lambda item: (item[0].cooperative_approach_id, item[0].originating_registry_id),
    ):
        for segment in side.segments:
            counts = dict(segment.holdings)
            mine = counts.get(party, 0)
            others = tuple(p for p, c in segment.holdings if c >= 1 and p != party)
            if mine >= 1 and (others or mine > 1):
                found.append(
                    Finding(
                        ReasonCode.DOUBLE_HOLDING,
                        (party, *others),
                        key.cooperative_approach_id,
                        key.originating_registry_id,
                        segment.first,
                        segment.last,
                        segment.vintage,
                        segment.metric,
                        _explaining(ours, key, segment.first, segment.last),
                        detail="the unit index's own records put these units at two holdings",
                    )
                )
    return found


def _transfer_findings(
    view: HoldingsView,
    ours: Sequence[LocalTransfer],
    us: str,
    ours_complete: bool,
    committed_after: frozenset[tuple[str, str]] = frozenset(),
) -> list[Finding]:
    """Transfers between us and the Party that one side has committed and the other has not.

    A transfer whose COMMIT was signed after the snapshot's cutoff may be unknown
    to the Party when it took the snapshot (it had not voted yet): not compared.
    """
    theirs_committed = {
        (t.transfer_id, t.coordinator_party) for t in view.committed if t.counterparty == us
    }
    theirs_pending = {(t.transfer_id, t.coordinator_party) for t in view.in_flight}
    mine = {(local.ref.transfer_id, local.ref.coordinator_party): local for local in ours}
    found: list[Finding] = []
    if view.committed_complete:
        for transfer_key, local in sorted(mine.items()):
            if (
                local.status is LocalStatus.COMMITTED
                and transfer_key not in theirs_committed
                and transfer_key not in theirs_pending
                and transfer_key not in committed_after
            ):
                found.append(
                    _one_sided(view.party, us, local.ref, f"committed at {us}, not at {view.party}")
                )
    for ref in view.committed:
        if ref.counterparty != us:
            continue
        local_record = mine.get((ref.transfer_id, ref.coordinator_party))
        if local_record is None and not ours_complete:
            continue
        if local_record is None or local_record.status is LocalStatus.ABORTED:
            state = "no record" if local_record is None else "ABORTED"
            found.append(
                _one_sided(
                    view.party, us, ref, f"committed at {view.party}; {us} has {state} of it"
                )
            )
    return found


def _one_sided(party: str, us: str, ref: TransferRef, detail: str) -> Finding:
    first = min((low for _, _, low, _ in ref.ranges), default=None)
    last = max((high for _, _, _, high in ref.ranges), default=None)
    approach, registry = (ref.ranges[0][0], ref.ranges[0][1]) if ref.ranges else ("", "")
    return Finding(
        ReasonCode.TRANSFER_ONE_SIDED,
        (party, us),
        approach,
        registry,
        first,
        last,
        transfer_ids=(ref.transfer_id,),
        detail=detail,
    )


def _distinct(findings: Iterable[Finding]) -> list[Finding]:
    seen: dict[tuple[object, ...], Finding] = {}
    for finding in findings:
        seen.setdefault(finding.identity, finding)
    return list(seen.values())


__all__ = [
    "CLOCK_SKEW_MARGIN",
    "CLOCK_SKEW_MARGIN_S",
    "INDEX_JOURNAL_AGE",
    "INDEX_JOURNAL_AGE_S",
    "INDEX_JOURNAL_CHANGES_MAX",
    "Direction",
    "Finding",
    "GroupKey",
    "HoldingGroup",
    "HoldingsView",
    "IndexChange",
    "IndexJournal",
    "LocalStatus",
    "LocalTransfer",
    "RecentChanges",
    "TransferRef",
    "cutoff_of",
    "intersect",
    "minus",
    "normalised",
    "quantity",
    "reconcile",
]
