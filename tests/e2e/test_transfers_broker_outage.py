"""A two-minute broker outage under a stream of transfers, with three real node processes.

The federation runs on a broker of the test's own (``tests.own_broker``: its own
port below 32768 and data directory), so stopping it leaves every other test's
broker alone. Transfers are started at a steady rate before, during and after
the outage; their deadlines outlive the outage, so each one must end the same at
both Parties once the broker is back, without any node being restarted. While
the broker is down the sender's health turns ``degraded`` for its stalled
outbox, and it is ``ok`` again once everything has settled.

The bound stated for recovery is ``SETTLE_TIMEOUT_S`` after the broker is back:
each wait below is bounded by it and the test's own timeout (``TEST_TIMEOUT_S``)
covers the whole run. Neither is a speed assertion; they bound a hang.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.settings import OUTBOX_STALL_DEGRADED_AFTER_S_DEFAULT
from tests.e2e.helpers import (
    World,
    assert_federation_invariants,
    call,
    holdings,
    issue,
    open_account,
    record_loa,
    register_approach,
    running_federation,
    start_transfer,
    transfer_body,
    wait_status,
    wait_until,
)
from tests.own_broker import OwnBroker, own_broker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SENDER = "CHL"
RECEIVERS = ("SGP", "FJI")
PARTIES = (SENDER, *RECEIVERS)
APPROACH = "CA0808"
LOA = "CHL-LOA-0808"
VINTAGE = 2026

OUTAGE_S = 120.0
# One transfer every STREAM_INTERVAL_S, before, during and after the outage.
STREAM_INTERVAL_S = 1.0
STREAM_BEFORE_S = 10.0
STREAM_AFTER_S = 20.0
# Transfers started back to back just before the broker stops, so the nodes'
# producers have records in flight while it shuts down (what broke the old relay).
BURST_BEFORE_STOP = 30
TRANSFER_QUANTITY = 10
TRANSFERS_MAX = (
    int((STREAM_BEFORE_S + OUTAGE_S + STREAM_AFTER_S) / STREAM_INTERVAL_S) + BURST_BEFORE_STOP + 10
)
# Long past the outage and the settling, so no transfer may end by timing out.
TRANSFER_DEADLINE_S = 1800
# The stated bound: once the broker is back, every transfer is final at both
# Parties within this. It allows the relay's backoff ceiling, a producer rebuild,
# the consumers' rejoin after the outage and a loaded 2-core runner.
SETTLE_TIMEOUT_S = 300.0
# Health turns degraded once the oldest unsent row is older than its bound.
HEALTH_DEGRADED_TIMEOUT_S = OUTBOX_STALL_DEGRADED_AFTER_S_DEFAULT + 30.0
SETUP_TIMEOUT_S = 300.0
TEST_TIMEOUT_S = int(
    SETUP_TIMEOUT_S + STREAM_BEFORE_S + OUTAGE_S + STREAM_AFTER_S + 2 * SETTLE_TIMEOUT_S
)


@pytest.fixture
def outage_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    with own_broker(tmp_path / "kafka") as broker:
        yield broker


@pytest.fixture
def world(outage_broker: OwnBroker, tmp_path: Path) -> Iterator[World]:
    with running_federation(outage_broker.bootstrap, tmp_path / "federation", PARTIES) as running:
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, RECEIVERS)
        yield running


def _health(world: World, party: str) -> dict[str, Any]:
    body: dict[str, Any] = call(world.node(party), "GET", "/v1/health", token=None)
    return body


def _ok_or_none(world: World, party: str) -> bool | None:
    return True if _health(world, party)["status"] == "ok" else None


def _start_one(world: World, accounts: dict[str, str], started: list[dict[str, Any]]) -> None:
    receiver = RECEIVERS[len(started) % len(RECEIVERS)]
    body = transfer_body(
        accounts[SENDER],
        receiver,
        accounts[receiver],
        TRANSFER_QUANTITY,
        LOA,
        deadline_s=TRANSFER_DEADLINE_S,
        transfer_id=str(uuid.uuid4()),
    )
    start_transfer(world, SENDER, body)
    started.append(body)


def _stream_for(
    world: World,
    accounts: dict[str, str],
    started: list[dict[str, Any]],
    duration_s: float,
) -> None:
    """Start one transfer every STREAM_INTERVAL_S for ``duration_s``, alternating receivers."""
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        _start_one(world, accounts, started)
        time.sleep(STREAM_INTERVAL_S)


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_transfers_settle_the_same_at_both_parties_after_a_two_minute_broker_outage(
    world: World, outage_broker: OwnBroker
) -> None:
    accounts = {party: f"{party}-OUTAGE" for party in PARTIES}
    for party, account_id in accounts.items():
        open_account(world, party, account_id)
    issue(
        world,
        SENDER,
        accounts[SENDER],
        APPROACH,
        TRANSFERS_MAX * TRANSFER_QUANTITY,
        vintage=VINTAGE,
        authorisation_id=LOA,
    )
    pids = {party: world.pid(party) for party in PARTIES}
    started: list[dict[str, Any]] = []

    _stream_for(world, accounts, started, STREAM_BEFORE_S)
    for _ in range(BURST_BEFORE_STOP):
        _start_one(world, accounts, started)
    outage_broker.stop()
    outage_started = time.monotonic()
    try:
        _stream_for(world, accounts, started, OUTAGE_S / 2)
        # By now the sender's outbox has waited past its bound: health says so.
        degraded = wait_until(
            lambda: body if (body := _health(world, SENDER))["status"] == "degraded" else None,
            timeout_s=HEALTH_DEGRADED_TIMEOUT_S,
            what=f"{SENDER}'s health to turn degraded during the outage",
        )
        assert any("outbox" in reason for reason in degraded["reasons"]), degraded
        _stream_for(world, accounts, started, OUTAGE_S - (time.monotonic() - outage_started))
    finally:
        outage_broker.start()
    _stream_for(world, accounts, started, STREAM_AFTER_S)

    statuses: dict[str, str] = {}
    for body in started:
        transfer_id = body["transfer_id"]
        receiver = body["to_party"]
        sender_view = wait_status(world, SENDER, transfer_id, timeout_s=SETTLE_TIMEOUT_S)
        receiver_view = wait_status(world, receiver, transfer_id, timeout_s=SETTLE_TIMEOUT_S)
        assert sender_view["status"] == receiver_view["status"], (sender_view, receiver_view)
        statuses[transfer_id] = sender_view["status"]
    # The deadlines outlive the outage: nothing had a reason to abort.
    assert set(statuses.values()) == {"COMMITTED"}, statuses
    committed_to = {
        party: sum(1 for body in started if body["to_party"] == party) * TRANSFER_QUANTITY
        for party in RECEIVERS
    }
    for party in RECEIVERS:
        assert holdings(world, party, accounts[party]) == committed_to[party]
    assert_federation_invariants(world)

    # Nobody was restarted, and health is ok again once the outboxes have drained.
    assert {party: world.pid(party) for party in PARTIES} == pids
    for party in PARTIES:
        wait_until(
            functools.partial(_ok_or_none, world, party),
            timeout_s=SETTLE_TIMEOUT_S,
            what=f"{party}'s health to be ok again",
        )
    assert _health(world, SENDER)["reasons"] == []
