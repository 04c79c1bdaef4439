"""Cross-border transfers between three real node processes over the real broker.

One federation per module (Peru transfers, Sweden and Kenya acquire), each
scenario on its own accounts or approaches so they do not see each other's
effects. Every scenario ends with the federation-wide checks: conservation
(held + retired + cancelled = issued, over every node) and no serial held twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.messages import Decision, Outcome, Prepare
from a6wire.signing import payload_digest, seal
from a6wire.topics import DECISION_TOPIC, decision_key, inbox_topic
from tests.e2e.helpers import (
    HTTP_CONFLICT_OR_UNPROCESSABLE,
    RawRecord,
    World,
    as_record,
    assert_federation_invariants,
    audit_of_transfer,
    blocks_quantity,
    ca_entries,
    end_offsets,
    forge,
    freeze,
    holdings,
    issue,
    ledger_snapshot,
    open_account,
    pause,
    paused,
    post_transfer,
    produce,
    record_loa,
    records_of,
    register_approach,
    resume,
    revoke_loa,
    run_transfer,
    running_federation,
    start_transfer,
    transfer_body,
    transfer_view,
    unfreeze,
    wait_for_record,
    wait_party_consumed,
    wait_status,
)

SENDER = "PER"
BUYER = "SWE"
THIRD = "KEN"
PARTIES = (SENDER, BUYER, THIRD)

# Units first transferred from Peru, which Sweden and Kenya may acquire.
APPROACH = "CA0101"
LOA = "PER-LOA-0101"
VINTAGE = 2024
ISSUED_AT_START = 20_000


def account(party: str, purpose: str) -> str:
    return f"{party}-{purpose}"


GOV = {party: account(party, "GOV") for party in PARTIES}


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base_dir = tmp_path_factory.mktemp("transfer-scenarios")
    with running_federation(kafka_bootstrap, base_dir, PARTIES) as running:
        for party in PARTIES:
            open_account(running, party, GOV[party])
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, (BUYER, THIRD))
        issue(
            running,
            SENDER,
            GOV[SENDER],
            APPROACH,
            ISSUED_AT_START,
            vintage=VINTAGE,
            authorisation_id=LOA,
        )
        assert_federation_invariants(running)
        yield running


def _fresh_accounts(world: World, purpose: str, *parties: str) -> dict[str, str]:
    """One new holding account per Party for one scenario; issue into the sender's."""
    accounts = {party: account(party, purpose) for party in parties}
    for party, account_id in accounts.items():
        open_account(world, party, account_id)
    return accounts


def _fund(world: World, account_id: str, quantity: int, *, loa: str | None = LOA) -> None:
    issue(world, SENDER, account_id, APPROACH, quantity, vintage=VINTAGE, authorisation_id=loa)


# ------------------------------------------------------------------ commits


