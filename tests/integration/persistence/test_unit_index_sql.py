"""The unit index over a real database: records folded once, offsets kept with the rows.

Drives ``registry.application.custody.UnitIndex`` over ``SqlUnitIndexUnitOfWork``
on SQLite and PostgreSQL, with envelopes signed by real keys, as the edge hands
them over after decoding.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import partial

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64
from a6wire.messages import (
    AuthorisationSnapshot,
    Decision,
    Envelope,
    Outcome,
    Prepare,
    Purpose,
    SerialBlock,
    UnitEvent,
    UnitRecord,
    Vote,
    VoteChoice,
)
from a6wire.signing import payload_digest, seal
from a6wire.topics import inbox_topic
from a6wire.verification import encode_envelope, verify_signature
from registry.adapters.messaging import InMemoryQuarantine
from registry.adapters.unit_index import SqlUnitIndexUnitOfWork
from registry.application.custody import UnitIndex
from registry.application.transfers import MessagePosition
from registry.domain.errors import ReasonCode
from registry.entrypoints.bus import UnitIndexBus

PARTIES = ("CHE", "GHA")
KEYS: dict[str, Ed25519PrivateKey] = {party: generate_private_key() for party in PARTIES}
DIRECTORY = FederationDirectory(
    members=tuple(
        FederationMember(
            party=party,
            registry_id=f"{party}01",
            public_key_base64=public_key_base64(KEYS[party]),
            inbox_topic=inbox_topic(party),
        )
        for party in PARTIES
    )
)
APPROACH = "CA0001"
UNIT_LOG = "a6.units"
DECISIONS = "a6.decisions"
NOW = datetime.now(UTC)


def signed(payload: UnitRecord | Prepare | Vote | Decision, party: str) -> Envelope:
    return seal(
        payload, sender_party=party, sent_at=NOW, message_id=uuid.uuid4(), private_key=KEYS[party]
    )


def issued(first: int, last: int) -> Envelope:
    return signed(
        UnitRecord(
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
        ),
        "CHE",
    )


def prepare(first: int, last: int) -> Prepare:
    return Prepare(
        transfer_id=uuid.uuid4(),
        coordinator_party="CHE",
        participants=("GHA",),
        from_registry_id="CHE01",
        from_account_id="CHE-GOV",
        to_registry_id="GHA01",
        to_account_id="GHA-GOV",
        blocks=(
            SerialBlock(
                first_serial=first,
                last_serial=last,
                quantity=last - first + 1,
                cooperative_approach_id=APPROACH,
                originating_registry_id="CHE01",
                first_transferring_party="CHE",
                vintage=2025,
                metric="tCO2e",
                gwp="AR5-GWP100",
                mitigation_type="emission_reduction",
                sector="energy",
                activity_type="solar_pv",
                first_transfer_done=False,
                authorisation_id="LOA-1",
                authorisation_version=1,
            ),
        ),
        authorisation=AuthorisationSnapshot(
            authorisation_id="LOA-1",
            authorisation_date=date(2024, 1, 1),
            cooperative_approach_id=APPROACH,
            version=1,
            authorised_parties=("GHA",),
            purposes=(Purpose.NDC,),
        ),
        purpose=Purpose.NDC,
        deadline=NOW + timedelta(minutes=5),
    )


def decision(of: Prepare, outcome: Outcome, *, with_prepare: bool = True) -> Envelope:
    digest = payload_digest(of)
    yes = signed(
        Vote(
            transfer_id=of.transfer_id,
            coordinator_party="CHE",
            prepare_digest=digest,
            vote=VoteChoice.YES,
        ),
        "GHA",
    )
    return signed(
        Decision(
            transfer_id=of.transfer_id,
            outcome=outcome,
            decided_by="CHE",
            coordinator_party="CHE",
            participants=("GHA",),
            prepare_digest=digest,
            yes_votes=(yes,) if outcome is Outcome.COMMIT else (),
            prepare=signed(of, "CHE") if with_prepare else None,
        ),
        "CHE",
    )


def index_over(engine: Engine) -> UnitIndex:
    return UnitIndex(
        lambda: SqlUnitIndexUnitOfWork(engine), partial(verify_signature, directory=DIRECTORY)
    )


def test_records_fold_in_once_and_the_offsets_survive_a_restart(engine: Engine) -> None:
    index = index_over(engine)
    record = issued(1, 100)
    assert index.handle_unit_record(record, MessagePosition(UNIT_LOG, 0, 0))
    # The sender's relay republished it: same envelope, later offset, no second issuance.
    assert not index.handle_unit_record(record, MessagePosition(UNIT_LOG, 0, 3))
    moved = prepare(1, 40)
    aborted = prepare(41, 60)
    assert index.handle_decision_record(
        decision(aborted, Outcome.ABORT), MessagePosition(DECISIONS, 1, 0)
    )
    # A COMMIT without the PREPARE it moves does not count: it neither wins nor moves.
    assert not index.handle_decision_record(
        decision(moved, Outcome.COMMIT, with_prepare=False), MessagePosition(DECISIONS, 2, 0)
    )
    assert index.handle_decision_record(
        decision(moved, Outcome.COMMIT), MessagePosition(DECISIONS, 2, 1)
    )
    # A later record of a decided transfer changes nothing (the first valid one won).
    assert not index.handle_decision_record(
        decision(moved, Outcome.COMMIT), MessagePosition(DECISIONS, 2, 7)
    )

    restarted = index_over(engine)
    assert restarted.offsets() == {(UNIT_LOG, 0): 4, (DECISIONS, 1): 1, (DECISIONS, 2): 8}
    segments = [
        (segment.first, segment.last, segment.holder()) for _, segment in restarted.holdings()
    ]
    assert segments == [(1, 40, "GHA"), (41, 100, "CHE")]
    assert restarted.custody_refusals(prepare(41, 100)) == ()
    assert restarted.custody_refusals(prepare(30, 50)) == (ReasonCode.UNITS_NOT_HELD_BY_SENDER,)
    assert restarted.custody_refusals(prepare(90, 120)) == (ReasonCode.UNITS_NOT_ISSUED,)


def test_unit_records_that_do_not_verify_are_quarantined_and_passed(engine: Engine) -> None:
    """Garbage, a record not signed by its sender's key, a Party announcing for
    another, and a PREPARE on the unit log: each quarantined with its
    reason, the index moves past it, and nothing is folded in."""
    index = index_over(engine)
    quarantine = InMemoryQuarantine()
    bus = UnitIndexBus(index, DIRECTORY, quarantine, party="GHA")
    forged = issued(1, 10).payload
    assert isinstance(forged, UnitRecord)
    stranger = seal(
        forged,
        sender_party="CHE",
        sent_at=NOW,
        message_id=uuid.uuid4(),
        private_key=generate_private_key(),
    )
    # GHA announcing that CHE cancelled units: only CHE may say so.
    for_another = signed(forged.model_copy(update={"event": UnitEvent.CANCELLED}), "GHA")
    records = [
        b"{not json",
        encode_envelope(stranger),
        encode_envelope(for_another),
        encode_envelope(signed(prepare(1, 10), "CHE")),
    ]
    for offset, data in enumerate(records):
        bus.handle_unit_bytes(data, MessagePosition(UNIT_LOG, 0, offset))
    assert [row.reason_code for row in quarantine.refused()] == [
        "NOT_JSON",
        "BAD_SIGNATURE",
        "WRONG_ROLE",
        "UNIT_RECORD_MISPLACED",
    ]
    assert index.offsets() == {(UNIT_LOG, 0): 4}
    assert index.holdings() == []


class _BrokenIndex(UnitIndex):
    def handle_unit_record(self, envelope: Envelope, position: MessagePosition) -> bool:
        raise ZeroDivisionError("a bug in the fold")


def test_a_record_the_fold_fails_on_is_quarantined_not_redelivered_forever(
    engine: Engine,
) -> None:
    index = _BrokenIndex(
        lambda: SqlUnitIndexUnitOfWork(engine), partial(verify_signature, directory=DIRECTORY)
    )
    quarantine = InMemoryQuarantine()
    bus = UnitIndexBus(index, DIRECTORY, quarantine, party="GHA")
    bus.handle_unit_bytes(encode_envelope(issued(1, 10)), MessagePosition(UNIT_LOG, 0, 0))
    assert [row.reason_code for row in quarantine.refused()] == ["HANDLER_FAILED"]
    assert index.offsets() == {(UNIT_LOG, 0): 1}
