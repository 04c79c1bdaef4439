"""One first transfer across two registry nodes that run as containers of the project's
image, over a broker container of the project's Kafka image, driven only through the
nodes' HTTP APIs (the same calls as ``make demo``'s first step)."""

from __future__ import annotations

import pytest
from deploy.federation.demo import ca_balances, cross_border_transfer, held, totals
from deploy.federation.launcher import NodeClient
from deploy.federation.seed import national_account, seed_federation

QUANTITY = 10_000
VINTAGE = 2024


@pytest.mark.containers
def test_first_transfer_between_node_containers(
    container_federation: dict[str, NodeClient],
) -> None:
    gha, che = container_federation["GHA"], container_federation["CHE"]
    seeded = seed_federation(container_federation)
    issued = sum(seeded.issued.values())
    assert issued > 0
    gha_ca_before = ca_balances(gha).get(VINTAGE, 0)

    outcome = cross_border_transfer(
        gha,
        che,
        {
            "from_account_id": national_account("GHA"),
            "to_account_id": national_account("CHE"),
            "quantity": QUANTITY,
            "cooperative_approach_id": "CA0001",
            "purpose": "NDC",
            "vintage": VINTAGE,
            "authorisation_id": "GHA-LOA-CA0001-001",
        },
    )

    assert outcome.ok, outcome.text
    assert held(che, national_account("CHE"), "CA0001") == QUANTITY
    # The first transfer is GHA's corresponding adjustment for the vintage year.
    assert ca_balances(gha).get(VINTAGE, 0) - gha_ca_before == QUANTITY
    # Conservation across the federation: every issued unit is somewhere, once.
    accounted = sum(sum(totals(node).values()) for node in (gha, che))
    assert accounted == issued
