"""Reconciliation's records over a real database (SQLite and PostgreSQL).

What the snapshot subscriber keeps and refuses, and how findings are kept: once
when new (from ONE snapshot), open while they last, closed when gone, new again
when they come back; and what the unit index's journal leaves out: the ranges
changed by records signed after a snapshot, and every snapshot taken before a
restarted index could know what changed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import Engine

from a6wire.keys import generate_private_key
from a6wire.messages import (
    Envelope,
    HoldingsGroup,
    HoldingsSnapshot,
    Outcome,
    UnitEvent,
    UnitRecord,
)
from a6wire.reasons import ReasonCode
from a6wire.signing import seal
from a6wire.topics import snapshot_key
from a6wire.verification import encode_envelope, verify_signature
from registry.adapters.messaging import InMemoryQuarantine
from registry.adapters.reconciliation import SqlReconciliationUnitOfWork
from registry.adapters.unit_index import SqlUnitIndexUnitOfWork
from registry.application.custody import UnitIndex
from registry.application.reconciliation import Reconciliation
from registry.application.transfers import MessagePosition
from registry.domain.reconciliation import CLOCK_SKEW_MARGIN, Finding
from registry.entrypoints.bus import SnapshotBus
from tests.integration.persistence.test_unit_index_sql import (
    APPROACH,
    DIRECTORY,
    KEYS,
    decision,
    issued,
    prepare,
)

SNAPSHOTS = "a6.snapshots"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def signed(payload: HoldingsSnapshot, party: str) -> Envelope:
    return seal(
        payload, sender_party=party, sent_at=NOW, message_id=uuid.uuid4(), private_key=KEYS[party]
    )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def index_over(engine: Engine, clock: Clock | None = None) -> UnitIndex:
    verify = partial(verify_signature, directory=DIRECTORY)
    return UnitIndex(lambda: SqlUnitIndexUnitOfWork(engine), verify, clock=clock or Clock())


def reconciliation_over(
    engine: Engine, index: UnitIndex | None = None, clock: Clock | None = None
) -> Reconciliation:
    return Reconciliation(
        lambda: SqlReconciliationUnitOfWork(
            engine, party="GHA", snapshot_topic=SNAPSHOTS, unit_log_topic="a6.units"
        ),
        index or index_over(engine),
        lambda payload, at: signed(payload, "GHA"),
        party="GHA",
        registry_id="GHA01",
        clock=clock or Clock(),
    )


def issued_at(first: int, last: int, sent_at: datetime) -> Envelope:
    record = UnitRecord(
        transfer_id=uuid.uuid4(),
        event=UnitEvent.ISSUED,
        party="CHE",
        cooperative_approach_id=APPROACH,
        originating_registry_id="CHE01",
        first_serial=first,
        last_serial=last,
        quantity=last - first + 1,
        vintage=2025,
        metric="tCO2e",
    )
    return seal(
        record,
        sender_party="CHE",
        sent_at=sent_at,
        message_id=uuid.uuid4(),
        private_key=KEYS["CHE"],
    )


def snapshot(party: str, taken_at: datetime, total: int = 10) -> HoldingsSnapshot:
    return HoldingsSnapshot(
        transfer_id=uuid.uuid4(),
        party=party,
        registry_id=f"{party}01",
        taken_at=taken_at,
        groups=(
            HoldingsGroup(
                cooperative_approach_id="CA0001",
                originating_registry_id="CHE01",
                vintage=2025,
                metric="tCO2e",
                total=total,
                ranges=((1, total),),
            ),
        ),
    )


def test_only_verified_snapshots_keyed_by_their_party_are_kept(engine: Engine) -> None:
    reconciliation = reconciliation_over(engine)
    quarantine = InMemoryQuarantine()
    bus = SnapshotBus(reconciliation, DIRECTORY, quarantine, party="GHA")
    kept: list[bool] = []
    bus.on_kept = lambda: kept.append(True)
    newer, older = snapshot("CHE", NOW), snapshot("CHE", NOW - timedelta(minutes=5))
    stranger = seal(
        newer,
        sender_party="CHE",
        sent_at=NOW,
        message_id=uuid.uuid4(),
        private_key=generate_private_key(),
    )
    records = [
        (b"{not json", snapshot_key("CHE")),
        (encode_envelope(stranger), snapshot_key("CHE")),
        (encode_envelope(signed(newer, "CHE")), snapshot_key("GHA")),  # compaction would hide GHA's
        (encode_envelope(issued(1, 10)), snapshot_key("CHE")),
        (encode_envelope(signed(newer, "CHE")), snapshot_key("CHE")),
        (encode_envelope(signed(older, "CHE")), snapshot_key("CHE")),  # read late: not kept
    ]
    for offset, (data, key) in enumerate(records):
        bus.handle_snapshot_bytes(data, MessagePosition(SNAPSHOTS, 0, offset), key)
    assert [row.reason_code for row in quarantine.refused()] == [
        "NOT_JSON",
        "BAD_SIGNATURE",
        "WRONG_ROLE",
        "UNIT_RECORD_MISPLACED",
    ]
    assert kept == [True]
    with SqlReconciliationUnitOfWork(
        engine, party="GHA", snapshot_topic=SNAPSHOTS, unit_log_topic="a6.units"
    ) as uow:
        (latest,) = uow.reconciliation.latest_snapshots()
    assert latest.payload == newer


def test_a_difference_counts_from_one_snapshot_and_closes_when_gone(engine: Engine) -> None:
    clock = Clock()
    index = index_over(engine, clock)
    reconciliation = reconciliation_over(engine, index, clock)
    index.handle_unit_record(issued_at(1, 10, NOW), MessagePosition("a6.units", 0, 0))
    new: list[Finding] = []
    reconciliation.on_new_finding = new.append
    # Every snapshot below is taken well after 1-10 were announced.
    later = NOW + 2 * CLOCK_SKEW_MARGIN

    def compare(seconds: int, total: int) -> list[Finding]:
        taken = later + timedelta(seconds=seconds)
        clock.now = taken
        assert reconciliation.receive(signed(snapshot("CHE", taken, total), "CHE"))
        return reconciliation.compare()

    assert compare(0, 10) == []  # agrees with the index
    first = compare(1, 8)  # the first snapshot that differs is a finding
    assert [f.kind for f in first] == [ReasonCode.TOTALS_MISMATCH, ReasonCode.RANGE_MISMATCH]
    assert new == first
    assert compare(2, 8) == []  # still open, not new again
    report = reconciliation.report()
    assert [(s.finding.kind, s.open, s.party) for s in report.findings] == [
        (ReasonCode.TOTALS_MISMATCH, True, "CHE"),
        (ReasonCode.RANGE_MISMATCH, True, "CHE"),
    ]
    assert compare(3, 10) == []  # gone: closed
    assert [s.open for s in reconciliation.report().findings] == [False, False]
    assert len(compare(4, 8)) == 2  # back: new again


def test_a_snapshot_kept_after_the_wait_began_waits_for_the_next_round(engine: Engine) -> None:
    # The index caught up to end offsets taken when the wait began; a snapshot kept
    # after that may reflect records beyond them (here: CHE issued 1-10, relayed
    # it, took its snapshot, and our index has not read the issuance yet).
    clock = Clock()
    index = index_over(engine, clock)
    reconciliation = reconciliation_over(engine, index, clock)
    wait_began = clock.now = NOW + 2 * CLOCK_SKEW_MARGIN
    clock.now = wait_began + timedelta(seconds=1)
    assert reconciliation.receive(signed(snapshot("CHE", clock.now - CLOCK_SKEW_MARGIN), "CHE"))
    assert reconciliation.compare(received_before=wait_began) == []
    # Next round: the index has read the issuance, and the snapshot agrees with it.
    index.handle_unit_record(issued_at(1, 10, NOW), MessagePosition("a6.units", 0, 0))
    assert reconciliation.compare(received_before=clock.now + timedelta(seconds=1)) == []
    assert [c.party for c in reconciliation.report().parties] == ["CHE"]


def test_ranges_changed_by_records_signed_after_the_snapshot_are_left_out(engine: Engine) -> None:
    clock = Clock()
    index = index_over(engine, clock)
    reconciliation = reconciliation_over(engine, index, clock)
    index.handle_unit_record(issued_at(1, 10, NOW), MessagePosition("a6.units", 0, 0))
    taken = NOW + 2 * CLOCK_SKEW_MARGIN
    # CHE issued 11-20 just after its snapshot (its clock a little ahead of ours);
    # the index read that record before comparing.
    clock.now = taken + timedelta(seconds=1)
    index.handle_unit_record(
        issued_at(11, 20, taken - CLOCK_SKEW_MARGIN / 2), MessagePosition("a6.units", 0, 1)
    )
    assert reconciliation.receive(signed(snapshot("CHE", taken, 10), "CHE"))
    assert reconciliation.compare() == []
    # The next snapshot has 11-20 but lacks 9-10, untouched since: found from it alone.
    clock.now = taken + timedelta(seconds=2)
    altered = HoldingsSnapshot(
        transfer_id=uuid.uuid4(),
        party="CHE",
        registry_id="CHE01",
        taken_at=taken + timedelta(seconds=1),
        groups=(
            HoldingsGroup(
                cooperative_approach_id="CA0001",
                originating_registry_id="CHE01",
                vintage=2025,
                metric="tCO2e",
                total=18,
                ranges=((1, 8), (11, 20)),
            ),
        ),
    )
    assert reconciliation.receive(signed(altered, "CHE"))
    found = reconciliation.compare()
    assert [(f.kind, f.first_serial, f.last_serial) for f in found] == [
        (ReasonCode.TOTALS_MISMATCH, None, None),
        (ReasonCode.RANGE_MISMATCH, 9, 10),
    ]


def test_units_a_commit_signed_after_the_snapshot_moved_are_left_out(engine: Engine) -> None:
    clock = Clock()
    index = index_over(engine, clock)
    reconciliation = reconciliation_over(engine, index, clock)
    index.handle_unit_record(issued_at(1, 10, NOW), MessagePosition("a6.units", 0, 0))
    taken = NOW + 2 * CLOCK_SKEW_MARGIN
    # CHE prepared and committed a transfer of 1-5 to GHA after its snapshot.
    clock.now = taken + timedelta(seconds=1)
    commit = decision(prepare(1, 5), Outcome.COMMIT).payload
    index.handle_decision_record(
        seal(
            commit,
            sender_party="CHE",
            sent_at=taken + timedelta(milliseconds=500),
            message_id=uuid.uuid4(),
            private_key=KEYS["CHE"],
        ),
        MessagePosition("a6.decisions", 0, 0),
    )
    assert reconciliation.receive(signed(snapshot("CHE", taken, 10), "CHE"))
    assert reconciliation.compare() == []


def test_a_restarted_index_compares_only_snapshots_taken_after_it_could_know(
    engine: Engine,
) -> None:
    index_over(engine).handle_unit_record(issued_at(1, 10, NOW), MessagePosition("a6.units", 0, 0))
    clock = Clock()
    clock.now = NOW + timedelta(seconds=30)
    restarted = index_over(engine, clock)  # knows 1-10 from the database, not when they moved
    reconciliation = reconciliation_over(engine, restarted, clock)
    assert reconciliation.receive(signed(snapshot("CHE", clock.now, 8), "CHE"))
    assert reconciliation.compare() == []  # taken before the journal's horizon: skipped
    assert reconciliation.report().parties == ()
    clock.now += 2 * CLOCK_SKEW_MARGIN
    assert reconciliation.receive(signed(snapshot("CHE", clock.now, 8), "CHE"))
    assert [f.kind for f in reconciliation.compare()] == [
        ReasonCode.TOTALS_MISMATCH,
        ReasonCode.RANGE_MISMATCH,
    ]


def test_old_snapshots_are_not_compared(engine: Engine) -> None:
    """Two snapshots from the topic's history, against today's index: no finding."""
    index = index_over(engine)
    reconciliation = reconciliation_over(engine, index)
    index.handle_unit_record(issued(1, 10), MessagePosition("a6.units", 0, 0))
    long_ago = NOW - timedelta(hours=1)
    for seconds in (0, 1, 2):
        taken = long_ago + timedelta(seconds=seconds)
        assert reconciliation.receive(signed(snapshot("CHE", taken, 8), "CHE"))
        assert reconciliation.compare() == []
    assert reconciliation.report().findings == ()
    assert reconciliation.report().parties == ()
