"""A hostile member against the transfer handlers, on in-memory twins wired by hand.

PARTY transfers to PARTNER; OUTSIDER is a member of the federation with its own
real key that plays the intruder: it reads PARTNER's inbox (as anyone can on a
broker without ACLs), reuses the id of PARTY's transfer under its own
coordination, and borrows message ids of genuine records. Whatever it does, the
transfer must end the same at PARTY and PARTNER, and no unit may be lost or
held twice.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from a6wire.messages import Decision, Envelope, Outcome, Prepare, Vote, VoteChoice
from a6wire.signing import payload_digest, seal
from a6wire.topics import inbox_topic
from a6wire.verification import decode_envelope, encode_envelope
from registry.domain.errors import ReasonCode
from tests.unit.application.support import (
    OUTSIDER,
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
)
from tests.unit.application.transfer_support import (
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    Federation,
    federation,
    initiate,
    set_up_pair,
)

OUTSIDER_REGISTRY_ID = "JPN01"
QUANTITY = 40
ISSUED = 100


def _three() -> Federation:
    fed = federation(
        ((PARTY, REGISTRY_ID), (PARTNER, PARTNER_REGISTRY_ID), (OUTSIDER, OUTSIDER_REGISTRY_ID))
    )
    set_up_pair(fed, issue=ISSUED)
    return fed


def _sealed(fed: Federation, payload: Prepare | Decision, **kw: object) -> Envelope:
    values: dict[str, object] = {
        "sender_party": OUTSIDER,
        "sent_at": fed.clock.now(),
        "message_id": uuid.uuid4(),
        "private_key": fed.node(OUTSIDER).key,
    }
    values.update(kw)
    return seal(payload, **values)  # type: ignore[arg-type]


def _prepare_on_partners_inbox(fed: Federation) -> Envelope:
    """Publish, and read (as the intruder) PARTY's PREPARE off PARTNER's inbox."""
    fed.publish()
    (data,) = fed.inboxes[PARTNER]
    envelope = decode_envelope(data)
    assert isinstance(envelope.payload, Prepare)
    return envelope


def _intruders_prepare(fed: Federation, genuine: Envelope) -> Envelope:
    """The same transfer id and units, under the intruder's coordination, to PARTNER."""
    prepare = genuine.payload
    assert isinstance(prepare, Prepare)
    forged = prepare.model_copy(
        update={"coordinator_party": OUTSIDER, "from_registry_id": OUTSIDER_REGISTRY_ID}
    )
    return _sealed(fed, Prepare.model_validate(forged.model_dump()))


def _partners_vote_to_intruder(fed: Federation) -> Envelope:
    fed.publish()
    (data,) = fed.inboxes.pop(OUTSIDER)
    vote = decode_envelope(data)
    assert isinstance(vote.payload, Vote)
    return vote


def _intruders_decision(
    fed: Federation, prepare: Envelope, outcome: Outcome, votes: tuple[Envelope, ...] = ()
) -> bytes:
    payload = prepare.payload
    assert isinstance(payload, Prepare)
    decision = Decision(
        transfer_id=payload.transfer_id,
        outcome=outcome,
        decided_by=OUTSIDER,
        coordinator_party=OUTSIDER,
        participants=(PARTNER,),
        prepare_digest=payload_digest(payload),
        yes_votes=votes,
    )
    return encode_envelope(_sealed(fed, decision))


def _assert_atomic_and_conserved(fed: Federation, transfer_id: UUID) -> str:
    sender = fed.node(PARTY).view(transfer_id).to_dict()["status"]
    receiver = fed.node(PARTNER).view(transfer_id).to_dict()["status"]
    assert sender == receiver, f"PARTY says {sender}, PARTNER says {receiver}"
    moved = QUANTITY if sender == "COMMITTED" else 0
    assert fed.node(PARTY).held(SENDER_ACCOUNT) == ISSUED - moved
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == moved
    # Nothing stays pending once both sides are final.
    for party in (PARTY, PARTNER):
        totals = fed.node(party).ledger.query("ledger_totals")
        assert (totals.incoming, totals.reserved) == (0, 0)
    return str(sender)


def test_id_reuse_in_flight_gets_a_no_and_the_intruders_abort_releases_nothing() -> None:
    fed = _three()
    outcome = initiate(fed, quantity=QUANTITY)
    genuine = _prepare_on_partners_inbox(fed)
    fed.deliver_inbox(PARTNER, fed.inboxes[PARTNER].pop(0))  # PARTNER holds, votes YES
    intruder_prepare = _intruders_prepare(fed, genuine)
    fed.deliver_inbox(PARTNER, encode_envelope(intruder_prepare))
    vote = _partners_vote_to_intruder(fed)
    assert isinstance(vote.payload, Vote)
    assert vote.payload.vote is VoteChoice.NO
    assert ReasonCode.TRANSFER_ID_CLAIMED in vote.payload.reason_codes
    # The intruder's validly signed ABORT of "its" transfer reaches the log first.
    fed.decision_log.append(_intruders_decision(fed, intruder_prepare, Outcome.ABORT))
    fed.read_decisions(PARTNER)
    assert fed.node(PARTNER).ledger.query("ledger_totals").incoming == QUANTITY
    fed.run()
    assert _assert_atomic_and_conserved(fed, outcome.view.record.transfer_id) == "COMMITTED"