def test_first_transfer_commits_at_both_with_the_senders_adjustment(world: World) -> None:
    accounts = _fresh_accounts(world, "FIRST", SENDER, BUYER)
    _fund(world, accounts[SENDER], 5_000)
    ca_before = {party: ca_entries(world, party) for party in PARTIES}
    quantity = 1_200
    body = transfer_body(
        accounts[SENDER], BUYER, accounts[BUYER], quantity, LOA, approach_id=APPROACH
    )
    transfer_id = body["transfer_id"]

    sender_view, receiver_view = run_transfer(world, SENDER, body)

    assert sender_view["status"] == "COMMITTED", sender_view
    assert receiver_view["status"] == "COMMITTED", receiver_view
    assert (sender_view["role"], receiver_view["role"]) == ("COORDINATOR", "PARTICIPANT")
    for view in (sender_view, receiver_view):
        assert (view["from_party"], view["to_party"]) == (SENDER, BUYER)
        assert view["quantity"] == quantity
        assert blocks_quantity(view["blocks"]) == quantity
    assert sender_view["blocks"] == receiver_view["blocks"]
    # The sender's coordinator hears DONE from the participant and completes.
    assert wait_status(world, SENDER, transfer_id, {"COMMITTED"}, completed=True)["completed"]

    assert holdings(world, SENDER, accounts[SENDER]) == 5_000 - quantity
    assert holdings(world, BUYER, accounts[BUYER]) == quantity

    # Invariant 3: the first transfer records Peru's adjustment for the vintage year.
    new_at_sender = [e for e in ca_entries(world, SENDER) if e not in ca_before[SENDER]]
    assert [(e["transfer_id"], e["year"], e["cause"]) for e in new_at_sender] == [
        (transfer_id, VINTAGE, "FIRST_TRANSFER")
    ], new_at_sender
    assert sum(e["quantity"] for e in new_at_sender) == quantity
    for party in (BUYER, THIRD):
        assert ca_entries(world, party) == ca_before[party], f"{party} adjusted for a transfer"

    # Both audit trails show the transfer, keyed by the same blocks.
    sender_audit = audit_of_transfer(world, SENDER, sender_view["blocks"], transfer_id)
    receiver_audit = audit_of_transfer(world, BUYER, receiver_view["blocks"], transfer_id)
    assert {e["action"] for e in sender_audit} & {"FIRST_TRANSFER", "TRANSFER_OUT"}, sender_audit
    assert "ACQUISITION" in {e["action"] for e in receiver_audit}, receiver_audit
    acquired = [e for e in receiver_audit if e["action"] == "ACQUISITION"]
    assert sum(e["quantity"] for e in acquired) == quantity
    assert {e["counterparty_party"] for e in acquired} == {SENDER}
    assert_federation_invariants(world)


def test_onward_transfer_to_a_third_party_records_no_second_adjustment(world: World) -> None:
    accounts = _fresh_accounts(world, "CHAIN", SENDER, BUYER, THIRD)
    _fund(world, accounts[SENDER], 800)
    first = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 800, LOA)
    first_views = run_transfer(world, SENDER, first)
    assert [view["status"] for view in first_views] == ["COMMITTED", "COMMITTED"], first_views
    ca_before = {party: ca_entries(world, party) for party in PARTIES}

    onward = transfer_body(accounts[BUYER], THIRD, accounts[THIRD], 500, LOA)
    sender_view, receiver_view = run_transfer(world, BUYER, onward)

    assert sender_view["status"] == "COMMITTED", sender_view
    assert receiver_view["status"] == "COMMITTED", receiver_view
    assert holdings(world, BUYER, accounts[BUYER]) == 300
    assert holdings(world, THIRD, accounts[THIRD]) == 500
    # Units already first-transferred carry no second adjustment, anywhere.
    for party in PARTIES:
        assert ca_entries(world, party) == ca_before[party], f"{party}'s CA ledger changed"
    # The onward blocks are serials Peru adjusted for in the first transfer.
    adjusted = [e for e in ca_entries(world, SENDER) if e["transfer_id"] == first["transfer_id"]]
    assert sum(e["quantity"] for e in adjusted) == 800
    onward_audit = audit_of_transfer(world, BUYER, sender_view["blocks"], onward["transfer_id"])
    assert "FIRST_TRANSFER" not in {e["action"] for e in onward_audit}, onward_audit
    assert "TRANSFER_OUT" in {e["action"] for e in onward_audit}, onward_audit
    third_audit = audit_of_transfer(world, THIRD, receiver_view["blocks"], onward["transfer_id"])
    assert "ACQUISITION" in {e["action"] for e in third_audit}, third_audit
    assert_federation_invariants(world)


# ------------------------------------------------------------------ refusals


