"""The bus refuses into quarantine what can never apply, and raises only storage failures.

Driven through the real ``TransferBus`` of two in-memory nodes (transfer_support),
with the in-memory quarantine; the SQL quarantine has its own tests under
tests/integration/messaging, and the real broker's under tests/integration/transfers.
"""

from __future__ import annotations

import uuid

import pytest

from a6wire.keys import generate_private_key
from a6wire.messages import Done, DoneOutcome
from a6wire.signing import seal
from a6wire.topics import DECISION_TOPIC, inbox_topic
from a6wire.verification import encode_envelope
from registry.adapters.messaging import RefusedRecord
from registry.application.federation import DirectoryBehindError
from registry.application.ports import StorageUnavailableError
from registry.application.transfers import LedgerInvariantError, MessagePosition
from registry.domain.errors import DomainError, ReasonCode
from registry.entrypoints.bus import TransferBus
from tests.unit.application.support import PARTNER, PARTY
from tests.unit.application.transfer_support import (
    RECEIVER_ACCOUNT,
    Federation,
    HandNode,
    federation,
    initiate,
    set_up_pair,
)

INBOX = MessagePosition(inbox_topic(PARTNER), 2, 41)
DECISIONS = MessagePosition(DECISION_TOPIC, 0, 7)


def _pair() -> Federation:
    fed = federation()
    set_up_pair(fed)
    return fed


def _bus(node: HandNode) -> tuple[TransferBus, list[tuple[str, str]]]:
    assert node.bus is not None
    seen: list[tuple[str, str]] = []
    node.bus.on_quarantined = lambda kind, reason: seen.append((kind, reason))
    return node.bus, seen


def _done(fed: Federation, sender: str, coordinator: str, *, signed_by: HandNode | None) -> bytes:
    envelope = seal(
        Done(
            transfer_id=uuid.uuid4(), coordinator_party=coordinator, outcome=DoneOutcome.COMMITTED
        ),
        sender_party=sender,
        sent_at=fed.clock.now(),
        message_id=uuid.uuid4(),
        private_key=signed_by.key if signed_by is not None else generate_private_key(),
    )
    return encode_envelope(envelope)


def _reasons(node: HandNode) -> list[str]:
    return [refused.reason_code for refused in node.quarantine.refused()]


def test_undecodable_bytes_are_quarantined_logged_and_counted_once() -> None:
    fed = _pair()
    receiver = fed.node(PARTNER)
    bus, seen = _bus(receiver)
    garbage = b"\x00 this is not an envelope"
    bus.handle_inbox_bytes(garbage, INBOX, b"key")
    bus.handle_inbox_bytes(garbage, INBOX, b"key")  # redelivered after a crash
    assert receiver.quarantine.refused() == [
        RefusedRecord(
            topic=INBOX.topic,
            partition=INBOX.partition,
            offset=INBOX.offset,
            key=b"key",
            value=garbage,
            reason_code="NOT_JSON",
            detail=receiver.quarantine.refused()[0].detail,
        )
    ]
    assert seen == [("inbox", "NOT_JSON")]


def test_envelopes_that_fail_verification_are_quarantined_with_their_reason() -> None:
    fed = _pair()
    sender, receiver = fed.node(PARTY), fed.node(PARTNER)
    bus, seen = _bus(receiver)
    records = [
        _done(fed, PARTY, PARTNER, signed_by=None),  # a member's name, another key
        _done(fed, "JPN", PARTNER, signed_by=None),  # not a member
        _done(fed, PARTY, PARTY, signed_by=sender),  # a DONE from the coordinator itself
    ]
    for offset, data in enumerate(records):
        bus.handle_inbox_bytes(data, MessagePosition(INBOX.topic, 0, offset))
    assert _reasons(receiver) == ["BAD_SIGNATURE", "UNKNOWN_SENDER", "WRONG_ROLE"]
    assert [reason for _, reason in seen] == _reasons(receiver)
    assert all(refused.transfer_id is not None for refused in receiver.quarantine.refused())
    assert receiver.transfer_store.inbox == set()


