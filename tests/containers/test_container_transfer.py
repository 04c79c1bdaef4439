"""Three registry nodes that run as containers of the project's image, over a broker
container of the project's Kafka image, driven only through the nodes' HTTP APIs (the
calls of ``make demo``): a first transfer, an onward transfer to the third Party, a
refusal, and ``docker kill`` of the coordinator's container mid-transfer followed by a
new container on the same volume; at the end, conservation and the corresponding-
adjustment ledgers across the federation.

One test, because each step starts from the federation the step before left (the
containers take most of the run time, so they are started once). The broker is read
once, and only to observe: the kill waits until the PREPARE is on the receiver's inbox.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from deploy.federation.demo import (
    EXPECTED_REFUSALS,
    Outcome,
    ca_balances,
    cross_border_transfer,
    held,
    totals,
)
from deploy.federation.launcher import NodeClient
from deploy.federation.seed import national_account, seed_federation

from a6wire.topics import inbox_topic
from tests.containers.conftest import ContainerFederation
from tests.e2e.helpers import end_offsets, wait_for_record, wait_until

VINTAGE = 2024
FIRST_QUANTITY = 10_000  # GHA -> CHE, CA0001
ONWARD_FIRST_QUANTITY = 1_000  # GHA -> CHE, CA0005, to pass on
ONWARD_QUANTITY = 400  # CHE -> THA, CA0005: no corresponding adjustment
REFUSED_QUANTITY = 100  # CHE -> THA, CA0001: THA is no party to CA0001
KILLED_QUANTITY = 700  # GHA -> CHE, CA0001, with GHA's container killed mid-way
# Both ends reach a final state after the coordinator's restart (a loaded 2-core host).
FINAL_STATE_TIMEOUT_S = 90.0
FINAL_STATUSES = frozenset({"COMMITTED", "ABORTED"})


def _body(sender: str, receiver: str, quantity: int, approach: str, loa: str) -> dict[str, Any]:
    return {
        "from_account_id": national_account(sender),
        "to_account_id": national_account(receiver),
        "quantity": quantity,
        "cooperative_approach_id": approach,
        "purpose": "NDC",
        "authorisation_id": loa,
    }


def _view(node: NodeClient, transfer_id: str) -> dict[str, Any] | None:
    with node.operator() as client:
        response = client.get(f"/v1/transfers/{transfer_id}")
    if response.status_code == httpx.codes.NOT_FOUND:
        return None
    assert response.status_code == httpx.codes.OK, response.text
    view: dict[str, Any] = response.json()
    return view


def _final(node: NodeClient, transfer_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        view = _view(node, transfer_id)
        return view if view is not None and view["status"] in FINAL_STATUSES else None

    return wait_until(
        probe, timeout_s=FINAL_STATE_TIMEOUT_S, what=f"{node.party} to end {transfer_id}"
    )


def _committed(outcome: Outcome) -> None:
    assert outcome.ok, outcome.text


def _all_ca(fed: ContainerFederation) -> dict[str, dict[int, int]]:
    return {party: ca_balances(node) for party, node in fed.nodes.items()}


def _accounted(fed: ContainerFederation) -> int:
    return sum(sum(totals(node).values()) for node in fed.nodes.values())


async def _kill_coordinator_mid_transfer(fed: ContainerFederation) -> tuple[str, str]:
    """GHA -> CHE with CHE's container paused: GHA's container is killed once its PREPARE
    is on CHE's inbox, CHE then votes with no coordinator alive, and GHA comes back as a
    new container on the same volume. Both ends' final statuses."""
    gha, che = fed.node("GHA"), fed.node("CHE")
    transfer_id = str(uuid.uuid4())
    request = {
        "transfer_id": transfer_id,
        "to_party": "CHE",
        **_body("GHA", "CHE", KILLED_QUANTITY, "CA0001", "GHA-LOA-CA0001-001"),
    }
    since = await end_offsets(fed.kafka_bootstrap, inbox_topic("CHE"))
    fed.pause("CHE")
    try:
        with gha.operator() as client:
            response = client.post("/v1/transfers", params={"wait_s": 0}, json=request)
        assert response.status_code == httpx.codes.ACCEPTED, response.text
        await wait_for_record(
            fed.kafka_bootstrap, inbox_topic("CHE"), transfer_id, "PREPARE", since=since
        )
        fed.kill("GHA")
    finally:
        fed.unpause("CHE")

    # Mid-transfer for real: CHE holds the pending credit, waiting for a decision that
    # the dead coordinator cannot give.
    def prepared() -> dict[str, Any] | None:
        view = _view(che, transfer_id)
        return view if view is not None and view["phase"] == "PREPARED" else None

    at_che = wait_until(prepared, timeout_s=FINAL_STATE_TIMEOUT_S, what="CHE to vote YES")
    assert at_che["status"] == "PENDING", at_che

    fed.restart("GHA")
    return _final(gha, transfer_id)["status"], _final(che, transfer_id)["status"]


