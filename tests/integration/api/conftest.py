"""Fixtures for the operator API: a fresh node per test over the ``database_url`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.bootstrap import Node, build_node
from registry.entrypoints.api import create_app
from registry.settings import Settings, load_settings

OPERATOR_TOKEN = "operator-token-for-tests-0001"
AUDITOR_TOKEN = "auditor-token-for-tests-00001"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        party="THA",
        registry_id="THA01",
        database_url=database_url,
        data_dir=tmp_path / "node",
        operator_tokens=[OPERATOR_TOKEN],
        auditor_tokens=[AUDITOR_TOKEN],
    )


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    built = build_node(settings, migrate=True)
    yield built
    built.close()


@pytest.fixture
def anonymous(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as client:
        yield client


@pytest.fixture
def operator(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node), headers=_bearer(OPERATOR_TOKEN)) as client:
        yield client


@pytest.fixture
def auditor(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node), headers=_bearer(AUDITOR_TOKEN)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ ledger set-up helpers

APPROACH_ID = "CA0001"
PARTNER_PARTY = "CHE"
HOLDING_ACCOUNT = "THA-GOV-1"
OTHER_ACCOUNT = "THA-ENTITY-7"
LOA_ID = "LOA-THA-2025-01"


def approach_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "cooperative_approach_id": APPROACH_ID,
        "participating_parties": ["THA", PARTNER_PARTY],
        "vintage_from": 2021,
        "vintage_to": 2030,
        "in_force_from": "2021-01-01",
        "name": "Thailand-Switzerland",
    }
    body.update(overrides)
    return body


def loa_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "authorisation_id": LOA_ID,
        "authorised_on": "2024-06-01",
        "cooperative_approach_id": APPROACH_ID,
        "authorised_parties": ["THA", PARTNER_PARTY],
        "purposes": ["NDC", "OIMP"],
        "oimp_first_transfer": "use_or_cancellation",
    }
    body.update(overrides)
    return body


def issuance_body(quantity: int = 1000, **line_overrides: object) -> dict[str, object]:
    line: dict[str, object] = {
        "quantity": quantity,
        "cooperative_approach_id": APPROACH_ID,
        "vintage": 2025,
        "sector": "energy",
        "activity_type": "solar",
        "mitigation_type": "emission reduction",
        "gwp_values": "AR5",
        "authorisation_id": LOA_ID,
    }
    line.update(line_overrides)
    return {"account_id": HOLDING_ACCOUNT, "lines": [line]}


def ok(response: Any, status_code: int = 200) -> Any:
    """The JSON body of a response that must have the given status; shows the body if not."""
    assert response.status_code == status_code, response.text
    return response.json()


def refused(response: Any, status_code: int, reason: str) -> dict[str, str]:
    assert response.status_code == status_code, response.text
    body: dict[str, str] = response.json()
    assert body["reason"] == reason, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


@pytest.fixture
def ledger(operator: TestClient) -> TestClient:
    """An operator client on a node with one approach, one LoA, two holding accounts."""
    ok(operator.post("/v1/cooperative-approaches", json=approach_body()), 201)
    ok(operator.post("/v1/authorisations", json=loa_body()), 201)
    ok(operator.post("/v1/accounts", json={"account_id": HOLDING_ACCOUNT, "name": "THA gov"}), 201)
    ok(
        operator.post(
            "/v1/accounts",
            json={"account_id": OTHER_ACCOUNT, "holder_entity_id": "ENT-7", "name": "Solar Co"},
        ),
        201,
    )
    return operator


@pytest.fixture
def issued(ledger: TestClient) -> dict[str, Any]:
    """``ledger`` plus 1,000 units of vintage 2025 issued into the holding account."""
    return dict(ok(ledger.post("/v1/issuances", json=issuance_body(1000)), 201))
