"""The federation unit index core: interval maps of counts, checked against a per-unit model."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.domain.custody import (
    Change,
    Segment,
    UnitAnnouncement,
    UnitEventKind,
    apply_change,
    check_custody,
    holdings_by_party,
    issuance,
    leaving_circulation,
    merged,
    movement,
    unannounced,
)
from registry.domain.errors import ReasonCode

SERIAL_SPAN = 40
PARTIES = ("CHE", "GHA", "THA")
VINTAGE = 2024
METRIC = "tCO2e"


def fold(changes: list[Change]) -> list[Segment]:
    segments: list[Segment] = []
    for change in changes:
        segments = apply_change(segments, change)
    return segments


def unit_model(changes: list[Change]) -> dict[int, tuple[object, ...]]:
    """The same counts kept per unit: what the interval map must agree with."""
    units: dict[int, tuple[int, Counter[str], int]] = {}
    for change in changes:
        for serial in range(change.first, change.last + 1):
            issued, counts, left = units.get(serial, (0, Counter(), 0))
            counts = Counter(counts)
            for party, delta in change.deltas:
                counts[party] += delta
            units[serial] = (issued + change.issued, counts, left + change.left_circulation)
    return {
        serial: (issued, tuple(sorted((p, c) for p, c in counts.items() if c)), left)
        for serial, (issued, counts, left) in units.items()
        if issued or any(counts.values()) or left
    }


def per_unit(segments: list[Segment]) -> dict[int, tuple[object, ...]]:
    return {
        serial: (segment.issued, segment.holdings, segment.left_circulation)
        for segment in segments
        for serial in range(segment.first, segment.last + 1)
    }


ranges = st.tuples(st.integers(1, SERIAL_SPAN), st.integers(0, 10)).map(
    lambda pair: (pair[0], pair[0] + pair[1])
)
parties = st.sampled_from(PARTIES)
changes = st.one_of(
    st.builds(lambda r, p: issuance(r[0], r[1], p, VINTAGE, METRIC), ranges, parties),
    st.builds(lambda r, a, b: movement(r[0], r[1], a, b), ranges, parties, parties),
    st.builds(lambda r, p: leaving_circulation(r[0], r[1], p), ranges, parties),
)


@settings(max_examples=300)
@given(st.lists(changes, max_size=12))
def test_the_interval_map_agrees_with_a_per_unit_model(history: list[Change]) -> None:
    segments = fold(history)
    assert per_unit(segments) == unit_model(history)


@settings(max_examples=300)
@given(st.lists(changes, max_size=12), st.randoms(use_true_random=False))
def test_the_order_records_arrive_in_does_not_matter(history: list[Change], rng: object) -> None:
    shuffled = list(history)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert fold(shuffled) == fold(history)


@settings(max_examples=300)
@given(st.lists(changes, max_size=12))
def test_segments_stay_sorted_disjoint_and_merged(history: list[Change]) -> None:
    segments = fold(history)
    assert segments == merged(segments)
    for earlier, later in itertools.pairwise(segments):
        assert earlier.last < later.first
        assert not (earlier.last + 1 == later.first and earlier.state() == later.state())


def test_an_honest_history_tells_the_holder_of_every_range() -> None:
    segments = fold(
        [
            movement(11, 20, "CHE", "GHA"),  # read before the issuance it follows
            issuance(1, 100, "CHE", VINTAGE, METRIC),
            movement(15, 20, "GHA", "THA"),
            leaving_circulation(90, 100, "CHE"),
        ]
    )
    assert holdings_by_party(segments) == {
        "CHE": [(1, 10), (21, 89)],
        "GHA": [(11, 14)],
        "THA": [(15, 20)],
    }
    assert len(segments) == 5  # ranges, not units


def check(segments: list[Segment], first: int, last: int, sender: str) -> tuple[str, ...]:
    return check_custody(segments, first, last, sender=sender, vintage=VINTAGE, metric=METRIC)


def test_custody_refusals_each_have_their_reason() -> None:
    segments = fold(
        [
            issuance(1, 100, "CHE", VINTAGE, METRIC),
            movement(11, 20, "CHE", "GHA"),
            leaving_circulation(90, 100, "CHE"),
        ]
    )
    assert check(segments, 1, 10, "CHE") == ()
    assert check(segments, 11, 20, "GHA") == ()
    assert check(segments, 101, 110, "CHE") == (ReasonCode.UNITS_NOT_ISSUED,)
    assert check(segments, 95, 105, "CHE") == (
        ReasonCode.UNITS_OUT_OF_CIRCULATION,
        ReasonCode.UNITS_NOT_ISSUED,
    )
    assert check(segments, 11, 20, "CHE") == (ReasonCode.UNITS_NOT_HELD_BY_SENDER,)
    assert check(segments, 5, 15, "THA") == (ReasonCode.UNITS_NOT_HELD_BY_SENDER,)
    assert check_custody(segments, 1, 10, sender="CHE", vintage=2025, metric=METRIC) == (
        ReasonCode.UNITS_NOT_ISSUED,
    )


def test_double_issuance_and_double_holding_are_refused() -> None:
    twice = fold([issuance(1, 10, "CHE", VINTAGE, METRIC), issuance(1, 10, "CHE", VINTAGE, METRIC)])
    assert check(twice, 1, 10, "CHE") == (ReasonCode.UNITS_NOT_ISSUED,)
    # A forged history in which GHA never gave up what it sent on.
    doubled = fold(
        [
            issuance(1, 10, "CHE", VINTAGE, METRIC),
            movement(1, 10, "CHE", "GHA"),
            movement(1, 10, "CHE", "THA"),
        ]
    )
    assert check(doubled, 1, 10, "GHA") == (ReasonCode.UNITS_HELD_ELSEWHERE,)


# -- what a backfill still has to announce ------------------------------------------------


def _said(event: str, first: int, last: int, party: str = "CHE") -> UnitAnnouncement:
    return UnitAnnouncement(
        event=UnitEventKind(event),
        party=party,
        cooperative_approach_id="CA0001",
        originating_registry_id="CHE01",
        first_serial=first,
        last_serial=last,
        vintage=2025,
        metric="tCO2e",
    )


def _ranges(announcements: list[UnitAnnouncement]) -> list[tuple[str, int, int]]:
    return [(a.event.value, a.first_serial, a.last_serial) for a in announcements]


def test_unannounced_keeps_only_the_parts_no_announcement_covers() -> None:
    expected = [_said("ISSUED", 1, 100), _said("CANCELLED", 91, 100)]
    announced = [_said("ISSUED", 1, 10), _said("ISSUED", 41, 50), _said("ISSUED", 45, 60)]
    assert _ranges(unannounced(expected, announced)) == [
        ("ISSUED", 11, 40),
        ("ISSUED", 61, 100),
        ("CANCELLED", 91, 100),
    ]


def test_a_use_covers_a_cancellation_but_not_an_issuance_or_another_party() -> None:
    expected = [_said("CANCELLED", 1, 10), _said("ISSUED", 1, 10)]
    announced = [_said("USED", 1, 10), _said("ISSUED", 1, 10, party="GHA")]
    assert _ranges(unannounced(expected, announced)) == [("ISSUED", 1, 10)]


def test_what_unannounced_returns_is_all_it_returns() -> None:
    expected = [_said("ISSUED", 1, 100), _said("USED", 30, 70)]
    announced = [_said("ISSUED", 20, 30), _said("CANCELLED", 60, 80)]
    missing = unannounced(expected, announced)
    assert unannounced(expected, [*announced, *missing]) == []
