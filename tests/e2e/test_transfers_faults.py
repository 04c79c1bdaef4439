"""Crashes in the middle of a cross-border transfer, with real processes and signals.

The window between "PREPARE sent" and "decision read" is made exact, not hoped
for: the receiver is paused (SIGSTOP) before the transfer starts, so it cannot
vote; the test consumes the receiver's inbox until the PREPARE is on it, then
crashes or pauses the coordinator, and only then lets the receiver run.

One federation per module (Rwanda transfers, Norway acquires, Vanuatu watches
the decision log); every test leaves every node running, and ends with the
federation-wide conservation and no-double-holding checks.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from a6wire.topics import inbox_topic
from tests.e2e.helpers import (
    World,
    assert_federation_invariants,
    audit_of_transfer,
    end_offsets,
    holdings,
    issue,
    open_account,
    pause,
    paused,
    record_loa,
    register_approach,
    resume,
    running_federation,
    start_transfer,
    transfer_body,
    wait_for_record,
    wait_status,
)

SENDER = "RWA"
RECEIVER = "NOR"
THIRD = "VUT"
PARTIES = (SENDER, RECEIVER, THIRD)
APPROACH = "CA0201"
LOA = "RWA-LOA-0201"
VINTAGE = 2025

# A short deadline keeps the abort-by-timeout scenario short; long enough that the
# receiver, resumed right after the coordinator's crash, still votes before it.
SHORT_DEADLINE_S = 10
# What the participant waits past the deadline before it aborts itself
# (registry.protocol.constants.DECISION_GRACE_MS), and slack for a loaded runner.
DECISION_GRACE_S = 30
ABORT_BY_TIMEOUT_SLACK_S = 30
ABORT_BY_TIMEOUT_TIMEOUT_S = SHORT_DEADLINE_S + DECISION_GRACE_S + ABORT_BY_TIMEOUT_SLACK_S


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base_dir = tmp_path_factory.mktemp("transfer-faults")
    with running_federation(kafka_bootstrap, base_dir, PARTIES) as running:
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, (RECEIVER, THIRD))
        yield running


@pytest.fixture
def every_node_running(world: World) -> Iterator[None]:
    """Whatever a test crashed or paused is running again for the next one."""
    yield
    for party in PARTIES:
        if world.federation.is_running(party):
            resume(world, party)
        else:
            world.federation.restart(party)


def _accounts(world: World, name: str, quantity: int) -> dict[str, str]:
    accounts = {SENDER: f"{SENDER}-{name}", RECEIVER: f"{RECEIVER}-{name}"}
    for party, account_id in accounts.items():
        open_account(world, party, account_id)
    issue(
        world, SENDER, accounts[SENDER], APPROACH, quantity, vintage=VINTAGE, authorisation_id=LOA
    )
    return accounts


async def _prepare_on_paused_receiver(world: World, body: dict[str, Any]) -> None:
    """Start the transfer while the receiver is paused; return once the PREPARE is on the
    receiver's inbox, with the receiver still paused (the caller resumes it)."""
    since = await end_offsets(world.kafka_bootstrap, inbox_topic(RECEIVER))
    pause(world, RECEIVER)
    start_transfer(world, SENDER, body)
    await wait_for_record(
        world.kafka_bootstrap,
        inbox_topic(RECEIVER),
        body["transfer_id"],
        "PREPARE",
        since=since,
    )


def _assert_prepared(world: World, transfer_id: str) -> dict[str, Any]:
    """The receiver voted YES and holds the pending credit, awaiting the decision."""
    view = wait_status(world, RECEIVER, transfer_id, {"PENDING"})
    assert view["role"] == "PARTICIPANT", view
    assert view["phase"] == "PREPARED", view
    return view


