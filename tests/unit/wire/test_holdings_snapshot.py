"""The HOLDINGS_SNAPSHOT record: shape, bounds, who signs it, and the snapshot of a ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from a6wire.decoding import RECORD_SIZE_MAX_BYTES
from a6wire.errors import WrongRoleError
from a6wire.messages import (
    SNAPSHOT_COMMITTED_TRANSFERS_MAX,
    SNAPSHOT_IN_FLIGHT_TRANSFERS_MAX,
    SNAPSHOT_RANGES_MAX,
    HoldingsGroup,
    HoldingsSnapshot,
)
from a6wire.signing import seal
from a6wire.verification import decode_envelope, encode_envelope, verify_envelope
from registry.application.reconciliation import HeldRange, LedgerState, snapshot_of, view_of
from registry.domain.reconciliation import Direction, TransferRef
from tests.sim import factories

pytestmark = pytest.mark.unit

DIRECTORY = factories.directory_for(["CHE", "GHA"])
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SERIAL_BIG = 10**15


def group(ranges: tuple[tuple[int, int], ...], total: int | None = None) -> HoldingsGroup:
    return HoldingsGroup(
        cooperative_approach_id="CA0001",
        originating_registry_id="CHE01",
        vintage=2025,
        metric="tCO2e",
        total=sum(b - a + 1 for a, b in ranges) if total is None else total,
        ranges=ranges,
    )


def sealed(snapshot: HoldingsSnapshot, sender: str = "CHE") -> bytes:
    envelope = seal(
        snapshot,
        sender_party=sender,
        sent_at=NOW,
        message_id=uuid.uuid4(),
        private_key=factories.party_key(sender),
    )
    return encode_envelope(envelope)


def test_ranges_must_add_up_to_the_total_and_be_sorted_and_apart() -> None:
    group(((1, 10), (20, 29)))
    with pytest.raises(ValidationError, match="add up"):
        group(((1, 10),), total=11)
    with pytest.raises(ValidationError, match="sorted"):
        group(((20, 29), (1, 10)))
    with pytest.raises(ValidationError, match="sorted"):
        group(((1, 10), (11, 20)))  # adjacent ranges are one range


def test_a_snapshot_is_signed_by_the_registry_it_speaks_for() -> None:
    snapshot = HoldingsSnapshot(
        transfer_id=uuid.uuid4(), party="CHE", registry_id="CHE01", taken_at=NOW
    )
    verify_envelope(decode_envelope(sealed(snapshot)), DIRECTORY)
    with pytest.raises(WrongRoleError):
        verify_envelope(decode_envelope(sealed(snapshot, sender="GHA")), DIRECTORY)
    with pytest.raises(ValidationError, match="registry"):
        HoldingsSnapshot(transfer_id=uuid.uuid4(), party="CHE", registry_id="GHA01", taken_at=NOW)


def _huge_ledger() -> LedgerState:
    """More of everything than one snapshot may carry, with the widest numbers."""
    held = tuple(
        HeldRange("CA0001", "CHE01", 2025, "tCO2e", SERIAL_BIG + 2 * i, SERIAL_BIG + 2 * i)
        for i in range(3 * SNAPSHOT_RANGES_MAX)
    )
    in_flight = tuple(
        TransferRef(
            str(uuid.uuid4()),
            "CHE",
            "GHA",
            Direction.OUTGOING,
            (("CA0001", "CHE01", i + 1, i + 1),),
        )
        for i in range(2 * SNAPSHOT_IN_FLIGHT_TRANSFERS_MAX)
    )
    committed = tuple(
        TransferRef(str(uuid.uuid4()), "CHE", "GHA", Direction.OUTGOING)
        for _ in range(SNAPSHOT_COMMITTED_TRANSFERS_MAX + 1)
    )
    return LedgerState(held, in_flight, (), committed)


def test_the_largest_snapshot_fits_one_record_and_says_what_it_left_out() -> None:
    snapshot = snapshot_of(_huge_ledger(), party="CHE", registry_id="CHE01", taken_at=NOW)
    data = sealed(snapshot)
    assert len(data) < RECORD_SIZE_MAX_BYTES
    decoded = decode_envelope(data).payload
    assert isinstance(decoded, HoldingsSnapshot)
    assert not decoded.in_flight_complete
    assert not decoded.committed_complete
    (only,) = decoded.groups
    assert not only.ranges_complete
    assert only.total == 3 * SNAPSHOT_RANGES_MAX
    view = view_of(decoded)
    assert not view.in_flight_complete


def test_a_ledger_s_snapshot_joins_adjacent_blocks_per_group() -> None:
    held = (
        HeldRange("CA0001", "CHE01", 2025, "tCO2e", 1, 10),
        HeldRange("CA0001", "CHE01", 2025, "tCO2e", 11, 20),
        HeldRange("CA0001", "CHE01", 2024, "tCO2e", 21, 30),
    )
    snapshot = snapshot_of(
        LedgerState(held, (), (), ()), party="CHE", registry_id="CHE01", taken_at=NOW
    )
    assert [(g.vintage, g.total, g.ranges) for g in snapshot.groups] == [
        (2024, 10, ((21, 30),)),
        (2025, 20, ((1, 20),)),
    ]
    assert snapshot.in_flight_complete
    assert snapshot.committed_complete
