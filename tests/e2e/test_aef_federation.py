"""The AEF of real nodes after real cross-border transfers: each export passes the
checker, the Parties' exports agree with each other, and a corrupted one is caught.

Three node processes on the session broker (the ``federation`` fixture: CHE, GHA
and THA, seeded as the demo seeds them), transfers through ``POST /v1/transfers``,
exports through ``GET /v1/reports/aef/{year}``, as a reviewer would fetch them.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from deploy.federation.launcher import Federation

from registry.reports.aef import ActionType
from registry.reports.checker import check_aef
from registry.reports.consistency import DisagreementKind, find_disagreements
from tests.unit.reports.test_aef_fields import REQUIRED_ALWAYS, REQUIRED_BY_TYPE

TRANSFER_WAIT_S = 30
PARTIES = ("CHE", "GHA", "THA")


def _transfer(federation: Federation, sender: str, body: dict[str, Any]) -> None:
    with federation.node(sender).operator() as client:
        response = client.post(
            f"/v1/transfers?wait_s={TRANSFER_WAIT_S}",
            json={"transfer_id": str(uuid.uuid4()), "purpose": "NDC", **body},
        )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "COMMITTED", response.text


def _post(federation: Federation, party: str, path: str, body: dict[str, Any]) -> None:
    with federation.node(party).operator() as client:
        response = client.post(path, json=body)
    assert response.status_code == 200, response.text


def _aef(federation: Federation, party: str, year: int) -> dict[str, Any]:
    with federation.node(party).public() as client:
        response = client.get(f"/v1/reports/aef/{year}", params={"format": "json"})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _rows(document: dict[str, Any], action_type: str) -> list[dict[str, Any]]:
    return [row for row in document["tables"]["actions"] if row["action_type"] == action_type]


@pytest.mark.e2e
def test_the_parties_aef_exports_pass_the_checker_and_agree(federation: Federation) -> None:
    # A first transfer GHA -> CHE, then CHE passes part of it on to THA.
    common = {"cooperative_approach_id": "CA0005", "authorisation_id": "GHA-LOA-CA0005-001"}
    first = {"from_account_id": "GHA-GOV", "to_party": "CHE", "to_account_id": "CHE-GOV"}
    _transfer(federation, "GHA", {**first, **common, "quantity": 600})
    onward = {"from_account_id": "CHE-GOV", "to_party": "THA", "to_account_id": "THA-GOV"}
    _transfer(federation, "CHE", {**onward, **common, "quantity": 250})
    # THA first-transfers e-bus units to CHE, with CA0002's 2 % OMGE share.
    ebus = {"cooperative_approach_id": "CA0002", "authorisation_id": "THA-LOA-CA0002-001"}
    to_che = {"from_account_id": "THA-GOV", "to_party": "CHE", "to_account_id": "CHE-GOV"}
    _transfer(federation, "THA", {**to_che, **ebus, "quantity": 400})
    year = datetime.now(UTC).year
    # Uses and cancellations: every remaining action type, from the API.
    use = {"account_id": "CHE-GOV", "cooperative_approach_id": "CA0005", "quantity": 100}
    _post(federation, "CHE", "/v1/uses", {**use, "purpose": "NDC", "year_of_use": year})
    ebus_held = {"account_id": "THA-GOV", "cooperative_approach_id": "CA0002"}
    _post(federation, "THA", "/v1/uses", {**ebus_held, "quantity": 30, "purpose": "OIMP"})
    _post(
        federation, "THA", "/v1/cancellations", {**ebus_held, "quantity": 20, "kind": "VOLUNTARY"}
    )

    documents = {party: _aef(federation, party, year) for party in PARTIES}
    for party, document in documents.items():
        assert check_aef(document) == [], f"{party}'s export fails the checker"
    assert find_disagreements(list(documents.values())) == []

    # What each side reported is what the other side reported.
    assert sum(row["quantity"] for row in _rows(documents["GHA"], "first_transfer")) == 600
    acquired_by_che = [row for row in _rows(documents["CHE"], "acquisition")]
    assert sum(row["quantity"] for row in acquired_by_che) == 600 + 400
    assert sum(row["quantity"] for row in _rows(documents["CHE"], "transfer")) == 250
    assert sum(row["quantity"] for row in _rows(documents["THA"], "acquisition")) == 250

    # The AEF says whether each acquisition was the units' first transfer.
    assert all(row["first_transfer"] is True for row in acquired_by_che)
    assert all(row["first_transfer"] is False for row in _rows(documents["THA"], "acquisition"))
    (oimp_use,) = _rows(documents["THA"], "use_for_oimp")
    assert oimp_use["year_of_use"] == year
    assert _rows(documents["THA"], "omge_cancellation")

    # A copy missing any one field its action type needs fails the checker, at that row.
    for party, document in documents.items():
        for index, row in enumerate(document["tables"]["actions"]):
            action_type = ActionType(row["action_type"])
            required = [*REQUIRED_ALWAYS, *REQUIRED_BY_TYPE[action_type]]
            for field in required:
                corrupted = copy.deepcopy(document)
                corrupted["tables"]["actions"][index][field] = None
                problems = {(problem.row, problem.field) for problem in check_aef(corrupted)}
                assert (index, field) in problems, (party, action_type, field)

    # A receiver's row altered after the fact is caught, and named.
    corrupted = copy.deepcopy(documents["CHE"])
    _rows(corrupted, "acquisition")[0]["quantity"] += 1
    assert check_aef(corrupted) != []
    found = find_disagreements([documents["GHA"], corrupted, documents["THA"]])
    assert DisagreementKind.QUANTITY in {disagreement.kind for disagreement in found}
