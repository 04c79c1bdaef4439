"""A suspended member's new transfers are refused by everyone; in-flight ones are decided.

Two in-memory nodes (transfer_support) whose directory suspends a Party from the
moment the test adds it to ``suspended``, as a new directory version would.
"""

from __future__ import annotations

from tests.unit.application.support import PARTNER, PARTY
from tests.unit.application.transfer_support import (
    SENDER_ACCOUNT,
    federation,
    initiate,
    set_up_pair,
)

MEMBER_SUSPENDED = "MEMBER_SUSPENDED"


def test_a_transfer_to_or_from_a_suspended_member_is_refused_before_anything_is_reserved() -> None:
    for suspended in (PARTNER, PARTY):
        fed = federation(suspended={suspended})
        set_up_pair(fed)
        outcome = initiate(fed)
        assert outcome.refused
        assert MEMBER_SUSPENDED in outcome.view.record.reasons
        assert fed.node(PARTY).held(SENDER_ACCOUNT) == 100
        assert fed.publish() == 0  # no PREPARE left


def test_a_prepare_from_a_member_suspended_since_it_left_gets_a_no_and_aborts() -> None:
    suspended: set[str] = set()
    fed = federation(suspended=suspended)
    set_up_pair(fed)
    outcome = initiate(fed)
    assert not outcome.refused
    suspended.add(PARTY)  # the receiver adopts the suspension before the PREPARE arrives
    fed.run()
    transfer_id = outcome.view.record.transfer_id
    assert fed.node(PARTY).view(transfer_id).record.status.value == "ABORTED"
    receiver = fed.node(PARTNER).view(transfer_id).record
    assert receiver.status.value == "ABORTED"
    assert MEMBER_SUSPENDED in receiver.reasons
    assert fed.node(PARTY).held(SENDER_ACCOUNT) == 100


def test_a_transfer_voted_before_the_suspension_still_commits() -> None:
    suspended: set[str] = set()
    fed = federation(suspended=suspended)
    set_up_pair(fed)
    outcome = initiate(fed)
    fed.publish()
    fed.deliver_inbox(PARTNER, fed.inboxes[PARTNER].pop(0))  # the YES vote is cast
    suspended.add(PARTY)
    fed.run()
    transfer_id = outcome.view.record.transfer_id
    assert fed.node(PARTY).view(transfer_id).record.status.value == "COMMITTED"
    assert fed.node(PARTNER).view(transfer_id).record.status.value == "COMMITTED"
