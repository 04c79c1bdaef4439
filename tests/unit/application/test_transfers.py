"""The transfer handlers on in-memory twins: two nodes wired by hand (transfer_support)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from a6wire.keys import generate_private_key
from a6wire.messages import Prepare
from a6wire.signing import seal
from a6wire.verification import decode_envelope, encode_envelope
from tests.unit.application.support import PARTNER, PARTY
from tests.unit.application.transfer_support import (
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    Federation,
    federation,
    initiate,
    set_up_pair,
)


def _pair() -> Federation:
    fed = federation()
    set_up_pair(fed)
    return fed


def test_a_transfer_commits_at_both_nodes_and_moves_the_units() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=40)
    assert not outcome.refused
    fed.run()
    transfer_id = outcome.view.record.transfer_id
    assert fed.node(PARTY).view(transfer_id).record.phase == "COMPLETED"
    assert fed.node(PARTY).view(transfer_id).to_dict()["status"] == "COMMITTED"
    assert fed.node(PARTNER).view(transfer_id).to_dict()["status"] == "COMMITTED"
    assert fed.node(PARTY).held(SENDER_ACCOUNT) == 60
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 40


def test_a_refusal_by_the_receiver_aborts_everywhere_and_releases_the_units() -> None:
    fed = _pair()
    outcome = initiate(fed, to_account_id="GHA-NOPE")
    fed.run()
    transfer_id = outcome.view.record.transfer_id
    sender_view = fed.node(PARTY).view(transfer_id).to_dict()
    assert sender_view["status"] == "ABORTED"
    assert "UNKNOWN_ACCOUNT" in sender_view["reasons"]
    assert fed.node(PARTNER).view(transfer_id).to_dict()["status"] == "ABORTED"
    assert fed.node(PARTY).held(SENDER_ACCOUNT) == 100


def test_a_refusal_by_the_senders_ledger_sends_nothing_and_is_recorded() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=1_000)
    assert outcome.refused
    assert outcome.view.to_dict()["reasons"][0] == "INSUFFICIENT_UNITS"
    assert fed.node(PARTY).transfer_store.outbox == []
    assert fed.node(PARTY).view(outcome.view.record.transfer_id).to_dict()["status"] == "ABORTED"


def test_replayed_and_duplicated_messages_change_nothing() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=40)
    fed.run()
    stores = {p: (dict(fed.node(p).store.blocks), len(fed.node(p).store.audit)) for p in fed.nodes}
    for row in list(fed.captured):
        if row.topic.endswith(".inbox"):
            fed.deliver_inbox(row.topic.split(".")[2], row.value)
        else:
            fed.decision_log.append(row.value)
    fed.run()
    for party, (blocks, audit_count) in stores.items():
        assert fed.node(party).store.blocks == blocks
        assert len(fed.node(party).store.audit) == audit_count
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 40
    assert fed.node(PARTY).view(outcome.view.record.transfer_id).to_dict()["status"] == "COMMITTED"


def test_a_resent_prepare_after_the_commit_is_answered_with_done_and_holds_nothing() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=40)
    fed.run()
    prepare = next(r for r in fed.captured if r.headers["message_type"] == "PREPARE")
    envelope = decode_envelope(prepare.value)
    # The coordinator's re-send: same PREPARE, a new message id (past the inbox dedupe).
    resent = seal(
        envelope.payload,
        sender_party=PARTY,
        sent_at=fed.clock.now(),
        message_id=uuid.uuid4(),
        private_key=fed.node(PARTY).key,
    )
    fed.deliver_inbox(PARTNER, encode_envelope(resent))
    fed.run()
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 40
    assert fed.node(PARTY).view(outcome.view.record.transfer_id).record.phase == "COMPLETED"


def test_a_prepare_arriving_after_an_abort_won_is_refused_at_once() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=40, deadline_s=5)
    fed.publish()
    delayed = fed.inboxes.pop(PARTNER)
    fed.tick(timedelta(seconds=10))  # the coordinator's deadline passes: it appends ABORT
    fed.run()
    transfer_id = outcome.view.record.transfer_id
    assert fed.node(PARTNER).view(transfer_id).to_dict()["status"] == "ABORTED"
    for data in delayed:
        fed.deliver_inbox(PARTNER, data)
    fed.run()
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 0
    assert fed.node(PARTNER).store.reservations == {}
    assert fed.node(PARTY).held(SENDER_ACCOUNT) == 100
    assert fed.node(PARTY).view(transfer_id).record.phase == "COMPLETED"


def test_a_forged_prepare_is_refused_before_any_handler_runs() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=40)
    fed.publish()
    genuine = decode_envelope(fed.inboxes[PARTNER][0])
    payload = genuine.payload
    assert isinstance(payload, Prepare)
    forged = seal(
        payload.model_copy(update={"transfer_id": uuid.uuid4()}),
        sender_party=PARTY,
        sent_at=fed.clock.now(),
        message_id=uuid.uuid4(),
        private_key=generate_private_key(),  # not CHE's key
    )
    fed.deliver_inbox(PARTNER, encode_envelope(forged))
    assert fed.node(PARTNER).transfer_store.transfers == {}
    assert fed.node(PARTNER).transfer_store.inbox == set()
    fed.run()
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 40
    assert outcome.view.record.transfer_id in {
        k.transfer_id for k in fed.node(PARTY).transfer_store.transfers
    }


def test_a_participant_that_voted_yes_aborts_itself_after_deadline_and_grace() -> None:
    fed = _pair()
    outcome = initiate(fed, quantity=40, deadline_s=5)
    fed.publish()
    fed.run(hold_inbox_of=(PARTY,))  # the coordinator never hears the vote
    transfer_id = outcome.view.record.transfer_id
    assert fed.node(PARTNER).view(transfer_id).record.phase == "PREPARED"
    fed.clock.advance(timedelta(seconds=60))
    fed.node(PARTNER).service.tick()
    fed.run(hold_inbox_of=(PARTY,))
    fed.run()
    assert fed.node(PARTNER).view(transfer_id).to_dict()["status"] == "ABORTED"
    assert fed.node(PARTY).view(transfer_id).to_dict()["status"] == "ABORTED"
    assert fed.node(PARTY).held(SENDER_ACCOUNT) == 100
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 0
