"""Article 6 accounting holes (issue 9), each tried through the operator API of two real
nodes over the real broker: the refused request is refused with its reason code, and
neither node's holdings nor corresponding-adjustment ledger moves.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from registry.application.commands import (
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.domain.accounts import AccountKind, retirement_account_id
from registry.domain.approaches import GHG_METRIC
from registry.domain.authorisations import FirstTransferDefinition, Purpose
from tests.integration.transfers.test_two_nodes import (
    RECEIVER_ACCOUNT,
    RunningNode,
    federation,  # noqa: F401  (the two-node fixture, requested by ``nodes``)
)
from tests.unit.application.support import (
    PARTNER,
    PARTY,
    REGISTRY_ID,
    approach,
    authorisation,
    line,
)

TRANSFER_WAIT_S = 30


@pytest.fixture
def nodes(request: pytest.FixtureRequest, database_url: str) -> dict[str, RunningNode]:
    """Two real nodes (CHE sends, GHA receives) over the real broker, as in test_two_nodes.

    Naming ``database_url`` here runs every test on SQLite and on PostgreSQL.
    """
    running: dict[str, RunningNode] = request.getfixturevalue("federation")
    return running


def _state(node: RunningNode) -> tuple[Any, Any]:
    """What a refused request must leave alone: every unit's whereabouts and the CA ledger."""
    totals = node.ledger().query("ledger_totals")
    ledger = node.client.get("/v1/ca-ledger")
    assert ledger.status_code == 200, ledger.text
    return totals, ledger.json()


