"""A seeded crash campaign (slow): transfers with random SIGKILLs of either side.

Each round starts a transfer, optionally kills its coordinator or its receiver
after a random delay, restarts the victim, and moves on; at the end every
transfer must be final, with the same outcome at both sides (atomicity), the
sender's corresponding adjustments must equal exactly the committed first
transfers, and the federation must conserve units with no serial held twice.

    .venv/bin/python -m pytest -m slow tests/e2e/test_transfers_campaign.py
    A6_CAMPAIGN_SEED=7 ...   # replay one campaign's choices
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.helpers import (
    World,
    assert_federation_invariants,
    ca_entries,
    issue,
    open_account,
    record_loa,
    register_approach,
    running_federation,
    start_transfer,
    transfer_body,
    transfer_view,
    wait_status,
)

pytestmark = pytest.mark.slow

SENDER = "CHL"
RECEIVERS = ("DNK", "URY")
PARTIES = (SENDER, *RECEIVERS)
APPROACH = "CA0401"
LOA = "CHL-LOA-0401"
VINTAGE = 2023
ROUNDS = 12
ISSUED = 10_000
QUANTITY_MAX = 50
# Short enough that a transfer orphaned by a crash aborts within the campaign.
DEADLINE_S = 20
# A fault lands at a random moment in the first FAULT_DELAY_MAX_S after the request:
# before, during or after PREPARE, the vote and the decision.
FAULT_DELAY_MAX_S = 0.5
# deadline + the participant's 30 s grace + slack for restarts on a loaded runner.
FINAL_TIMEOUT_S = DEADLINE_S + 30 + 60
FAULTS = ("none", "kill-coordinator", "kill-receiver")


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base_dir = tmp_path_factory.mktemp("transfer-campaign")
    with running_federation(kafka_bootstrap, base_dir, PARTIES) as running:
        for party in PARTIES:
            open_account(running, party, f"{party}-GOV")
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, RECEIVERS)
        issue(
            running,
            SENDER,
            f"{SENDER}-GOV",
            APPROACH,
            ISSUED,
            vintage=VINTAGE,
            authorisation_id=LOA,
        )
        yield running


def _crash_and_restart(world: World, party: str) -> None:
    world.federation.kill(party, signal.SIGKILL)
    world.federation.restart(party)


def test_random_crashes_never_break_atomicity_or_conservation(world: World) -> None:
    seed = int(os.environ.get("A6_CAMPAIGN_SEED", "20250601"))
    chooser = random.Random(seed)
    started: list[dict[str, Any]] = []
    for _ in range(ROUNDS):
        receiver = chooser.choice(RECEIVERS)
        body = transfer_body(
            f"{SENDER}-GOV",
            receiver,
            f"{receiver}-GOV",
            chooser.randint(1, QUANTITY_MAX),
            LOA,
            deadline_s=DEADLINE_S,
        )
        fault = chooser.choice(FAULTS)
        delay_s = chooser.uniform(0, FAULT_DELAY_MAX_S)
        start_transfer(world, SENDER, body)
        started.append(body | {"fault": fault})
        if fault == "none":
            continue
        # The fault's moment is the experiment's input, not a wait for an outcome.
        time.sleep(delay_s)
        _crash_and_restart(world, SENDER if fault == "kill-coordinator" else receiver)

    committed_quantity = 0
    for body in started:
        transfer_id = body["transfer_id"]
        sender_view = wait_status(world, SENDER, transfer_id, timeout_s=FINAL_TIMEOUT_S)
        receiver_view = transfer_view(world, body["to_party"], transfer_id)
        if receiver_view is not None or sender_view["status"] == "COMMITTED":
            receiver_view = wait_status(
                world, body["to_party"], transfer_id, timeout_s=FINAL_TIMEOUT_S
            )
            assert receiver_view["status"] == sender_view["status"], (
                f"seed {seed}, {body['fault']}: sender {sender_view}, receiver {receiver_view}"
            )
        if sender_view["status"] == "COMMITTED":
            committed_quantity += int(body["quantity"])

    adjusted = sum(
        int(entry["quantity"])
        for entry in ca_entries(world, SENDER)
        if entry["transfer_id"] in {body["transfer_id"] for body in started}
    )
    assert adjusted == committed_quantity, f"seed {seed}: CA {adjusted} != {committed_quantity}"
    for party in RECEIVERS:
        assert ca_entries(world, party) == [], f"{party} adjusted for an acquisition"
    assert_federation_invariants(world)