@pytest.mark.containers
async def test_three_node_containers_transfer_refuse_and_survive_a_killed_coordinator(
    container_federation: ContainerFederation,
) -> None:
    fed = container_federation
    gha, che, tha = fed.node("GHA"), fed.node("CHE"), fed.node("THA")
    issued = sum(seed_federation(fed.nodes).issued.values())
    assert issued > 0
    assert _accounted(fed) == issued
    ca_seeded = _all_ca(fed)

    # 1. A first transfer: GHA's corresponding adjustment for the vintage.
    _committed(
        cross_border_transfer(
            gha,
            che,
            {
                **_body("GHA", "CHE", FIRST_QUANTITY, "CA0001", "GHA-LOA-CA0001-001"),
                "vintage": VINTAGE,
            },
        )
    )
    assert held(che, national_account("CHE"), "CA0001") == FIRST_QUANTITY
    assert ca_balances(gha).get(VINTAGE, 0) - ca_seeded["GHA"].get(VINTAGE, 0) == FIRST_QUANTITY

    # 2. An onward transfer CHE -> THA of units CHE acquired: no second adjustment.
    _committed(
        cross_border_transfer(
            gha, che, _body("GHA", "CHE", ONWARD_FIRST_QUANTITY, "CA0005", "GHA-LOA-CA0005-001")
        )
    )
    ca_before_onward = _all_ca(fed)
    _committed(
        cross_border_transfer(
            che, tha, _body("CHE", "THA", ONWARD_QUANTITY, "CA0005", "GHA-LOA-CA0005-001")
        )
    )
    assert _all_ca(fed) == ca_before_onward, "an onward transfer adjusted a ledger"
    assert held(tha, national_account("THA"), "CA0005") == ONWARD_QUANTITY
    assert held(che, national_account("CHE"), "CA0005") == ONWARD_FIRST_QUANTITY - ONWARD_QUANTITY

    # 3. A refusal, for the reason the rules give, with nothing moved or adjusted.
    che_ca0001 = held(che, national_account("CHE"), "CA0001")
    refused = cross_border_transfer(
        che, tha, _body("CHE", "THA", REFUSED_QUANTITY, "CA0001", "GHA-LOA-CA0001-001")
    )
    assert not refused.ok, refused.text
    assert EXPECTED_REFUSALS.intersection(refused.reasons), refused.text
    assert held(che, national_account("CHE"), "CA0001") == che_ca0001
    assert held(tha, national_account("THA"), "CA0001") == 0
    assert _all_ca(fed) == ca_before_onward, "a refused transfer adjusted a ledger"

    # 4. docker kill of the coordinator's container mid-transfer, a restart from its
    # volume: the transfer ends the same at both Parties, and as a commit (CHE voted YES).
    statuses = await _kill_coordinator_mid_transfer(fed)
    assert statuses == ("COMMITTED", "COMMITTED"), statuses
    assert held(che, national_account("CHE"), "CA0001") == che_ca0001 + KILLED_QUANTITY

    # 5. Federation-wide: every issued unit is somewhere, once; only the first transfers
    # adjusted, and only at the transferring Party, for the vintage year.
    assert _accounted(fed) == issued
    first_transferred = FIRST_QUANTITY + ONWARD_FIRST_QUANTITY + KILLED_QUANTITY
    expected_ca = {party: dict(balances) for party, balances in ca_seeded.items()}
    expected_ca["GHA"][VINTAGE] = expected_ca["GHA"].get(VINTAGE, 0) + first_transferred
    assert _all_ca(fed) == expected_ca