def test_a_decision_on_an_inbox_and_a_non_decision_on_the_decision_topic_are_refused() -> None:
    fed = _pair()
    sender, receiver = fed.node(PARTY), fed.node(PARTNER)
    initiate(fed, quantity=40)
    fed.run()
    assert fed.decision_log
    bus, seen = _bus(receiver)
    bus.handle_inbox_bytes(fed.decision_log[0], INBOX)
    bus.handle_decision_bytes(_done(fed, PARTNER, PARTY, signed_by=receiver), DECISIONS)
    assert _reasons(receiver) == ["NOT_A_DECISION", "DECISION_ON_INBOX"]  # by coordinates
    assert sorted(seen) == [("decision", "NOT_A_DECISION"), ("inbox", "DECISION_ON_INBOX")]
    assert sender.quarantine.refused() == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (DomainError(ReasonCode.UNKNOWN_ACCOUNT, "no such account"), "UNKNOWN_ACCOUNT"),
        (LedgerInvariantError("held went negative"), "LEDGER_INVARIANT"),
        (KeyError("a bug in a handler"), "HANDLER_FAILED"),
    ],
)
def test_a_handler_that_refuses_for_good_leaves_a_quarantine_row(
    error: Exception, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = _pair()
    receiver = fed.node(PARTNER)
    initiate(fed, quantity=40)
    fed.publish()
    prepare = fed.inboxes[PARTNER].pop(0)

    def refuse(*_: object) -> None:
        raise error

    monkeypatch.setattr(receiver.service, "handle_inbox_envelope", refuse)
    monkeypatch.setattr(receiver.service, "handle_decision_record", refuse)
    bus, seen = _bus(receiver)
    bus.handle_inbox_bytes(prepare, INBOX)
    assert _reasons(receiver) == [reason]
    assert seen == [("inbox", reason)]


def test_a_failure_of_the_nodes_own_database_is_raised_not_quarantined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fed = _pair()
    receiver = fed.node(PARTNER)
    initiate(fed, quantity=40)
    fed.publish()
    prepare = fed.inboxes[PARTNER][0]

    def database_down(*_: object) -> None:
        raise StorageUnavailableError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(receiver.service, "handle_inbox_envelope", database_down)
        bus, seen = _bus(receiver)
        with pytest.raises(StorageUnavailableError):
            bus.handle_inbox_bytes(prepare, INBOX)
    assert receiver.quarantine.refused() == []
    assert seen == []
    # Redelivered once the database answers, the same record applies.
    fed.run()
    assert receiver.held(RECEIVER_ACCOUNT) == 40


def test_a_record_is_not_committed_past_when_its_quarantine_row_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fed = _pair()
    receiver = fed.node(PARTNER)
    bus, seen = _bus(receiver)

    def database_down(_: RefusedRecord) -> bool:
        raise StorageUnavailableError("connection refused")

    monkeypatch.setattr(receiver.quarantine, "record", database_down)
    with pytest.raises(StorageUnavailableError):
        bus.handle_inbox_bytes(b"garbage", INBOX)
    assert seen == []


def test_a_sender_or_key_unknown_while_directory_versions_wait_unread_is_read_again() -> None:
    """A member that joined, or a key that rotated, in a version this node has not
    read yet: the record is redelivered (a transient error), never quarantined; once
    the directory is read to its end, the same record is refused for good."""
    fed = _pair()
    receiver = fed.node(PARTNER)
    assert receiver.bus is not None
    behind = [True]
    bus = TransferBus(
        receiver.service,
        fed.directory,
        receiver.quarantine,
        directory_behind=lambda _sent_at: behind[0],
    )
    records = [
        _done(fed, PARTY, PARTNER, signed_by=None),  # a member's name, a key not listed
        _done(fed, "JPN", PARTNER, signed_by=None),  # not a member (yet)
    ]
    for offset, data in enumerate(records):
        with pytest.raises(DirectoryBehindError):
            bus.handle_inbox_bytes(data, MessagePosition(INBOX.topic, 0, offset))
    assert _reasons(receiver) == []
    behind[0] = False
    for offset, data in enumerate(records):
        bus.handle_inbox_bytes(data, MessagePosition(INBOX.topic, 0, offset))
    assert _reasons(receiver) == ["BAD_SIGNATURE", "UNKNOWN_SENDER"]
