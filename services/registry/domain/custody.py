"""The federation unit index: which Party holds every serial range, from public records.

Pure core of PROTOCOL.md invariant 8 ("custody is checked, not assumed"). Every
node reads the federation unit log (issuances, cancellations and uses announced
by the registries) and the decision topic (each winning COMMIT carries the
coordinator's signed PREPARE: which ranges moved from which Party to which) and
folds them into interval maps, one per (cooperative approach, originating
registry), since serial numbers are unique only within that pair.

The records arrive over several topics and partitions, in no global order, so
the fold must not depend on their order. Each segment therefore keeps counts,
not a holder: how many times it was announced as issued, each Party's net count
(issued to it, plus moved in, minus moved out or retired by it), and how many
times it left circulation. Adding counts commutes, so once every record is
folded in the result is the same whatever order they came in; in an honest
federation exactly one Party has a net count of one for a range in circulation.
Segments are ranges, not units: memory grows with the number of distinct
ranges, and adjacent segments in the same state are merged back together.

``check_custody`` is what a receiver asks before it votes YES: is every range
of the PREPARE issued (once, by the registry its identifier names, with the
stated vintage and metric), still in circulation, held by the sending Party and
by nobody else? Each failure is its own ``ReasonCode``.

Why these reason codes are not in ``registry.domain.errors.ReasonCode``: that
list is the ledger's, and every code in it is produced by a ledger handler
(``tests/unit/application/handler_contract.py`` holds a scenario per code). A
custody refusal is not the ledger's: it is decided from the federation's public
records, by the transfer service, before the ledger is asked anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from registry.domain.blocks import SerialBlock
from registry.domain.errors import ReasonCode


@dataclass(frozen=True, slots=True)
class RangeKey:
    """Serial numbers are unique within one originating registry and approach."""

    cooperative_approach_id: str
    originating_registry_id: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A contiguous serial range whose every unit has the same counts."""

    first: int
    last: int
    issued: int = 0
    vintage: int | None = None
    metric: str | None = None
    # Party -> net count, sorted by Party, zeros left out.
    holdings: tuple[tuple[str, int], ...] = ()
    left_circulation: int = 0

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"segment {self.first}-{self.last} is empty")

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    def state(self) -> tuple[object, ...]:
        return (self.issued, self.vintage, self.metric, self.holdings, self.left_circulation)

    @property
    def empty(self) -> bool:
        return self.issued == 0 and not self.holdings and self.left_circulation == 0

    def holder(self) -> str | None:
        """The one Party holding the range, if the records say exactly that."""
        holding = [party for party, count in self.holdings if count != 0]
        if (
            self.issued == 1
            and self.left_circulation == 0
            and len(holding) == 1
            and dict(self.holdings)[holding[0]] == 1
        ):
            return holding[0]
        return None


@dataclass(frozen=True, slots=True)
class Change:
    """What one public record does to a serial range (counts to add)."""

    first: int
    last: int
    issued: int = 0
    vintage: int | None = None
    metric: str | None = None
    deltas: tuple[tuple[str, int], ...] = ()
    left_circulation: int = 0

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"change {self.first}-{self.last} is empty")


def issuance(first: int, last: int, party: str, vintage: int, metric: str) -> Change:
    return Change(first, last, issued=1, vintage=vintage, metric=metric, deltas=((party, 1),))


def movement(first: int, last: int, from_party: str, to_party: str) -> Change:
    return Change(first, last, deltas=((from_party, -1), (to_party, 1)))


def leaving_circulation(first: int, last: int, party: str) -> Change:
    return Change(first, last, deltas=((party, -1),), left_circulation=1)


def _add(
    holdings: tuple[tuple[str, int], ...], deltas: Iterable[tuple[str, int]]
) -> tuple[tuple[str, int], ...]:
    counts = dict(holdings)
    for party, delta in deltas:
        counts[party] = counts.get(party, 0) + delta
    return tuple(sorted((party, count) for party, count in counts.items() if count != 0))


def _changed(segment: Segment, change: Change) -> Segment:
    return replace(
        segment,
        issued=segment.issued + change.issued,
        # The first issuance fixes the attributes; a second one is visible in ``issued``.
        vintage=segment.vintage if segment.vintage is not None else change.vintage,
        metric=segment.metric if segment.metric is not None else change.metric,
        holdings=_add(segment.holdings, change.deltas),
        left_circulation=segment.left_circulation + change.left_circulation,
    )


def apply_change(segments: Sequence[Segment], change: Change) -> list[Segment]:
    """The segments after one change: split at its ends, counted, merged back.

    ``segments`` are sorted, non-overlapping; gaps are ranges nobody mentioned yet.
    Pass at least the segments that overlap or touch the change: those are the only
    ones returned changed (or merged); the others come back as they were.
    """
    result: list[Segment] = []
    cursor = change.first
    for segment in sorted(segments, key=lambda s: s.first):
        if segment.last < change.first or segment.first > change.last:
            result.append(segment)
            continue
        if segment.first < change.first:
            result.append(replace(segment, last=change.first - 1))
        start = max(segment.first, change.first)
        if cursor < start:
            result.append(_changed(Segment(cursor, start - 1), change))
        end = min(segment.last, change.last)
        result.append(_changed(replace(segment, first=start, last=end), change))
        cursor = end + 1
        if segment.last > change.last:
            result.append(replace(segment, first=change.last + 1))
    if cursor <= change.last:
        result.append(_changed(Segment(cursor, change.last), change))
    return merged(result)


