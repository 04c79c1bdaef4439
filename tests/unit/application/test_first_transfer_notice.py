"""First transfer at use abroad, across two hand-wired nodes: CHE authorises units for OIMP
with first transfer = use or cancellation and sends them to GHA for OIMP; GHA uses them; the
signed notice GHA writes in the same transaction makes CHE record its corresponding
adjustment, once. Every delivery goes through the real ``TransferBus`` checks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from a6wire.keys import generate_private_key
from a6wire.messages import Envelope, FirstTransferNotice
from a6wire.signing import seal
from a6wire.verification import decode_envelope, encode_envelope
from registry.application.commands import CancelVoluntarily, IssueUnits, UseForOimp
from registry.application.transfers import NoticeEarlyError
from registry.domain.approaches import GHG_METRIC
from registry.domain.authorisations import FirstTransferDefinition, Purpose
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.selection import QuantitySelection
from registry.reports.aef import build_aef
from registry.reports.consistency import find_disagreements
from tests.unit.application.support import (
    OMGE_SHARE,
    OUTSIDER,
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
    approach,
    line,
    oimp_authorisation,
    set_up_registry,
)
from tests.unit.application.transfer_support import (
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    Federation,
    HandNode,
    federation,
    initiate,
    request,
)

VINTAGE = 2025
OUTSIDER_REGISTRY_ID = "JPN01"


@pytest.fixture
def fed() -> Federation:
    """CHE holds 100 units under an NDC+OIMP LoA whose OIMP first transfer is use or
    cancellation; GHA has an account to receive them."""
    fed = federation()
    sender, receiver = fed.node(PARTY), fed.node(PARTNER)
    loa = oimp_authorisation(FirstTransferDefinition.USE_OR_CANCELLATION)
    set_up_registry(sender.ledger, loa=loa, accounts=(SENDER_ACCOUNT,))
    set_up_registry(
        receiver.ledger,
        party=PARTNER,
        registry_id=PARTNER_REGISTRY_ID,
        accounts=(RECEIVER_ACCOUNT,),
    )
    sender.ledger.run(IssueUnits(SENDER_ACCOUNT, (line(100),)))
    return fed


def ca_balance(node: HandNode, party: str = PARTY) -> int:
    balance: int = node.ledger.query("adjustment_balance", party, VINTAGE, GHG_METRIC)
    return balance


def send_for_oimp(fed: Federation, quantity: int = 40) -> None:
    outcome = initiate(fed, quantity=quantity, purpose=Purpose.OIMP)
    assert not outcome.refused, outcome.message
    fed.run()


def use_at_partner(fed: Federation, quantity: int) -> None:
    fed.node(PARTNER).service.retire_units(
        UseForOimp(RECEIVER_ACCOUNT, QuantitySelection(quantity))
    )


def notices_sent(fed: Federation) -> list[bytes]:
    return [
        row.value for row in fed.captured if row.headers["message_type"] == "FIRST_TRANSFER_NOTICE"
    ]


def state(node: HandNode) -> tuple[Any, ...]:
    """What a refused notice must leave unchanged: balances, CA ledger, unit totals."""
    return (
        node.ledger.query("adjustments_for_party", PARTY),
        node.ledger.query("ledger_totals"),
        node.held(SENDER_ACCOUNT),
    )


def aef(node: HandNode) -> dict[str, Any]:
    source = node.ledger.query("report_source", fed_year(node))
    return build_aef(
        node=source.node,
        reported_year=source.reported_year,
        generated_at=source.read_at,
        accounts=source.accounts,
        approaches=source.approaches,
        authorisations=source.authorisations,
        audit=source.audit,
    ).to_document()


def fed_year(node: HandNode) -> int:
    return node.clock.now().year


def actions(node: HandNode) -> list[tuple[str, int, bool, str | None]]:
    return [
        (row["action_type"], row["quantity"], row["first_transfer"], row["acquiring_party"])
        for row in aef(node)["tables"]["actions"]
    ]


def test_use_abroad_records_the_ca_at_the_authorising_party_through_a_notice(
    fed: Federation,
) -> None:
    sender, receiver = fed.node(PARTY), fed.node(PARTNER)
    send_for_oimp(fed, 40)
    # The cross-border transfer for OIMP is not the first transfer: no CA yet, and CHE's
    # AEF shows the units authorised and transferred but not first transferred.
    assert ca_balance(sender) == 0
    assert ("transfer", 40, False, PARTNER) in actions(sender)
    assert "first_transfer" not in {row[0] for row in actions(sender)}
    assert receiver.held(RECEIVER_ACCOUNT) == 40

    use_at_partner(fed, 15)
    # Written in the use's transaction, not yet delivered: CHE has recorded nothing.
    assert len(notices_sent(fed)) == 0
    assert ca_balance(sender) == 0
    fed.run()
    assert len(notices_sent(fed)) == 1
    assert ca_balance(sender) == 15
    assert ca_balance(receiver, PARTNER) == 0
    assert ("first_transfer", 15, True, PARTNER) in actions(sender)
    assert sender.quarantine.refused() == []
    assert receiver.quarantine.refused() == []
    # Both AEFs still agree on the transfer (the first transfer row is CHE's alone).
    assert find_disagreements([aef(sender), aef(receiver)]) == []

    # A voluntary cancellation of more of the units is a first transfer too.
    receiver.service.retire_units(CancelVoluntarily(RECEIVER_ACCOUNT, QuantitySelection(5)))
    fed.run()
    assert ca_balance(sender) == 20


def test_a_notice_applies_once(fed: Federation) -> None:
    sender = fed.node(PARTY)
    send_for_oimp(fed, 40)
    use_at_partner(fed, 15)
    fed.run()
    (data,) = notices_sent(fed)
    after = state(sender)
    # The same record again (a republished outbox row): dropped by the inbox table.
    fed.deliver_inbox(PARTY, data)
    assert state(sender) == after
    assert sender.quarantine.refused() == []
    # The same notice under a new message id, validly signed by GHA: refused on the range.
    envelope = decode_envelope(data)
    assert isinstance(envelope.payload, FirstTransferNotice)
    fed.deliver_inbox(PARTY, _resealed(fed, envelope.payload, PARTNER))
    assert state(sender) == after
    assert [r.reason_code for r in sender.quarantine.refused()] == [
        ReasonCode.FIRST_TRANSFER_ALREADY_NOTICED
    ]


def _resealed(fed: Federation, payload: FirstTransferNotice, party: str, key: Any = None) -> bytes:
    return encode_envelope(
        seal(
            payload,
            sender_party=party,
            sent_at=fed.clock.now(),
            message_id=uuid.uuid4(),
            private_key=key or fed.node(party).key,
        )
    )


def _genuine_notice(fed: Federation) -> FirstTransferNotice:
    """A notice GHA really sent for 15 units, kept back from CHE's inbox."""
    send_for_oimp(fed, 40)
    use_at_partner(fed, 15)
    fed.publish()
    envelope: Envelope = decode_envelope(fed.inboxes[PARTY].pop())
    assert isinstance(envelope.payload, FirstTransferNotice)
    return envelope.payload


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        # Units CHE never sent abroad (still in its own account).
        (
            lambda notice: notice.model_copy(
                update={
                    "blocks": tuple(
                        block.model_copy(update={"first_serial": 1, "last_serial": 15})
                        for block in notice.blocks
                    )
                }
            ),
            ReasonCode.FIRST_TRANSFER_NOTICE_UNITS_NOT_SENT,
        ),
        # The wire refuses blocks that do not match the named LoA; an LoA CHE never issued:
        (
            lambda notice: notice.model_copy(
                update={
                    "authorisation_id": "LOA-NONE",
                    "blocks": tuple(
                        block.model_copy(update={"authorisation_id": "LOA-NONE"})
                        for block in notice.blocks
                    ),
                }
            ),
            ReasonCode.NO_AUTHORISATION,
        ),
    ],
)
def test_a_notice_that_fails_the_checks_is_quarantined_and_changes_nothing(
    fed: Federation, tamper: Any, reason: ReasonCode
) -> None:
    sender = fed.node(PARTY)
    genuine = _genuine_notice(fed)
    before = state(sender)
    forged = tamper(genuine)
    fed.deliver_inbox(PARTY, _resealed(fed, forged, PARTNER))
    assert state(sender) == before
    assert [r.reason_code for r in sender.quarantine.refused()] == [reason]
    # The genuine notice still applies afterwards.
    fed.deliver_inbox(PARTY, _resealed(fed, genuine, PARTNER))
    assert ca_balance(sender) == 15