@pytest.mark.usefixtures("every_node_running")
async def test_coordinator_killed_after_prepare_receiver_aborts_and_releases(
    world: World,
) -> None:
    """Termination without the coordinator: it dies right after sending PREPARE and
    stays dead; the receiver votes YES, waits deadline + grace, appends ABORT itself,
    and releases its pending credit."""
    accounts = _accounts(world, "KILLED", 300)
    body = transfer_body(
        accounts[SENDER], RECEIVER, accounts[RECEIVER], 300, LOA, deadline_s=SHORT_DEADLINE_S
    )
    transfer_id = body["transfer_id"]
    started = time.monotonic()
    try:
        await _prepare_on_paused_receiver(world, body)
        world.federation.kill(SENDER, signal.SIGKILL)
    finally:
        resume(world, RECEIVER)
    prepared = _assert_prepared(world, transfer_id)

    aborted = wait_status(
        world, RECEIVER, transfer_id, {"ABORTED"}, timeout_s=ABORT_BY_TIMEOUT_TIMEOUT_S
    )
    assert time.monotonic() - started >= SHORT_DEADLINE_S, "aborted before the deadline"
    assert holdings(world, RECEIVER, accounts[RECEIVER]) == 0
    trail = audit_of_transfer(world, RECEIVER, prepared["blocks"], transfer_id)
    actions = [entry["action"] for entry in trail]
    assert "INCOMING_HOLD" in actions, trail
    assert "INCOMING_RELEASE" in actions, trail
    assert "ACQUISITION" not in actions, trail
    assert aborted["blocks"] == prepared["blocks"]

    # The coordinator, back long after, reads the receiver's ABORT and releases its
    # reservation: both sides ABORTED, the units home, nothing adjusted.
    world.federation.restart(SENDER)
    sender_view = wait_status(world, SENDER, transfer_id, {"ABORTED"})
    assert sender_view["role"] == "COORDINATOR", sender_view
    assert holdings(world, SENDER, accounts[SENDER]) == 300
    assert_federation_invariants(world)


@pytest.mark.usefixtures("every_node_running")
async def test_receiver_killed_after_voting_yes_and_restarted_commits(world: World) -> None:
    """The receiver crashes between its YES vote and the decision; the coordinator commits
    meanwhile; the restarted receiver reads the decision and credits."""
    accounts = _accounts(world, "RECEIVERDIES", 250)
    body = transfer_body(accounts[SENDER], RECEIVER, accounts[RECEIVER], 250, LOA)
    transfer_id = body["transfer_id"]
    sender_inbox = await end_offsets(world.kafka_bootstrap, inbox_topic(SENDER))
    try:
        await _prepare_on_paused_receiver(world, body)
        pause(world, SENDER)
    finally:
        resume(world, RECEIVER)
    with paused(world, SENDER):
        _assert_prepared(world, transfer_id)
        # Killed only once its YES is on the coordinator's inbox, so the coordinator
        # can commit without it.
        await wait_for_record(
            world.kafka_bootstrap, inbox_topic(SENDER), transfer_id, "VOTE", since=sender_inbox
        )
        world.federation.kill(RECEIVER, signal.SIGKILL)
    # The coordinator now reads the YES vote and commits without the receiver.
    sender_view = wait_status(world, SENDER, transfer_id)
    assert sender_view["status"] == "COMMITTED", sender_view
    assert not sender_view["completed"], "DONE from a dead receiver"

    world.federation.restart(RECEIVER)
    receiver_view = wait_status(world, RECEIVER, transfer_id)
    assert receiver_view["status"] == "COMMITTED", receiver_view
    assert wait_status(world, SENDER, transfer_id, completed=True)["completed"]
    assert holdings(world, SENDER, accounts[SENDER]) == 0
    assert holdings(world, RECEIVER, accounts[RECEIVER]) == 250
    acquired = audit_of_transfer(world, RECEIVER, receiver_view["blocks"], transfer_id)
    assert [e["action"] for e in acquired].count("ACQUISITION") >= 1, acquired
    assert sum(e["quantity"] for e in acquired if e["action"] == "ACQUISITION") == 250
    assert_federation_invariants(world)


@pytest.mark.usefixtures("every_node_running")
async def test_coordinator_killed_mid_transfer_and_restarted_commits(world: World) -> None:
    """The coordinator crashes after PREPARE, before reading the vote; restarted, it
    reloads the transfer, reads the YES waiting on its inbox and commits."""
    accounts = _accounts(world, "SENDERDIES", 150)
    body = transfer_body(accounts[SENDER], RECEIVER, accounts[RECEIVER], 150, LOA)
    transfer_id = body["transfer_id"]
    try:
        await _prepare_on_paused_receiver(world, body)
        world.federation.kill(SENDER, signal.SIGKILL)
    finally:
        resume(world, RECEIVER)
    _assert_prepared(world, transfer_id)

    world.federation.restart(SENDER)
    sender_view = wait_status(world, SENDER, transfer_id)
    receiver_view = wait_status(world, RECEIVER, transfer_id)
    assert (sender_view["status"], receiver_view["status"]) == ("COMMITTED", "COMMITTED"), (
        sender_view,
        receiver_view,
    )
    assert holdings(world, SENDER, accounts[SENDER]) == 0
    assert holdings(world, RECEIVER, accounts[RECEIVER]) == 150
    assert_federation_invariants(world)