def _transfer(
    sender: RunningNode, from_account: str, loa: str, purpose: str, **selection: Any
) -> Any:
    return sender.client.post(
        f"/v1/transfers?wait_s={TRANSFER_WAIT_S}",
        json={
            "from_account_id": from_account,
            "to_party": PARTNER,
            "to_account_id": selection.pop("to_account_id", RECEIVER_ACCOUNT),
            "authorisation_id": loa,
            "purpose": purpose,
            **selection,
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def _transfer_committed(
    sender: RunningNode,
    receiver: RunningNode,
    from_account: str,
    loa: str,
    purpose: str,
    **selection: Any,
) -> str:
    response = _transfer(sender, from_account, loa, purpose, **selection)
    assert response.status_code == 202, response.text
    transfer_id: str = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    return transfer_id


def _use(node: RunningNode, account: str, quantity: int, purpose: str, year: int) -> Any:
    return node.client.post(
        "/v1/uses",
        json={
            "account_id": account,
            "quantity": quantity,
            "purpose": purpose,
            "year_of_use": year,
        },
    )


def _refused(response: Any, reason: str) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["reason"] == reason, response.text


def _new_loa(sender: RunningNode, account: str, quantity: int, **loa: Any) -> None:
    """A second LoA of the sender's, with units issued under it to their own account."""
    sender.ledger().run(RecordAuthorisation(authorisation(**loa)))
    sender.ledger().run(OpenAccount(account))
    sender.ledger().run(
        IssueUnits(account, (line(quantity, authorisation_id=loa["authorisation_id"]),))
    )


def test_units_authorised_for_oimp_only_cannot_be_used_towards_an_ndc(
    nodes: dict[str, RunningNode],
) -> None:
    """Hole 1: the LoA's purposes bind the acquirer's use, not only the transfer."""
    sender, receiver = nodes[PARTY], nodes[PARTNER]
    _new_loa(
        sender,
        "CHE-OIMP",
        50,
        authorisation_id="LOA-CHE-OIMP",
        purposes=frozenset({Purpose.OIMP}),
        oimp_first_transfer=FirstTransferDefinition.ISSUANCE,
    )
    _transfer_committed(sender, receiver, "CHE-OIMP", "LOA-CHE-OIMP", "OIMP", quantity=20)
    before = _state(receiver)
    _refused(
        _use(receiver, RECEIVER_ACCOUNT, 5, "NDC", date.today().year), "PURPOSE_NOT_AUTHORISED"
    )
    assert _state(receiver) == before
    # What the LoA does authorise still works.
    response = _use(receiver, RECEIVER_ACCOUNT, 5, "OIMP", date.today().year)
    assert response.status_code == 200, response.text


def test_the_year_of_use_is_checked_against_vintage_and_use_timeframe(
    nodes: dict[str, RunningNode],
) -> None:
    """Hole 2: a year of use before the vintage or outside the LoA's use window is refused."""
    sender, receiver = nodes[PARTY], nodes[PARTNER]
    this_year = date.today().year
    _new_loa(
        sender,
        "CHE-WINDOW",
        30,
        authorisation_id="LOA-CHE-WINDOW",
        use_from=date(this_year, 1, 1),
        use_to=date(this_year + 1, 12, 31),
    )
    _transfer_committed(sender, receiver, "CHE-WINDOW", "LOA-CHE-WINDOW", "NDC", quantity=30)
    before = _state(receiver)
    vintage = line().vintage
    _refused(_use(receiver, RECEIVER_ACCOUNT, 5, "NDC", vintage - 1), "YEAR_OF_USE_BEFORE_VINTAGE")
    _refused(
        _use(receiver, RECEIVER_ACCOUNT, 5, "NDC", this_year + 2),
        "YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME",
    )
    assert _state(receiver) == before
    response = _use(receiver, RECEIVER_ACCOUNT, 5, "NDC", this_year + 1)
    assert response.status_code == 200, response.text
    balances = receiver.client.get("/v1/ca-ledger").json()["balances"]
    assert [(b["year"], b["quantity"]) for b in balances] == [(this_year + 1, -5)]


def test_the_year_of_use_is_checked_against_the_configured_ndc_period(
    nodes: dict[str, RunningNode],
) -> None:
    """Hole 2: a use for a year outside the using Party's NDC period is refused."""
    sender, receiver = nodes[PARTY], nodes[PARTNER]
    this_year = date.today().year
    _new_loa(sender, "CHE-PERIOD", 20, authorisation_id="LOA-CHE-PERIOD")
    _transfer_committed(sender, receiver, "CHE-PERIOD", "LOA-CHE-PERIOD", "NDC", quantity=20)
    ndc = receiver.client.put(
        "/v1/ndc",
        json={
            "ndc_type": "MULTI_YEAR",
            "period_start": this_year - 2,
            "period_end": this_year,
            "method": "ANNUAL",
            "metrics": [GHG_METRIC],
        },
    )
    assert ndc.status_code == 200, ndc.text
    before = _state(receiver)
    _refused(
        _use(receiver, RECEIVER_ACCOUNT, 5, "NDC", this_year + 1),
        "YEAR_OF_USE_OUTSIDE_NDC_PERIOD",
    )
    assert _state(receiver) == before
    response = _use(receiver, RECEIVER_ACCOUNT, 5, "NDC", this_year)
    assert response.status_code == 200, response.text


def test_the_loas_entity_list_follows_the_units_inside_the_acquiring_registry(
    nodes: dict[str, RunningNode],
) -> None:
    """Hole 3: units that reached an authorised entity cannot move on to an unauthorised one."""
    sender, receiver = nodes[PARTY], nodes[PARTNER]
    _new_loa(
        sender,
        "CHE-ENTITY",
        30,
        authorisation_id="LOA-CHE-ENTITY",
        authorised_entities=frozenset({"GHA-ENTITY-OK"}),
    )
    receiver.ledger().run(OpenAccount("GHA-OK", holder_entity_id="GHA-ENTITY-OK"))
    receiver.ledger().run(OpenAccount("GHA-BAD", holder_entity_id="GHA-ENTITY-BAD"))
    # The border check already refuses the unauthorised entity's account...
    refused = _transfer(
        sender, "CHE-ENTITY", "LOA-CHE-ENTITY", "NDC", quantity=10, to_account_id="GHA-BAD"
    )
    assert refused.status_code == 202, refused.text
    assert sender.wait_final(refused.json()["transfer_id"])["status"] == "ABORTED"
    _transfer_committed(
        sender,
        receiver,
        "CHE-ENTITY",
        "LOA-CHE-ENTITY",
        "NDC",
        quantity=30,
        to_account_id="GHA-OK",
    )
    # ...and now the registry holding the units refuses the detour too.
    before = _state(receiver)
    response = receiver.client.post(
        "/v1/internal-transfers",
        json={"from_account_id": "GHA-OK", "to_account_id": "GHA-BAD", "quantity": 10},
    )
    _refused(response, "ENTITY_NOT_AUTHORISED")
    assert _state(receiver) == before
    assert receiver.ledger().held("GHA-BAD") == 0
    # The Party's own account (no entity) may hold them.
    response = receiver.client.post(
        "/v1/internal-transfers",
        json={"from_account_id": "GHA-OK", "to_account_id": RECEIVER_ACCOUNT, "quantity": 10},
    )
    assert response.status_code == 200, response.text


OMGE_APPROACH_ID = "CA0002"


def test_the_omge_share_comes_from_the_transferred_vintage_or_the_transfer_is_refused(
    nodes: dict[str, RunningNode],
) -> None:
    """Hole 5: 40 units of 2025 at 2 % need 1 unit of 2025 cancelled, never one of 2024."""
    sender, receiver = nodes[PARTY], nodes[PARTNER]
    omge_approach = approach(cooperative_approach_id=OMGE_APPROACH_ID, omge_share=Decimal("0.02"))
    for node in (sender, receiver):
        node.ledger().run(RegisterCooperativeApproach(omge_approach))
    sender.ledger().run(
        RecordAuthorisation(
            authorisation(authorisation_id="LOA-CHE-OMGE", cooperative_approach_id=OMGE_APPROACH_ID)
        )
    )
    sender.ledger().run(OpenAccount("CHE-OMGE"))
    units = {"cooperative_approach_id": OMGE_APPROACH_ID, "authorisation_id": "LOA-CHE-OMGE"}
    sender.ledger().run(
        IssueUnits("CHE-OMGE", (line(100, vintage=2024, **units), line(40, vintage=2025, **units)))
    )
    before = _state(sender)
    response = _transfer(sender, "CHE-OMGE", "LOA-CHE-OMGE", "NDC", quantity=40, vintage=2025)
    assert response.status_code == 409, response.text
    assert response.json()["reason"] == "OMGE_SHARE_UNAVAILABLE", response.text
    assert _state(sender) == before
    # With a unit of 2025 to spare, the share is cancelled from it.
    sender.ledger().run(IssueUnits("CHE-OMGE", (line(10, vintage=2025, **units),)))
    _transfer_committed(
        sender, receiver, "CHE-OMGE", "LOA-CHE-OMGE", "NDC", quantity=40, vintage=2025
    )
    omge_account = retirement_account_id(REGISTRY_ID, AccountKind.OMGE_CANCELLATION)
    cancelled = sender.ledger().query("account_blocks", omge_account)
    assert [(b.attributes.vintage, b.quantity) for b in cancelled] == [(2025, 1)]
    assert sender.ledger().held("CHE-OMGE") == 100 + 10 - 1
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 40