def merged(segments: Iterable[Segment]) -> list[Segment]:
    """Sorted, empty segments dropped, adjacent segments in the same state joined."""
    out: list[Segment] = []
    for segment in sorted(segments, key=lambda s: s.first):
        if segment.empty:
            continue
        if out and out[-1].last + 1 == segment.first and out[-1].state() == segment.state():
            out[-1] = replace(out[-1], last=segment.last)
        else:
            out.append(segment)
    return out


def check_custody(
    segments: Sequence[Segment],
    first: int,
    last: int,
    *,
    sender: str,
    vintage: int,
    metric: str,
) -> tuple[ReasonCode, ...]:
    """Why ``sender`` may not transfer serials ``first``..``last`` (empty: it may)."""
    found: list[ReasonCode] = []
    cursor = first
    for segment in sorted(segments, key=lambda s: s.first):
        if segment.last < first or segment.first > last:
            continue
        if segment.first > cursor:
            found.append(ReasonCode.UNITS_NOT_ISSUED)
        cursor = max(cursor, segment.last + 1)
        found.extend(_segment_refusals(segment, sender, vintage, metric))
    if cursor <= last:
        found.append(ReasonCode.UNITS_NOT_ISSUED)
    return tuple(dict.fromkeys(found))


def _segment_refusals(segment: Segment, sender: str, vintage: int, metric: str) -> list[ReasonCode]:
    if segment.issued != 1 or segment.vintage != vintage or segment.metric != metric:
        return [ReasonCode.UNITS_NOT_ISSUED]
    if segment.left_circulation:
        return [ReasonCode.UNITS_OUT_OF_CIRCULATION]
    counts = dict(segment.holdings)
    if counts.get(sender, 0) != 1:
        return [ReasonCode.UNITS_NOT_HELD_BY_SENDER]
    if any(count != 0 for party, count in counts.items() if party != sender):
        # The sender holds it and the records say someone else does too.
        return [ReasonCode.UNITS_HELD_ELSEWHERE]
    return []


def holdings_by_party(segments: Iterable[Segment]) -> dict[str, list[tuple[int, int]]]:
    """Party -> the ranges it alone holds (a range with no single holder is left out)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for segment in merged(segments):
        holder = segment.holder()
        if holder is not None:
            out.setdefault(holder, []).append((segment.first, segment.last))
    return out


# -- what a registry announces about its own ledger -------------------------------------


class UnitEventKind(StrEnum):
    """The wire's ``UnitEvent``, as the ledger names what happened."""

    ISSUED = "ISSUED"
    CANCELLED = "CANCELLED"
    USED = "USED"


@dataclass(frozen=True, slots=True)
class UnitAnnouncement:
    """One Party-level public record of a range issued or leaving circulation.

    Written by the ledger in the transaction of the movement (the unit log port),
    signed and published by the adapter. No account or holder: Party level only.
    """

    event: UnitEventKind
    party: str
    cooperative_approach_id: str
    originating_registry_id: str
    first_serial: int
    last_serial: int
    vintage: int
    metric: str
    authorisation_id: str | None = None
    authorisation_version: int | None = None


def announcements(
    event: UnitEventKind, party: str, blocks: Iterable[SerialBlock]
) -> list[UnitAnnouncement]:
    return [
        UnitAnnouncement(
            event=event,
            party=party,
            cooperative_approach_id=block.attributes.cooperative_approach_id,
            originating_registry_id=block.attributes.originating_registry_id,
            first_serial=block.first_serial,
            last_serial=block.last_serial,
            vintage=block.attributes.vintage,
            metric=block.attributes.metric,
            authorisation_id=block.attributes.authorisation_id,
            authorisation_version=block.attributes.authorisation_version,
        )
        for block in blocks
    ]


def change_of(announcement: UnitAnnouncement) -> Change:
    """What a verified announcement does to the index."""
    first, last = announcement.first_serial, announcement.last_serial
    if announcement.event is UnitEventKind.ISSUED:
        return issuance(first, last, announcement.party, announcement.vintage, announcement.metric)
    return leaving_circulation(first, last, announcement.party)


# -- announcing what the ledger did before the unit log existed --------------------------


def _leaves_circulation(event: UnitEventKind) -> bool:
    return event is not UnitEventKind.ISSUED


def unannounced(
    expected: Iterable[UnitAnnouncement], announced: Iterable[UnitAnnouncement]
) -> list[UnitAnnouncement]:
    """The parts of ``expected`` that no announcement in ``announced`` covers yet.

    A range is covered by an announcement of the same Party, approach and
    originating registry, and of the same kind: an issuance by an issuance, units
    leaving circulation by a cancellation or a use (a range leaves only once,
    whichever way it was named). Each uncovered part keeps its announcement's
    other fields. Announcing the result, then asking again, gives nothing.
    """
    covered: dict[tuple[bool, str, str, str], list[tuple[int, int]]] = {}
    for done in announced:
        group = (
            _leaves_circulation(done.event),
            done.party,
            done.cooperative_approach_id,
            done.originating_registry_id,
        )
        covered.setdefault(group, []).append((done.first_serial, done.last_serial))
    for ranges in covered.values():
        ranges.sort()
    out: list[UnitAnnouncement] = []
    for wanted in expected:
        group = (
            _leaves_circulation(wanted.event),
            wanted.party,
            wanted.cooperative_approach_id,
            wanted.originating_registry_id,
        )
        cursor = wanted.first_serial
        for first, last in covered.get(group, ()):
            if last < cursor:
                continue
            if first > wanted.last_serial:
                break
            if first > cursor:
                out.append(replace(wanted, first_serial=cursor, last_serial=first - 1))
            cursor = max(cursor, last + 1)
            if cursor > wanted.last_serial:
                break
        if cursor <= wanted.last_serial:
            out.append(replace(wanted, first_serial=cursor, last_serial=wanted.last_serial))
    return out