def _assert_refused_by_sender(
    world: World,
    body: dict[str, Any],
    expected_reasons: set[str],
    *,
    statuses: frozenset[int] = HTTP_CONFLICT_OR_UNPROCESSABLE,
) -> None:
    """The sender's own ledger refuses before any PREPARE: 409/422 with reason codes,
    the transfer recorded ABORTED at the sender, nothing at the receiver."""
    sender_before = holdings(world, SENDER, body["from_account_id"])
    response = post_transfer(world, SENDER, body)
    assert response.status_code in statuses, response.text
    refusal = response.json()
    assert refusal["transfer_id"] == body["transfer_id"], refusal
    reasons = {refusal["reason"], *refusal["reasons"]}
    assert reasons & expected_reasons, f"expected one of {expected_reasons}, got {refusal}"
    view = transfer_view(world, SENDER, body["transfer_id"])
    assert view is not None, "a refused transfer is recorded"
    assert view["status"] == "ABORTED", view
    assert set(view["reasons"]) & expected_reasons, view
    receiver_view = transfer_view(world, body["to_party"], body["transfer_id"])
    assert receiver_view is None or receiver_view["status"] == "ABORTED", receiver_view
    assert holdings(world, SENDER, body["from_account_id"]) == sender_before
    assert holdings(world, body["to_party"], body["to_account_id"]) == 0


def _assert_refused_by_receiver(
    world: World, body: dict[str, Any], expected_reasons: set[str]
) -> None:
    """The receiver votes NO: ABORTED at both sides, its reasons at both, nothing moved."""
    sender_before = holdings(world, SENDER, body["from_account_id"])
    ca_before = ca_entries(world, SENDER)
    sender_view, receiver_view = run_transfer(world, SENDER, body)
    for view in (sender_view, receiver_view):
        assert view["status"] == "ABORTED", view
        assert set(view["reasons"]) & expected_reasons, view
    assert holdings(world, SENDER, body["from_account_id"]) == sender_before
    assert holdings(world, body["to_party"], body["to_account_id"]) == 0
    assert ca_entries(world, SENDER) == ca_before, "an abort records no adjustment"


def test_units_without_a_letter_of_authorisation_never_leave(world: World) -> None:
    accounts = _fresh_accounts(world, "NOLOA", SENDER, BUYER)
    _fund(world, accounts[SENDER], 100, loa=None)
    # Peru never issued this LoA: no authorisation covers these units or this transfer.
    body = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 100, "PER-LOA-NEVER-ISSUED")
    _assert_refused_by_sender(world, body, {"NO_AUTHORISATION"})
    assert_federation_invariants(world)


def test_a_letter_not_naming_the_acquirer_is_refused(world: World) -> None:
    accounts = _fresh_accounts(world, "NOTKEN", SENDER, THIRD)
    loa = "PER-LOA-0101-SWE-ONLY"
    record_loa(world, SENDER, loa, APPROACH, (BUYER,))
    _fund(world, accounts[SENDER], 100, loa=loa)
    body = transfer_body(accounts[SENDER], THIRD, accounts[THIRD], 100, loa)
    _assert_refused_by_sender(world, body, {"PARTY_NOT_AUTHORISED"})
    assert_federation_invariants(world)


def test_a_revoked_letter_of_authorisation_is_refused(world: World) -> None:
    accounts = _fresh_accounts(world, "REVOKED", SENDER, BUYER)
    loa = "PER-LOA-0101-REVOKED"
    record_loa(world, SENDER, loa, APPROACH, (BUYER,))
    _fund(world, accounts[SENDER], 100, loa=loa)
    revoke_loa(world, SENDER, loa)
    body = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 100, loa)
    _assert_refused_by_sender(world, body, {"AUTHORISATION_REVOKED"})
    assert_federation_invariants(world)


def test_insufficient_units_are_refused_by_the_sender_with_409(world: World) -> None:
    accounts = _fresh_accounts(world, "SHORT", SENDER, BUYER)
    _fund(world, accounts[SENDER], 100)
    body = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 101, LOA)
    _assert_refused_by_sender(world, body, {"INSUFFICIENT_UNITS"}, statuses=frozenset({409}))
    assert_federation_invariants(world)


