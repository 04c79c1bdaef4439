"""Reconciliation core: a Party's snapshot against the unit index and our own transfer records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from a6wire.reasons import ReasonCode
from registry.domain.custody import (
    Change,
    RangeKey,
    Segment,
    apply_change,
    holdings_by_party,
    issuance,
    leaving_circulation,
    movement,
)
from registry.domain.reconciliation import (
    CLOCK_SKEW_MARGIN,
    Direction,
    Finding,
    GroupKey,
    HoldingGroup,
    HoldingsView,
    IndexJournal,
    LocalStatus,
    LocalTransfer,
    RecentChanges,
    TransferRef,
    cutoff_of,
    minus,
    normalised,
    quantity,
    reconcile,
)

CA = "CA0001"
REG = "CHE01"
KEY = RangeKey(CA, REG)
GROUP = GroupKey(CA, REG, 2024, "tCO2e")
US = "GHA"


def fold(changes: list[Change]) -> list[tuple[RangeKey, Segment]]:
    segments: list[Segment] = []
    for change in changes:
        segments = apply_change(segments, change)
    return [(KEY, segment) for segment in segments]


def view(party: str, ranges: list[tuple[int, int]], **kwargs: object) -> HoldingsView:
    group = HoldingGroup(GROUP, quantity(ranges), tuple(normalised(ranges)))
    return HoldingsView(party, (group,) if ranges else (), **kwargs)  # type: ignore[arg-type]


def transfer(tid: str, coordinator: str, counterparty: str, first: int, last: int) -> TransferRef:
    direction = Direction.OUTGOING if coordinator == "CHE" else Direction.INCOMING
    return TransferRef(tid, coordinator, counterparty, direction, ((CA, REG, first, last),))


# CHE issued 1-100 and sent 51-100 to GHA (our node).
HISTORY = [issuance(1, 100, "CHE", 2024, "tCO2e"), movement(51, 100, "CHE", "GHA")]
T1 = transfer("t1", "CHE", "GHA", 51, 100)
OURS = [LocalTransfer(T1, LocalStatus.COMMITTED)]


def kinds(findings: list[Finding]) -> list[ReasonCode]:
    return [finding.kind for finding in findings]


def test_an_honest_snapshot_has_no_findings() -> None:
    snapshot = view("CHE", [(1, 50)], committed=(T1,))
    assert reconcile(snapshot, fold(HISTORY), OURS, us=US) == []


def test_a_deleted_block_is_a_totals_then_a_range_mismatch() -> None:
    snapshot = view("CHE", [(1, 20), (31, 50)], committed=(T1,))
    findings = reconcile(snapshot, fold(HISTORY), OURS, us=US)
    assert kinds(findings) == [ReasonCode.TOTALS_MISMATCH, ReasonCode.RANGE_MISMATCH]
    assert (findings[0].stated, findings[0].expected) == (40, 50)
    assert (findings[1].first_serial, findings[1].last_serial) == (21, 30)
    assert findings[1].parties == ("CHE",)


def test_units_already_sent_and_held_again_are_a_double_holding_explained_by_the_transfer() -> None:
    snapshot = view("CHE", [(1, 60)], committed=(T1,))
    findings = reconcile(snapshot, fold(HISTORY), OURS, us=US)
    assert kinds(findings) == [ReasonCode.TOTALS_MISMATCH, ReasonCode.DOUBLE_HOLDING]
    double = findings[1]
    assert double.parties == ("CHE", "GHA")
    assert (double.first_serial, double.last_serial) == (51, 60)
    assert double.transfer_ids == ("t1",)


def test_units_never_issued_are_held_not_issued() -> None:
    snapshot = view("CHE", [(1, 50), (500, 509)], committed=(T1,))
    findings = reconcile(snapshot, fold(HISTORY), OURS, us=US)
    assert kinds(findings) == [ReasonCode.TOTALS_MISMATCH, ReasonCode.HELD_NOT_ISSUED]
    assert (findings[1].first_serial, findings[1].last_serial) == (500, 509)


def test_units_cancelled_but_still_held_are_a_range_mismatch() -> None:
    history = [*HISTORY, leaving_circulation(1, 10, "CHE")]
    snapshot = view("CHE", [(1, 50)], committed=(T1,))
    findings = reconcile(snapshot, fold(history), OURS, us=US)
    assert kinds(findings) == [ReasonCode.TOTALS_MISMATCH, ReasonCode.RANGE_MISMATCH]
    assert (findings[1].first_serial, findings[1].last_serial) == (1, 10)


def test_the_index_s_own_double_holding_is_reported() -> None:
    # A colluding pair committed units CHE had already sent to GHA.
    history = [*HISTORY, issuance(51, 60, "CHE", 2024, "tCO2e")]
    snapshot = view("CHE", [(1, 60)], committed=(T1,))
    findings = reconcile(snapshot, fold(history), OURS, us=US)
    assert ReasonCode.DOUBLE_HOLDING in kinds(findings)


def test_ranges_in_flight_or_unannounced_are_not_compared() -> None:
    # CHE reserved 41-50 for t2 (still in its snapshot) and the index already moved them.
    history = [*HISTORY, movement(41, 50, "CHE", "THA"), issuance(101, 110, "CHE", 2024, "tCO2e")]
    t2 = transfer("t2", "CHE", "THA", 41, 50)
    snapshot = view("CHE", [(1, 50)], in_flight=(t2,), committed=(T1,))
    # 101-110 were issued and announced after the snapshot: a difference (confirmed
    # only if the next snapshot still shows it)...
    assert kinds(reconcile(snapshot, fold(history), OURS, us=US)) == [
        ReasonCode.TOTALS_MISMATCH,
        ReasonCode.RANGE_MISMATCH,
    ]
    # ...none once the snapshot has them...
    later = view("CHE", [(1, 50), (101, 110)], in_flight=(t2,), committed=(T1,))
    assert reconcile(later, fold(history), OURS, us=US) == []
    # ...nor while the snapshot says their announcement is not published yet.
    issued_later = view(
        "CHE", [(1, 50)], in_flight=(t2,), committed=(T1,), unannounced=((CA, REG, 101, 110),)
    )
    assert reconcile(issued_later, fold(history), OURS, us=US) == []


def test_a_transfer_committed_after_the_snapshot_is_not_one_sided_yet() -> None:
    # GHA committed t1 by a COMMIT signed after CHE's snapshot: CHE may not have voted.
    journal = IndexJournal(datetime.min.replace(tzinfo=UTC))
    journal.record(KEY, 51, 100, signed_at=T0, folded_at=T0, transfer=("t1", "CHE"))
    snapshot = view("CHE", [(1, 50)], committed=())
    recent = journal.changed_after(cutoff_of(T0))
    assert recent.transfers == {("t1", "CHE")}
    assert reconcile(snapshot, fold(HISTORY), OURS, us=US, recent=recent) == []
    later = journal.changed_after(cutoff_of(T0 + 2 * CLOCK_SKEW_MARGIN))
    assert kinds(reconcile(snapshot, fold(HISTORY), OURS, us=US, recent=later)) == [
        ReasonCode.TRANSFER_ONE_SIDED
    ]


def test_a_transfer_committed_here_and_missing_there_is_one_sided() -> None:
    snapshot = view("CHE", [(1, 50)], committed=())
    findings = reconcile(snapshot, fold(HISTORY), OURS, us=US)
    assert kinds(findings) == [ReasonCode.TRANSFER_ONE_SIDED]
    assert findings[0].transfer_ids == ("t1",)
    assert findings[0].parties == ("CHE", US)
    assert (findings[0].first_serial, findings[0].last_serial) == (51, 100)


def test_a_transfer_pending_there_is_not_one_sided() -> None:
    snapshot = view("CHE", [(1, 50)], in_flight=(T1,), committed=())
    assert reconcile(snapshot, fold(HISTORY), OURS, us=US) == []


def test_a_transfer_committed_there_and_missing_here_is_one_sided() -> None:
    snapshot = view("CHE", [(1, 50)], committed=(T1,))
    findings = reconcile(snapshot, fold(HISTORY), [], us=US)
    assert kinds(findings) == [ReasonCode.TRANSFER_ONE_SIDED]
    assert "no record" in findings[0].detail


def test_an_incomplete_committed_list_reports_no_missing_transfer_of_ours() -> None:
    snapshot = view("CHE", [(1, 50)], committed=(), committed_complete=False)
    assert reconcile(snapshot, fold(HISTORY), OURS, us=US) == []


def test_findings_come_in_the_itl_order() -> None:
    snapshot = view("CHE", [(1, 20), (500, 509)], committed=())
    findings = reconcile(snapshot, fold(HISTORY), OURS, us=US)
    order = [ReasonCode.TOTALS_MISMATCH, ReasonCode.RANGE_MISMATCH, ReasonCode.TRANSFER_ONE_SIDED]
    ranks = [order.index(k) if k in order else 1 for k in kinds(findings)]
    assert ranks == sorted(ranks)
    assert kinds(findings)[0] is ReasonCode.TOTALS_MISMATCH
    assert kinds(findings)[-1] is ReasonCode.TRANSFER_ONE_SIDED


def test_ranges_changed_after_the_snapshot_are_left_out_and_the_rest_found_at_once() -> None:
    # CHE issued 101-110 and sent 1-10 to THA after its snapshot; the index has both.
    history = [*HISTORY, issuance(101, 110, "CHE", 2024, "tCO2e"), movement(1, 10, "CHE", "THA")]
    recent = RecentChanges(((KEY, (101, 110)), (KEY, (1, 10))))
    snapshot = view("CHE", [(1, 50)], committed=(T1,))
    assert reconcile(snapshot, fold(history), OURS, us=US, recent=recent) == []
    # Without the journal the same honest snapshot would differ...
    assert set(kinds(reconcile(snapshot, fold(history), OURS, us=US))) == {
        ReasonCode.DOUBLE_HOLDING,  # 1-10: the index already gives them to THA
        ReasonCode.RANGE_MISMATCH,  # 101-110: the index already gives them to CHE
    }
    # ...and a range it dropped that no recent record touched is found from this one snapshot.
    tampered = view("CHE", [(1, 40)], committed=(T1,))
    findings = reconcile(tampered, fold(history), OURS, us=US, recent=recent)
    assert kinds(findings) == [ReasonCode.TOTALS_MISMATCH, ReasonCode.RANGE_MISMATCH]
    assert (findings[1].first_serial, findings[1].last_serial) == (41, 50)
    assert (findings[0].stated, findings[0].expected) == (30, 40)


def test_a_total_without_its_ranges_is_not_compared_where_a_range_changed_after() -> None:
    history = [*HISTORY, issuance(101, 110, "CHE", 2024, "tCO2e")]
    partial = HoldingsView("CHE", (HoldingGroup(GROUP, 50, ((1, 50),), False),), committed=(T1,))
    assert kinds(reconcile(partial, fold(history), OURS, us=US)) == [ReasonCode.TOTALS_MISMATCH]
    assert (
        reconcile(partial, fold(history), OURS, us=US, recent=RecentChanges(((KEY, (101, 110)),)))
        == []
    )


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def test_the_journal_lists_the_ranges_changed_after_a_snapshot_s_cutoff() -> None:
    journal = IndexJournal(datetime.min.replace(tzinfo=UTC))
    journal.record(KEY, 1, 10, signed_at=T0, folded_at=T0)
    journal.record(KEY, 11, 20, signed_at=T0 + seconds(10), folded_at=T0 + seconds(10))
    # A snapshot taken just after the second record was signed, by a clock a bit behind.
    cutoff = cutoff_of(T0 + seconds(10) - CLOCK_SKEW_MARGIN / 2)
    assert journal.covers(cutoff)
    assert journal.changed_after(cutoff).ranges == ((KEY, (11, 20)),)
    assert journal.changed_after(cutoff_of(T0 + seconds(30))) == RecentChanges()


def test_a_stamp_later_than_the_record_was_read_counts_as_read_plus_the_margin() -> None:
    journal = IndexJournal(datetime.min.replace(tzinfo=UTC))
    journal.record(KEY, 1, 10, signed_at=T0 + timedelta(days=365), folded_at=T0)
    # A snapshot taken a margin after we read it: the far-future stamp does not
    # keep 1-10 out of its comparison.
    assert journal.changed_after(cutoff_of(T0 + 2 * CLOCK_SKEW_MARGIN)) == RecentChanges()
    assert journal.changed_after(cutoff_of(T0)).ranges == ((KEY, (1, 10)),)


def test_a_journal_past_its_bounds_covers_only_later_snapshots() -> None:
    by_count = IndexJournal(datetime.min.replace(tzinfo=UTC), changes_max=2)
    for i in range(3):
        at = T0 + seconds(i)
        by_count.record(KEY, i * 10 + 1, i * 10 + 10, signed_at=at, folded_at=at)
    assert len(by_count) == 2
    assert by_count.horizon == T0
    assert not by_count.covers(T0 - seconds(1))
    assert by_count.covers(T0)
    by_age = IndexJournal(datetime.min.replace(tzinfo=UTC), age=seconds(60))
    by_age.record(KEY, 1, 10, signed_at=T0, folded_at=T0)
    by_age.record(KEY, 11, 20, signed_at=T0 + seconds(61), folded_at=T0 + seconds(61))
    assert len(by_age) == 1
    assert by_age.horizon == T0
    # A restarted index starts with a horizon: nothing before it is listed.
    assert not IndexJournal(T0).covers(T0 - seconds(1))


# -- properties ----------------------------------------------------------------------------

SPAN = 60
PARTIES = ("CHE", "GHA", "THA")


@st.composite
def honest_histories(draw: st.DrawFn) -> list[Change]:
    """Issuances of fresh ranges, then moves and retirements of what the mover holds."""
    changes: list[Change] = []
    cursor = 1
    holders: dict[int, str] = {}
    for _ in range(draw(st.integers(1, 4))):
        size = draw(st.integers(1, 15))
        party = draw(st.sampled_from(PARTIES))
        changes.append(issuance(cursor, cursor + size - 1, party, 2024, "tCO2e"))
        holders.update({serial: party for serial in range(cursor, cursor + size)})
        cursor += size
    for _ in range(draw(st.integers(0, 6))):
        first = draw(st.integers(1, cursor - 1))
        last = draw(st.integers(first, min(cursor - 1, first + 10)))
        owners = {holders.get(serial) for serial in range(first, last + 1)}
        if len(owners) != 1 or None in owners:
            continue
        owner = owners.pop()
        assert owner is not None
        if draw(st.booleans()):
            to = draw(st.sampled_from([p for p in PARTIES if p != owner]))
            changes.append(movement(first, last, owner, to))
            holders.update({serial: to for serial in range(first, last + 1)})
        else:
            changes.append(leaving_circulation(first, last, owner))
            for serial in range(first, last + 1):
                holders.pop(serial)
    return changes


def honest_view(index: list[tuple[RangeKey, Segment]], party: str) -> HoldingsView:
    ranges = holdings_by_party(segment for _, segment in index).get(party, [])
    return view(party, ranges)


@settings(max_examples=200, deadline=None)
@given(honest_histories(), st.sampled_from(PARTIES))
def test_an_honest_federation_has_no_findings(changes: list[Change], party: str) -> None:
    index = fold(changes)
    assert reconcile(honest_view(index, party), index, [], us="ZZZ") == []


def ranges_of(change: Change) -> list[tuple[RangeKey, tuple[int, int]]]:
    return [(KEY, (change.first, change.last))]


@settings(max_examples=200, deadline=None)
@given(honest_histories(), st.sampled_from(PARTIES), st.data())
def test_an_honest_snapshot_taken_mid_history_has_no_findings_given_later_changes(
    changes: list[Change], party: str, data: st.DataObject
) -> None:
    # The Party took its snapshot after the first ``cut`` records; the index has read all.
    cut = data.draw(st.integers(1, len(changes)))
    snapshot = honest_view(fold(changes[:cut]), party)
    index = fold(changes)
    recent = RecentChanges(tuple(r for change in changes[cut:] for r in ranges_of(change)))
    assert reconcile(snapshot, index, [], us="ZZZ", recent=recent) == []


@settings(max_examples=200, deadline=None)
@given(honest_histories(), st.sampled_from(PARTIES), st.data())
def test_every_unit_left_out_of_a_snapshot_is_reported(
    changes: list[Change], party: str, data: st.DataObject
) -> None:
    index = fold(changes)
    held = holdings_by_party(segment for _, segment in index).get(party, [])
    if not held:
        return
    first, last = data.draw(st.sampled_from(held))
    low = data.draw(st.integers(first, last))
    high = data.draw(st.integers(low, last))
    findings = reconcile(view(party, minus(held, [(low, high)])), index, [], us="ZZZ")
    assert findings[0].kind is ReasonCode.TOTALS_MISMATCH
    assert findings[0].expected is not None
    assert findings[0].stated is not None
    assert findings[0].expected - findings[0].stated == high - low + 1
    reported = [
        (f.first_serial, f.last_serial) for f in findings if f.kind is ReasonCode.RANGE_MISMATCH
    ]
    assert reported == [(low, high)]


@settings(max_examples=200, deadline=None)
@given(honest_histories(), st.sampled_from(PARTIES), st.integers(1, 200), st.integers(0, 5))
def test_every_unit_added_to_a_snapshot_is_reported(
    changes: list[Change], party: str, first: int, extra: int
) -> None:
    index = fold(changes)
    held = holdings_by_party(segment for _, segment in index).get(party, [])
    added = minus([(first, first + extra)], held)
    if not added:
        return
    findings = reconcile(view(party, [*held, *added]), index, [], us="ZZZ")
    assert findings[0].kind is ReasonCode.TOTALS_MISMATCH
    covered = normalised(
        (f.first_serial, f.last_serial)
        for f in findings[1:]
        if f.first_serial is not None and f.last_serial is not None
    )
    assert minus(added, covered) == []
    assert {f.kind for f in findings[1:]} <= {
        ReasonCode.HELD_NOT_ISSUED,
        ReasonCode.DOUBLE_HOLDING,
        ReasonCode.RANGE_MISMATCH,
    }