def test_id_reuse_in_flight_cannot_buy_a_commit_with_a_yes_vote() -> None:
    fed = _three()
    outcome = initiate(fed, quantity=QUANTITY)
    genuine = _prepare_on_partners_inbox(fed)
    fed.deliver_inbox(PARTNER, fed.inboxes[PARTNER].pop(0))
    intruder_prepare = _intruders_prepare(fed, genuine)
    fed.deliver_inbox(PARTNER, encode_envelope(intruder_prepare))
    vote = _partners_vote_to_intruder(fed)
    # Whatever PARTNER answered, the intruder appends a COMMIT carrying it, and
    # PARTY's own decision comes later.
    fed.decision_log.append(_intruders_decision(fed, intruder_prepare, Outcome.COMMIT, (vote,)))
    fed.read_decisions(PARTNER)
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 0
    fed.run()
    assert _assert_atomic_and_conserved(fed, outcome.view.record.transfer_id) == "COMMITTED"


def test_the_id_of_a_finished_transfer_is_refused_to_another_coordinator() -> None:
    fed = _three()
    outcome = initiate(fed, quantity=QUANTITY)
    genuine = _prepare_on_partners_inbox(fed)
    fed.run()
    assert _assert_atomic_and_conserved(fed, outcome.view.record.transfer_id) == "COMMITTED"
    intruder_prepare = _intruders_prepare(fed, genuine)
    fed.deliver_inbox(PARTNER, encode_envelope(intruder_prepare))
    vote = _partners_vote_to_intruder(fed)
    assert isinstance(vote.payload, Vote)
    assert (vote.payload.vote, vote.payload.reason_codes) == (
        VoteChoice.NO,
        (ReasonCode.TRANSFER_ALREADY_FINAL,),
    )
    assert fed.node(PARTNER).ledger.query("ledger_totals").incoming == 0


def test_a_decision_under_a_borrowed_message_id_does_not_hide_the_genuine_one() -> None:
    fed = _three()
    outcome = initiate(fed, quantity=QUANTITY)
    fed.publish()
    fed.deliver_inbox(PARTNER, fed.inboxes[PARTNER].pop(0))
    fed.publish()
    fed.deliver_inbox(PARTY, fed.inboxes[PARTY].pop(0))  # the YES: PARTY appends COMMIT
    fed.publish()
    (commit_bytes,) = fed.decision_log
    commit = decode_envelope(commit_bytes)
    assert isinstance(commit.payload, Decision)
    # The intruder copies the COMMIT's message id onto records of its own, ahead of it:
    # one claiming to be PARTY's (a bad signature), one openly its own (a good one).
    claiming = _sealed(fed, commit.payload, sender_party=PARTY, message_id=commit.message_id)
    own_abort = _intruders_decision(
        fed,
        _intruders_prepare(fed, _genuine_prepare(fed, outcome.view.record.transfer_id)),
        Outcome.ABORT,
    )
    own = decode_envelope(own_abort).model_copy(update={"message_id": commit.message_id})
    fed.decision_log[:0] = [encode_envelope(claiming), encode_envelope(own)]
    fed.run()
    assert _assert_atomic_and_conserved(fed, outcome.view.record.transfer_id) == "COMMITTED"


def test_a_prepare_under_a_borrowed_message_id_does_not_hide_the_genuine_one() -> None:
    fed = _three()
    outcome = initiate(fed, quantity=QUANTITY)
    genuine = _prepare_on_partners_inbox(fed)
    payload = genuine.payload
    assert isinstance(payload, Prepare)
    # A PREPARE of the intruder's own, under another transfer id, sent with the id
    # of PARTY's PREPARE and delivered before it.
    other = payload.model_copy(
        update={
            "transfer_id": uuid.uuid4(),
            "coordinator_party": OUTSIDER,
            "from_registry_id": OUTSIDER_REGISTRY_ID,
        }
    )
    borrowed = _sealed(
        fed, Prepare.model_validate(other.model_dump()), message_id=genuine.message_id
    )
    fed.inboxes[PARTNER].insert(0, encode_envelope(borrowed))
    fed.run()
    fed.inboxes.pop(OUTSIDER, None)
    assert _assert_atomic_and_conserved(fed, outcome.view.record.transfer_id) == "COMMITTED"


def _genuine_prepare(fed: Federation, transfer_id: UUID) -> Envelope:
    for row in fed.captured:
        if row.topic == inbox_topic(PARTNER):
            envelope = decode_envelope(row.value)
            if envelope.transfer_id == transfer_id and isinstance(envelope.payload, Prepare):
                return envelope
    raise AssertionError("PARTY's PREPARE was never published")