def test_no_cooperative_approach_at_the_receiver_aborts_at_both(world: World) -> None:
    """Peru records an approach with Kenya that Kenya never agreed to: Kenya votes NO."""
    approach = "CA0104"
    loa = "PER-LOA-0104"
    accounts = _fresh_accounts(world, "NOCA", SENDER, THIRD)
    register_approach(world, approach, (SENDER, THIRD), register_at=(SENDER,))
    record_loa(world, SENDER, loa, approach, (THIRD,))
    issue(world, SENDER, accounts[SENDER], approach, 100, vintage=VINTAGE, authorisation_id=loa)
    body = transfer_body(accounts[SENDER], THIRD, accounts[THIRD], 100, loa)
    _assert_refused_by_receiver(
        world,
        body,
        {
            "UNKNOWN_COOPERATIVE_APPROACH",
            "PARTY_NOT_IN_COOPERATIVE_APPROACH",
            "NOT_COVERED_BY_COOPERATIVE_APPROACH",
        },
    )
    assert_federation_invariants(world)


def test_a_frozen_receiver_votes_no_and_both_abort(world: World) -> None:
    accounts = _fresh_accounts(world, "FROZEN", SENDER, THIRD)
    _fund(world, accounts[SENDER], 100)
    body = transfer_body(accounts[SENDER], THIRD, accounts[THIRD], 100, LOA)
    freeze(world, THIRD, "e2e: transfers suspended")
    try:
        _assert_refused_by_receiver(world, body, {"REGISTRY_FROZEN"})
    finally:
        unfreeze(world, THIRD)
    assert_federation_invariants(world)


# ------------------------------------------------- duplicates, replays, forgeries


async def _records_of_transfer(world: World, transfer_id: str) -> list[RawRecord]:
    records: list[RawRecord] = []
    for topic in (inbox_topic(SENDER), inbox_topic(BUYER), DECISION_TOPIC):
        records += await records_of(world.kafka_bootstrap, topic, transfer_id)
    return records


async def test_duplicated_and_replayed_messages_change_nothing(world: World) -> None:
    accounts = _fresh_accounts(world, "REPLAY", SENDER, BUYER)
    _fund(world, accounts[SENDER], 600)
    body = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 400, LOA)
    views = run_transfer(world, SENDER, body)
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    transfer_id = body["transfer_id"]
    wait_status(world, SENDER, transfer_id, {"COMMITTED"}, completed=True)
    records = await _records_of_transfer(world, transfer_id)
    kinds = {record.message_type for record in records}
    assert {"PREPARE", "VOTE", "DECISION", "DONE"} <= kinds, kinds
    watched = {SENDER: [accounts[SENDER]], BUYER: [accounts[BUYER]]}
    before = ledger_snapshot(world, watched)
    audit_before = {
        party: audit_of_transfer(world, party, views[0]["blocks"], transfer_id)
        for party in (SENDER, BUYER)
    }

    # Every record twice more, in order and then reversed: duplicated, replayed, reordered.
    marks = await produce(world.kafka_bootstrap, [*records, *reversed(records)])
    for party in (SENDER, BUYER, THIRD):
        await wait_party_consumed(world, party, marks)

    assert ledger_snapshot(world, watched) == before
    for party in (SENDER, BUYER):
        assert (
            audit_of_transfer(world, party, views[0]["blocks"], transfer_id)
            == (audit_before[party])
        )
        view = transfer_view(world, party, transfer_id)
        assert view is not None
        assert view["status"] == "COMMITTED", view
    assert holdings(world, BUYER, accounts[BUYER]) == 400
    assert_federation_invariants(world)


