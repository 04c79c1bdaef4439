"""PUT/GET /v1/ndc (operators) and GET /v1/ca-ledger/summary (public), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.api.conftest import HOLDING_ACCOUNT, ok, refused


def averaging(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ndc_type": "SINGLE_YEAR",
        "period_start": 2021,
        "period_end": 2030,
        "target_year": 2030,
        "method": "AVERAGING",
        "metrics": ["tCO2e"],
    }
    body.update(overrides)
    return body


def test_the_summary_needs_a_configured_ndc(anonymous: TestClient, operator: TestClient) -> None:
    refused(anonymous.get("/v1/ca-ledger/summary"), 404, "NDC_NOT_CONFIGURED")
    refused(operator.get("/v1/ndc"), 404, "NDC_NOT_CONFIGURED")


def test_only_operators_set_the_ndc(
    anonymous: TestClient, auditor: TestClient, operator: TestClient
) -> None:
    refused(anonymous.put("/v1/ndc", json=averaging()), 401, "UNAUTHENTICATED")
    refused(auditor.put("/v1/ndc", json=averaging()), 403, "FORBIDDEN")
    refused(anonymous.get("/v1/ndc"), 401, "UNAUTHENTICATED")
    first = ok(operator.put("/v1/ndc", json=averaging()))
    assert (first["party"], first["version"], first["method"]) == ("THA", 1, "AVERAGING")
    trajectory = [{"year": year, "level": "1000.5"} for year in range(2021, 2031)]
    second = ok(operator.put("/v1/ndc", json=averaging(method="TRAJECTORY", trajectory=trajectory)))
    assert second["version"] == 2
    current = ok(auditor.get("/v1/ndc"))
    assert (current["version"], current["method"]) == (2, "TRAJECTORY")
    assert current["trajectory"][0] == {"year": 2021, "metric": "tCO2e", "level": "1000.5"}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"period_start": 2031}, "NDC_INVALID_PERIOD"),
        ({"target_year": 2025}, "NDC_INVALID_TARGET_YEAR"),
        ({"ndc_type": "MULTI_YEAR"}, "NDC_INVALID_TARGET_YEAR"),
        ({"method": "ANNUAL"}, "NDC_METHOD_MISMATCH"),
        ({"metrics": []}, "NDC_NO_METRIC"),
        ({"method": "TRAJECTORY"}, "NDC_TRAJECTORY_INCOMPLETE"),
        ({"reported_emissions": [{"year": 2035, "level": 1}]}, "NDC_LEVEL_OUT_OF_SCOPE"),
        ({"method": "BUDGETISH"}, "MALFORMED_REQUEST"),
        ({"reported_emissions": [{"year": 2025, "level": "0.0001"}]}, "MALFORMED_REQUEST"),
        ({"colour": "green"}, "MALFORMED_REQUEST"),
    ],
)
def test_a_bad_configuration_is_a_422_with_its_reason(
    operator: TestClient, overrides: dict[str, Any], reason: str
) -> None:
    refused(operator.put("/v1/ndc", json=averaging(**overrides)), 422, reason)
    refused(operator.get("/v1/ndc"), 404, "NDC_NOT_CONFIGURED")


def test_the_summary_applies_averaging_to_the_ledger(
    issued: dict[str, Any], ledger: TestClient, anonymous: TestClient
) -> None:
    """OIMP use of 30 units under a use-or-cancellation LoA is their first transfer:
    +30 for vintage 2025. Averaging over 2021-2030: 2025 indicative 30 / 5 = 6;
    applied in 2030: 30 / 10 = 3; reported 2030 emissions 100 -> balance 103."""
    use = {"account_id": HOLDING_ACCOUNT, "purpose": "OIMP", "quantity": 30}
    ok(ledger.post("/v1/uses", json=use))
    emissions = [{"year": 2030, "level": 100}]
    ok(ledger.put("/v1/ndc", json=averaging(reported_emissions=emissions)))
    summary = ok(anonymous.get("/v1/ca-ledger/summary"))
    assert (summary["party"], summary["ndc"]["method"]) == ("THA", "AVERAGING")
    (metric,) = summary["metrics"]
    assert (metric["metric"], metric["period_total"], metric["outside_period"]) == (
        "tCO2e",
        30,
        0,
    )
    by_year = {row["year"]: row for row in metric["years"]}
    assert list(by_year) == list(range(2021, 2031))
    assert by_year[2025]["first_transferred"] == 30
    assert (by_year[2025]["applied_adjustment"], by_year[2025]["indicative"]) == ("6.000", True)
    assert (by_year[2030]["applied_adjustment"], by_year[2030]["indicative"]) == ("3.000", False)
    assert by_year[2030]["adjusted_emissions_balance"] == "103.000"
    only = ok(anonymous.get("/v1/ca-ledger/summary", params={"year": 2030, "metric": "tCO2e"}))
    assert [row["year"] for row in only["metrics"][0]["years"]] == [2030]
    assert ok(anonymous.get("/v1/ca-ledger/summary", params={"metric": "MWh"}))["metrics"] == []
