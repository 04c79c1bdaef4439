"""Reconciliation's records over a real database (SQLite and PostgreSQL).

What the snapshot subscriber keeps and refuses, and how findings are kept: once
when new, open while they last, closed when gone, new again when they come back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import Engine

from a6wire.keys import generate_private_key
from a6wire.messages import Envelope, HoldingsGroup, HoldingsSnapshot
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
from registry.domain.reconciliation import Finding
from registry.entrypoints.bus import SnapshotBus
from tests.integration.persistence.test_unit_index_sql import DIRECTORY, KEYS, issued

SNAPSHOTS = "a6.snapshots"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def signed(payload: HoldingsSnapshot, party: str) -> Envelope:
    return seal(
        payload, sender_party=party, sent_at=NOW, message_id=uuid.uuid4(), private_key=KEYS[party]
    )


def reconciliation_over(engine: Engine) -> Reconciliation:
    verify = partial(verify_signature, directory=DIRECTORY)
    return Reconciliation(
        lambda: SqlReconciliationUnitOfWork(
            engine, party="GHA", snapshot_topic=SNAPSHOTS, unit_log_topic="a6.units"
        ),
        UnitIndex(lambda: SqlUnitIndexUnitOfWork(engine), verify),
        lambda payload, at: signed(payload, "GHA"),
        party="GHA",
        registry_id="GHA01",
        clock=lambda: NOW,
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


def test_a_difference_counts_once_two_snapshots_show_it_and_closes_when_gone(
    engine: Engine,
) -> None:
    reconciliation = reconciliation_over(engine)
    index = UnitIndex(
        lambda: SqlUnitIndexUnitOfWork(engine), partial(verify_signature, directory=DIRECTORY)
    )
    index.handle_unit_record(issued(1, 10), MessagePosition("a6.units", 0, 0))
    new: list[Finding] = []
    reconciliation.on_new_finding = new.append

    def compare(taken: datetime, total: int) -> list[Finding]:
        assert reconciliation.receive(signed(snapshot("CHE", taken, total), "CHE"))
        return reconciliation.compare()

    assert compare(NOW, 10) == []  # agrees with the index
    assert compare(NOW + timedelta(seconds=1), 8) == []  # a first sight is not a finding
    second = compare(NOW + timedelta(seconds=2), 8)
    assert [f.kind for f in second] == [ReasonCode.TOTALS_MISMATCH, ReasonCode.RANGE_MISMATCH]
    assert new == second
    assert compare(NOW + timedelta(seconds=3), 8) == []  # still open, not new again
    report = reconciliation.report()
    assert [(s.finding.kind, s.open, s.party) for s in report.findings] == [
        (ReasonCode.TOTALS_MISMATCH, True, "CHE"),
        (ReasonCode.RANGE_MISMATCH, True, "CHE"),
    ]
    assert compare(NOW + timedelta(seconds=4), 10) == []  # gone: closed
    assert [s.open for s in reconciliation.report().findings] == [False, False]
    compare(NOW + timedelta(seconds=5), 8)
    assert len(compare(NOW + timedelta(seconds=6), 8)) == 2  # back: new again


def test_old_snapshots_are_not_compared(engine: Engine) -> None:
    """Two snapshots from the topic's history, against today's index: no finding."""
    reconciliation = reconciliation_over(engine)
    index = UnitIndex(
        lambda: SqlUnitIndexUnitOfWork(engine), partial(verify_signature, directory=DIRECTORY)
    )
    index.handle_unit_record(issued(1, 10), MessagePosition("a6.units", 0, 0))
    long_ago = NOW - timedelta(hours=1)
    for seconds in (0, 1, 2):
        taken = long_ago + timedelta(seconds=seconds)
        assert reconciliation.receive(signed(snapshot("CHE", taken, 8), "CHE"))
        assert reconciliation.compare() == []
    assert reconciliation.report().findings == ()
    assert reconciliation.report().parties == ()