async def test_a_forged_prepare_is_refused_and_changes_nothing(world: World) -> None:
    accounts = _fresh_accounts(world, "FORGEP", SENDER, BUYER)
    _fund(world, accounts[SENDER], 50)
    body = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 50, LOA)
    views = run_transfer(world, SENDER, body)
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    real = await records_of(world.kafka_bootstrap, inbox_topic(BUYER), body["transfer_id"])
    template = next(record for record in real if record.message_type == "PREPARE")
    prepare = template.envelope().payload
    assert isinstance(prepare, Prepare)
    # The same Peruvian PREPARE for serials nobody holds, under a new transfer id:
    # validly signed, Sweden would vote YES and hold a pending credit.
    shift = 10**12
    blocks = tuple(
        block.model_copy(
            update={
                "first_serial": block.first_serial + shift,
                "last_serial": block.last_serial + shift,
            }
        )
        for block in prepare.blocks
    )
    forged_id = uuid.uuid4()
    forged = forge(template.envelope(), transfer_id=forged_id, blocks=blocks)
    watched = {BUYER: [accounts[BUYER]]}
    before = ledger_snapshot(world, watched)
    sender_inbox_before = await end_offsets(world.kafka_bootstrap, inbox_topic(SENDER))

    marks = await produce(world.kafka_bootstrap, [as_record(template, forged)])
    await wait_party_consumed(world, BUYER, marks)

    # Dropped at the edge: no record of the transfer, no vote, nothing held.
    assert transfer_view(world, BUYER, str(forged_id)) is None
    assert ledger_snapshot(world, watched) == before
    answers = await records_of(
        world.kafka_bootstrap, inbox_topic(SENDER), str(forged_id), since=sender_inbox_before
    )
    assert answers == [], f"Sweden answered a forged PREPARE: {[r.json() for r in answers]}"
    assert_federation_invariants(world)


async def test_a_forged_abort_neither_wins_nor_blocks_the_real_commit(world: World) -> None:
    """Sweden has voted YES and Peru is paused before deciding; an ABORT claiming to be
    Peru's but signed with another key lands first on the decision partition. It must
    not count: when Peru resumes, its COMMIT is the first valid record and wins."""
    accounts = _fresh_accounts(world, "FORGED", SENDER, BUYER)
    _fund(world, accounts[SENDER], 70)
    body = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 70, LOA)
    transfer_id = body["transfer_id"]
    buyer_inbox = await end_offsets(world.kafka_bootstrap, inbox_topic(BUYER))

    with paused(world, BUYER):
        start_transfer(world, SENDER, body)
        prepare_record = await wait_for_record(
            world.kafka_bootstrap, inbox_topic(BUYER), transfer_id, "PREPARE", since=buyer_inbox
        )
        pause(world, SENDER)
    try:
        wait_status(world, BUYER, transfer_id, {"PENDING"})
        prepare = prepare_record.envelope().payload
        assert isinstance(prepare, Prepare)
        abort = Decision(
            transfer_id=prepare.transfer_id,
            outcome=Outcome.ABORT,
            decided_by=SENDER,
            coordinator_party=SENDER,
            participants=prepare.participants,
            prepare_digest=payload_digest(prepare),
            reason_codes=("DEADLINE_PASSED",),
        )
        forged = seal(
            abort,
            sender_party=SENDER,
            sent_at=prepare_record.envelope().sent_at,
            message_id=uuid.uuid4(),
            private_key=Ed25519PrivateKey.generate(),
        )
        record = as_record(prepare_record, forged, topic=DECISION_TOPIC)
        record = RawRecord(
            record.topic, -1, -1, decision_key(transfer_id), record.value, record.headers
        )
        marks = await produce(world.kafka_bootstrap, [record])
        await wait_party_consumed(world, BUYER, marks)
        still = transfer_view(world, BUYER, transfer_id)
        assert still is not None
        assert still["status"] == "PENDING", f"a forged ABORT was applied: {still}"
    finally:
        resume(world, SENDER)

    sender_view = wait_status(world, SENDER, transfer_id)
    receiver_view = wait_status(world, BUYER, transfer_id)
    assert (sender_view["status"], receiver_view["status"]) == ("COMMITTED", "COMMITTED"), (
        sender_view,
        receiver_view,
    )
    assert holdings(world, BUYER, accounts[BUYER]) == 70
    assert_federation_invariants(world)
