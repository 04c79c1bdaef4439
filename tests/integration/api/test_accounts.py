"""Accounts: open, list, get, suspend, reopen, close, holdings."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.api.conftest import (
    APPROACH_ID,
    HOLDING_ACCOUNT,
    OTHER_ACCOUNT,
    issuance_body,
    ok,
    refused,
)


def test_open_list_and_get(operator: TestClient) -> None:
    opened = ok(
        operator.post(
            "/v1/accounts",
            json={"account_id": "THA-ENT-1", "holder_entity_id": "ENT-1", "name": "Solar Co"},
        ),
        201,
    )
    assert opened == {
        "account_id": "THA-ENT-1",
        "kind": "HOLDING",
        "status": "OPEN",
        "holder_entity_id": "ENT-1",
        "name": "Solar Co",
    }
    listed = ok(operator.get("/v1/accounts"))
    assert "THA-ENT-1" in {account["account_id"] for account in listed}
    # The registry's four retirement accounts exist from initialisation on.
    assert {"NDC_USE", "OIMP_USE", "VOLUNTARY_CANCELLATION", "OMGE_CANCELLATION"} <= {
        account["kind"] for account in listed
    }
    assert ok(operator.get("/v1/accounts/THA-ENT-1")) == opened


def test_opening_twice_is_a_conflict(operator: TestClient) -> None:
    ok(operator.post("/v1/accounts", json={"account_id": "THA-ENT-1"}), 201)
    refused(operator.post("/v1/accounts", json={"account_id": "THA-ENT-1"}), 409, "ACCOUNT_EXISTS")


def test_unknown_account_is_404(operator: TestClient) -> None:
    refused(operator.get("/v1/accounts/NOPE-1"), 404, "UNKNOWN_ACCOUNT")
    refused(operator.post("/v1/accounts/NOPE-1/suspend"), 404, "UNKNOWN_ACCOUNT")
    refused(operator.get("/v1/accounts/NOPE-1/holdings"), 404, "UNKNOWN_ACCOUNT")


def test_suspend_reopen_close(operator: TestClient) -> None:
    ok(operator.post("/v1/accounts", json={"account_id": "THA-ENT-1"}), 201)
    assert ok(operator.post("/v1/accounts/THA-ENT-1/suspend"))["status"] == "SUSPENDED"
    assert ok(operator.post("/v1/accounts/THA-ENT-1/reopen"))["status"] == "OPEN"
    assert ok(operator.post("/v1/accounts/THA-ENT-1/close"))["status"] == "CLOSED"
    refused(operator.post("/v1/accounts/THA-ENT-1/reopen"), 409, "INVALID_ACCOUNT_STATE_CHANGE")


def test_an_account_holding_units_cannot_close(
    issued: dict[str, object], ledger: TestClient
) -> None:
    refused(ledger.post(f"/v1/accounts/{HOLDING_ACCOUNT}/close"), 409, "ACCOUNT_NOT_EMPTY")


def test_a_suspended_account_cannot_receive(issued: dict[str, object], ledger: TestClient) -> None:
    ok(ledger.post(f"/v1/accounts/{OTHER_ACCOUNT}/suspend"))
    response = ledger.post(
        "/v1/internal-transfers",
        json={"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 1},
    )
    refused(response, 409, "ACCOUNT_SUSPENDED")


def test_holdings_filter_by_approach_and_vintage(ledger: TestClient) -> None:
    ok(ledger.post("/v1/issuances", json=issuance_body(100, vintage=2024)), 201)
    ok(ledger.post("/v1/issuances", json=issuance_body(50, vintage=2025)), 201)
    everything = ok(ledger.get(f"/v1/accounts/{HOLDING_ACCOUNT}/holdings"))
    assert everything["total_quantity"] == 150
    only_2025 = ok(
        ledger.get(
            f"/v1/accounts/{HOLDING_ACCOUNT}/holdings",
            params={"cooperative_approach_id": APPROACH_ID, "vintage": 2025},
        )
    )
    assert only_2025["total_quantity"] == 50
    assert [block["vintage"] for block in only_2025["blocks"]] == [2025]
    other_approach = ok(
        ledger.get(
            f"/v1/accounts/{HOLDING_ACCOUNT}/holdings", params={"cooperative_approach_id": "CA0002"}
        )
    )
    assert other_approach == {"account_id": HOLDING_ACCOUNT, "total_quantity": 0, "blocks": []}