def test_a_notice_signed_by_a_non_member_or_for_another_registry_is_quarantined(
    fed: Federation,
) -> None:
    sender = fed.node(PARTY)
    genuine = _genuine_notice(fed)
    before = state(sender)
    # Signed with a key that is not GHA's.
    fed.deliver_inbox(PARTY, _resealed(fed, genuine, PARTNER, key=generate_private_key()))
    # Signed by CHE itself, claiming to come from GHA's registry.
    fed.deliver_inbox(PARTY, _resealed(fed, genuine, PARTY))
    assert state(sender) == before
    assert [r.reason_code for r in sender.quarantine.refused()] == ["BAD_SIGNATURE", "WRONG_ROLE"]


def test_a_notice_read_before_the_commit_waits_for_it(fed: Federation) -> None:
    """GHA can read the COMMIT, and use the units, before CHE reads its own COMMIT."""
    sender, receiver = fed.node(PARTY), fed.node(PARTNER)
    assert not initiate(fed, quantity=40, purpose=Purpose.OIMP).refused
    fed.publish()
    fed.deliver_inbox(PARTNER, fed.inboxes[PARTNER].pop(0))  # PREPARE
    fed.publish()
    fed.deliver_inbox(PARTY, fed.inboxes[PARTY].pop(0))  # VOTE: CHE appends COMMIT
    fed.publish()
    fed.read_decisions(PARTNER)  # GHA applies the COMMIT first
    use_at_partner(fed, 15)
    fed.publish()
    notice = fed.inboxes[PARTY][-1]
    with pytest.raises(NoticeEarlyError):
        fed.deliver_inbox(PARTY, notice)  # transient: the broker redelivers it
    assert ca_balance(sender) == 0
    assert sender.quarantine.refused() == []
    fed.read_decisions(PARTY)  # CHE applies its COMMIT
    fed.run()  # ... and the redelivered notice applies
    assert ca_balance(sender) == 15
    assert sender.quarantine.refused() == []
    assert receiver.quarantine.refused() == []


