"""Issuance, internal transfer, use (NDC, OIMP) and cancellation (voluntary, OMGE)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.integration.api.conftest import (
    HOLDING_ACCOUNT,
    LOA_ID,
    OTHER_ACCOUNT,
    issuance_body,
    loa_body,
    ok,
    refused,
)

FIRST_ID = "CA0001-THA01-THA-000000001-2025"


def _holding(client: TestClient, account_id: str) -> int:
    return int(ok(client.get(f"/v1/accounts/{account_id}/holdings"))["total_quantity"])


def test_issuance_answers_with_the_block_identifiers(issued: dict[str, Any]) -> None:
    assert issued["quantity"] == 1000
    (block,) = issued["blocks"]
    assert block["first_identifier"] == FIRST_ID
    assert block["last_identifier"] == "CA0001-THA01-THA-000001000-2025"
    assert (block["authorisation_id"], block["authorisation_version"]) == (LOA_ID, 1)
    assert block["first_transfer_done"] is False


def test_issuance_into_an_unknown_account_is_404(ledger: TestClient) -> None:
    body = issuance_body(10)
    body["account_id"] = "NOPE-1"
    refused(ledger.post("/v1/issuances", json=body), 404, "UNKNOWN_ACCOUNT")


def test_issuance_under_a_revoked_loa_is_refused(ledger: TestClient) -> None:
    ok(ledger.post(f"/v1/authorisations/{LOA_ID}/revoke"))
    refused(ledger.post("/v1/issuances", json=issuance_body(10)), 409, "AUTHORISATION_REVOKED")


def test_issuance_outside_the_approach_is_refused(ledger: TestClient) -> None:
    refused(
        ledger.post("/v1/issuances", json=issuance_body(10, vintage=2035)),
        409,
        "NOT_COVERED_BY_COOPERATIVE_APPROACH",
    )


def test_internal_transfer_by_quantity(issued: dict[str, Any], ledger: TestClient) -> None:
    body = {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 300}
    moved = ok(ledger.post("/v1/internal-transfers", json=body))
    # The holder keeps the lower range; the upper range moves.
    assert moved["blocks"][0]["first_identifier"] == "CA0001-THA01-THA-000000701-2025"
    assert (_holding(ledger, HOLDING_ACCOUNT), _holding(ledger, OTHER_ACCOUNT)) == (700, 300)


def test_internal_transfer_by_identifier_range(issued: dict[str, Any], ledger: TestClient) -> None:
    body = {
        "from_account_id": HOLDING_ACCOUNT,
        "to_account_id": OTHER_ACCOUNT,
        "first_identifier": "CA0001-THA01-THA-000000011-2025",
        "last_identifier": "CA0001-THA01-THA-000000020-2025",
    }
    moved = ok(ledger.post("/v1/internal-transfers", json=body))
    assert moved["quantity"] == 10
    assert _holding(ledger, OTHER_ACCOUNT) == 10


def test_internal_transfer_refusals(issued: dict[str, Any], ledger: TestClient) -> None:
    too_many = {
        "from_account_id": HOLDING_ACCOUNT,
        "to_account_id": OTHER_ACCOUNT,
        "quantity": 5000,
    }
    refused(ledger.post("/v1/internal-transfers", json=too_many), 409, "INSUFFICIENT_UNITS")
    same = {"from_account_id": HOLDING_ACCOUNT, "to_account_id": HOLDING_ACCOUNT, "quantity": 1}
    refused(ledger.post("/v1/internal-transfers", json=same), 422, "SAME_ACCOUNT")
    unknown = {"from_account_id": HOLDING_ACCOUNT, "to_account_id": "NOPE-1", "quantity": 1}
    refused(ledger.post("/v1/internal-transfers", json=unknown), 404, "UNKNOWN_ACCOUNT")
    not_held = {
        "from_account_id": HOLDING_ACCOUNT,
        "to_account_id": OTHER_ACCOUNT,
        "first_identifier": "CA0001-THA01-THA-000005001-2025",
        "last_identifier": "CA0001-THA01-THA-000005002-2025",
    }
    refused(ledger.post("/v1/internal-transfers", json=not_held), 409, "SERIALS_NOT_HELD")


def test_use_towards_ndc_records_no_adjustment_for_units_never_first_transferred(
    issued: dict[str, Any], ledger: TestClient
) -> None:
    body = {"account_id": HOLDING_ACCOUNT, "purpose": "NDC", "year_of_use": 2026, "quantity": 100}
    assert ok(ledger.post("/v1/uses", json=body))["quantity"] == 100
    assert _holding(ledger, HOLDING_ACCOUNT) == 900
    assert ok(ledger.get("/v1/ca-ledger"))["entries"] == []


def test_ndc_use_needs_a_year(issued: dict[str, Any], ledger: TestClient) -> None:
    body = {"account_id": HOLDING_ACCOUNT, "purpose": "NDC", "quantity": 100}
    refused(ledger.post("/v1/uses", json=body), 422, "MALFORMED_REQUEST")


def test_use_for_oimp_is_a_first_transfer_with_an_adjustment(
    issued: dict[str, Any], ledger: TestClient
) -> None:
    body = {"account_id": HOLDING_ACCOUNT, "purpose": "OIMP", "quantity": 40}
    assert ok(ledger.post("/v1/uses", json=body))["blocks"][0]["first_transfer_done"] is True
    ledger_view = ok(ledger.get("/v1/ca-ledger", params={"year": 2025}))
    assert ledger_view["balances"] == [{"year": 2025, "metric": "tCO2e", "quantity": 40}]
    assert [entry["cause"] for entry in ledger_view["entries"]] == ["FIRST_TRANSFER"]


def test_use_for_oimp_under_an_expired_loa_is_refused(ledger: TestClient) -> None:
    ok(
        ledger.post(
            "/v1/authorisations", json=loa_body(authorisation_id="LOA-OLD", use_to="2022-12-31")
        ),
        201,
    )
    ok(ledger.post("/v1/issuances", json=issuance_body(10, authorisation_id="LOA-OLD")), 201)
    body = {"account_id": HOLDING_ACCOUNT, "purpose": "OIMP", "quantity": 10}
    refused(ledger.post("/v1/uses", json=body), 409, "OUTSIDE_USE_TIMEFRAME")


def test_use_for_oimp_under_a_revoked_loa_is_refused(
    issued: dict[str, Any], ledger: TestClient
) -> None:
    ok(ledger.post(f"/v1/authorisations/{LOA_ID}/revoke"))
    body = {"account_id": HOLDING_ACCOUNT, "purpose": "OIMP", "quantity": 10}
    refused(ledger.post("/v1/uses", json=body), 409, "AUTHORISATION_REVOKED")


def test_voluntary_and_omge_cancellation(issued: dict[str, Any], ledger: TestClient) -> None:
    voluntary = {"account_id": HOLDING_ACCOUNT, "kind": "VOLUNTARY", "quantity": 5}
    assert ok(ledger.post("/v1/cancellations", json=voluntary))["quantity"] == 5
    omge = {"account_id": HOLDING_ACCOUNT, "kind": "OMGE", "quantity": 20}
    assert ok(ledger.post("/v1/cancellations", json=omge))["quantity"] == 20
    assert _holding(ledger, HOLDING_ACCOUNT) == 975
    unknown = {"account_id": "NOPE-1", "kind": "OMGE", "quantity": 1}
    refused(ledger.post("/v1/cancellations", json=unknown), 404, "UNKNOWN_ACCOUNT")
