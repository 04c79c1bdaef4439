"""The CA summary of real node processes, seeded as the demo seeds them, after real traffic.

GHA first-transfers 600 units of CA0005 (vintage 2024) to CHE over the broker; CHE
uses 100 of them towards its NDC for 2026. The seed gave each Party a single-year
NDC over 2021-2030: GHA by averaging, CHE by trajectory (46,000,000 tCO2e in 2021
falling by (46,000,000 - 33,000,000) // 9 = 1,444,444 a year, so 38,777,780 in 2026).

- GHA: +600 for 2024; indicative 600 / 4 years elapsed = 150; applied in 2030:
  600 / 10 = 60.
- CHE: -100 applied to 2026, against its trajectory point of 38,777,780.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from deploy.federation.launcher import Federation

TRANSFER_WAIT_S = 30
TRANSFERRED = 600
USED = 100


def _summary(federation: Federation, party: str) -> dict[int, dict[str, Any]]:
    with federation.node(party).public() as client:
        response = client.get("/v1/ca-ledger/summary")
    assert response.status_code == 200, response.text
    (metric,) = response.json()["metrics"]
    return {row["year"]: row for row in metric["years"]}


@pytest.mark.e2e
def test_each_party_reports_its_adjustments_by_its_own_method(federation: Federation) -> None:
    body = {
        "transfer_id": str(uuid.uuid4()),
        "from_account_id": "GHA-GOV",
        "to_party": "CHE",
        "to_account_id": "CHE-GOV",
        "quantity": TRANSFERRED,
        "cooperative_approach_id": "CA0005",
        "authorisation_id": "GHA-LOA-CA0005-001",
        "purpose": "NDC",
    }
    with federation.node("GHA").operator() as client:
        response = client.post(f"/v1/transfers?wait_s={TRANSFER_WAIT_S}", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "COMMITTED", response.text
    use = {"account_id": "CHE-GOV", "purpose": "NDC", "year_of_use": 2026, "quantity": USED}
    with federation.node("CHE").operator() as client:
        response = client.post("/v1/uses", json=use)
    assert response.status_code == 200, response.text

    at_gha = _summary(federation, "GHA")
    assert (at_gha[2024]["first_transferred"], at_gha[2024]["applied_adjustment"]) == (
        TRANSFERRED,
        "150.000",
    )
    assert (at_gha[2030]["applied_adjustment"], at_gha[2030]["indicative"]) == ("60.000", False)
    at_che = _summary(federation, "CHE")
    assert (at_che[2026]["used"], at_che[2026]["applied_adjustment"]) == (-USED, "-100.000")
    assert at_che[2026]["trajectory_level"] == "38777780"
    assert at_che[2024]["annual_adjustment"] == 0  # acquisition is not an adjustment

    with federation.node("GHA").public() as client:
        aef = client.get(f"/v1/reports/aef/{datetime.now(UTC).year}").json()
    (submission,) = aef["tables"]["submission"]
    assert (submission["ndc_type"], submission["ca_method"], submission["ndc_period_to"]) == (
        "SINGLE_YEAR",
        "AVERAGING",
        2030,
    )
