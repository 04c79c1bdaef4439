"""Holdings totals and the CA ledger (public), and the audit trail (operators, auditors)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.integration.api.conftest import (
    APPROACH_ID,
    HOLDING_ACCOUNT,
    OTHER_ACCOUNT,
    issuance_body,
    ok,
    refused,
)


def test_holdings_totals_by_approach_and_vintage(ledger: TestClient, anonymous: TestClient) -> None:
    ok(ledger.post("/v1/issuances", json=issuance_body(100, vintage=2024)), 201)
    ok(ledger.post("/v1/issuances", json=issuance_body(60, vintage=2025)), 201)
    cancel = {"account_id": HOLDING_ACCOUNT, "kind": "VOLUNTARY", "quantity": 10, "vintage": 2025}
    ok(ledger.post("/v1/cancellations", json=cancel))
    totals = ok(anonymous.get("/v1/holdings/totals"))
    assert totals == [
        {
            "cooperative_approach_id": APPROACH_ID,
            "vintage": 2024,
            "metric": "tCO2e",
            "held": 100,
            "retired": 0,
            "cancelled": 0,
        },
        {
            "cooperative_approach_id": APPROACH_ID,
            "vintage": 2025,
            "metric": "tCO2e",
            "held": 50,
            "retired": 0,
            "cancelled": 10,
        },
    ]
    only_2024 = ok(anonymous.get("/v1/holdings/totals", params={"vintage": 2024}))
    assert [row["vintage"] for row in only_2024] == [2024]


def test_ca_ledger_filters_by_year_and_metric(issued: dict[str, Any], ledger: TestClient) -> None:
    ok(
        ledger.post(
            "/v1/uses", json={"account_id": HOLDING_ACCOUNT, "purpose": "OIMP", "quantity": 5}
        )
    )
    assert ok(ledger.get("/v1/ca-ledger", params={"year": 2025}))["balances"][0]["quantity"] == 5
    assert ok(ledger.get("/v1/ca-ledger", params={"year": 2026}))["entries"] == []
    assert ok(ledger.get("/v1/ca-ledger", params={"metric": "other"}))["entries"] == []
    assert ok(ledger.get("/v1/ca-ledger"))["party"] == "THA"


def test_audit_trail_of_a_block_and_of_one_serial(
    issued: dict[str, Any], ledger: TestClient, auditor: TestClient
) -> None:
    body = {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 100}
    ok(ledger.post("/v1/internal-transfers", json=body))
    block = issued["blocks"][0]
    trail = ok(
        auditor.get(
            "/v1/audit",
            params={
                "first_identifier": block["first_identifier"],
                "last_identifier": block["last_identifier"],
            },
        )
    )
    assert [entry["action"] for entry in trail] == ["ISSUANCE", "INTERNAL_TRANSFER"]
    moved_serial = "CA0001-THA01-THA-000000950-2025"
    kept_serial = "CA0001-THA01-THA-000000005-2025"
    moved = ok(auditor.get("/v1/audit", params={"first_identifier": moved_serial}))
    kept = ok(auditor.get("/v1/audit", params={"first_identifier": kept_serial}))
    assert [entry["action"] for entry in moved] == ["ISSUANCE", "INTERNAL_TRANSFER"]
    assert [entry["action"] for entry in kept] == ["ISSUANCE"]


def test_audit_needs_identifiers_in_order(ledger: TestClient) -> None:
    params = {
        "first_identifier": "CA0001-THA01-THA-000000009-2025",
        "last_identifier": "CA0001-THA01-THA-000000001-2025",
    }
    refused(ledger.get("/v1/audit", params=params), 422, "MALFORMED_BLOCK")
    refused(
        ledger.get("/v1/audit", params={"first_identifier": "CA1-THA01"}),
        422,
        "MALFORMED_IDENTIFIER",
    )
    refused(ledger.get("/v1/audit"), 422, "MALFORMED_REQUEST")