def test_a_refused_use_sends_no_notice(fed: Federation) -> None:
    send_for_oimp(fed, 40)
    with pytest.raises(DomainError) as refused:
        use_at_partner(fed, 41)
    assert refused.value.reason is ReasonCode.INSUFFICIENT_UNITS
    fed.run()
    assert notices_sent(fed) == []
    assert ca_balance(fed.node(PARTY)) == 0
    assert fed.node(PARTNER).held(RECEIVER_ACCOUNT) == 40


def test_a_use_after_an_onward_transfer_is_noticed_to_the_authorising_party() -> None:
    """CHE → GHA → JPN, all for OIMP; JPN's use is CHE's first transfer, nobody else's."""
    fed = federation(
        ((PARTY, REGISTRY_ID), (PARTNER, PARTNER_REGISTRY_ID), (OUTSIDER, OUTSIDER_REGISTRY_ID))
    )
    three = approach(
        participating_parties=frozenset({PARTY, PARTNER, OUTSIDER}), omge_share=OMGE_SHARE
    )
    loa = oimp_authorisation(
        FirstTransferDefinition.USE_OR_CANCELLATION,
        authorised_parties=frozenset({PARTNER, OUTSIDER}),
    )
    sender, middle, last = fed.node(PARTY), fed.node(PARTNER), fed.node(OUTSIDER)
    set_up_registry(sender.ledger, cooperative_approach=three, loa=loa, accounts=(SENDER_ACCOUNT,))
    set_up_registry(
        middle.ledger,
        party=PARTNER,
        registry_id=PARTNER_REGISTRY_ID,
        cooperative_approach=three,
        accounts=(RECEIVER_ACCOUNT,),
    )
    set_up_registry(
        last.ledger,
        party=OUTSIDER,
        registry_id=OUTSIDER_REGISTRY_ID,
        cooperative_approach=three,
        accounts=("JPN-A",),
    )
    sender.ledger.run(IssueUnits(SENDER_ACCOUNT, (line(100),)))
    send_for_oimp(fed, 40)
    onward = request(
        20,
        from_account_id=RECEIVER_ACCOUNT,
        to_party=OUTSIDER,
        to_account_id="JPN-A",
        purpose=Purpose.OIMP,
    )
    assert not middle.service.initiate_transfer(onward).refused
    fed.run()
    assert last.held("JPN-A") == 20
    # GHA passed CHE's units on: no adjustment of its own, no OMGE share taken from it.
    assert ca_balance(middle, PARTNER) == 0
    assert middle.ledger.query("ledger_totals").cancelled == 0
    last.service.retire_units(UseForOimp("JPN-A", QuantitySelection(10)))
    fed.run()
    assert ca_balance(sender) == 10
    assert ca_balance(middle, PARTNER) == 0
    assert ca_balance(last, OUTSIDER) == 0
    assert all(node.quarantine.refused() == [] for node in fed.nodes.values())
