"""The CA summary after a real cross-border transfer and a real use, on two nodes and the broker.

CHE first-transfers 40 units of vintage 2025 to GHA over Kafka; GHA uses 25 of them
towards its NDC for 2027. Each Party has set its NDC through the API, and each
node's public ``GET /v1/ca-ledger/summary`` must show its own side:

- CHE, single-year NDC 2021-2030, averaging: +40 first transferred for 2025;
  indicative in 2025: 40 / 5 years elapsed = 8; applied in 2030: 40 / 10 = 4.
- GHA, single-year NDC 2026-2030, trajectory: -25 used in 2027, applied to 2027;
  with reported 2027 emissions of 9000 the adjusted balance is 9000 - 25 = 8975,
  under the 2027 trajectory point of 9500.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.api.conftest import ok
from tests.integration.transfers.test_two_nodes import (
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    RunningNode,
    _body,
    federation,
)
from tests.unit.application.support import PARTNER, PARTY

__all__ = ["federation"]  # the two-node fixture, used below by name

TRANSFERRED = 40
USED = 25


def _year_row(summary: dict[str, Any], year: int) -> dict[str, Any]:
    (metric,) = summary["metrics"]
    (row,) = [row for row in metric["years"] if row["year"] == year]
    return dict(row)


def test_each_party_reads_its_own_method_after_a_transfer_and_a_use(
    federation: dict[str, RunningNode],
) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    averaging = {
        "ndc_type": "SINGLE_YEAR",
        "period_start": 2021,
        "period_end": 2030,
        "target_year": 2030,
        "method": "AVERAGING",
    }
    ok(sender.client.put("/v1/ndc", json=averaging))
    trajectory = {
        "ndc_type": "SINGLE_YEAR",
        "period_start": 2026,
        "period_end": 2030,
        "target_year": 2030,
        "method": "TRAJECTORY",
        "trajectory": [
            {"year": year, "level": 10_000 - 500 * (year - 2026)} for year in range(2026, 2031)
        ],
        "reported_emissions": [{"year": 2027, "level": 9000}],
    }
    ok(receiver.client.put("/v1/ndc", json=trajectory))

    response = sender.client.post(
        "/v1/transfers?wait_s=30",
        json=_body(quantity=TRANSFERRED),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    use = {"account_id": RECEIVER_ACCOUNT, "purpose": "NDC", "year_of_use": 2027, "quantity": USED}
    ok(receiver.client.post("/v1/uses", json=use))

    at_sender = ok(sender.client.get("/v1/ca-ledger/summary"))
    assert at_sender["party"] == PARTY
    row_2025 = _year_row(at_sender, 2025)
    assert (row_2025["first_transferred"], row_2025["used"]) == (TRANSFERRED, 0)
    assert (row_2025["applied_adjustment"], row_2025["indicative"]) == ("8.000", True)
    row_2030 = _year_row(at_sender, 2030)
    assert (row_2030["applied_adjustment"], row_2030["indicative"]) == ("4.000", False)
    assert sender.ledger().held(SENDER_ACCOUNT) == 100 - TRANSFERRED

    at_receiver = ok(receiver.client.get("/v1/ca-ledger/summary"))
    assert at_receiver["party"] == PARTNER
    (metric,) = at_receiver["metrics"]
    # Acquisition alone is no adjustment: nothing for 2025 (the vintage, outside GHA's period).
    assert (metric["period_total"], metric["outside_period"]) == (-USED, 0)
    row_2027 = _year_row(at_receiver, 2027)
    assert (row_2027["first_transferred"], row_2027["used"]) == (0, -USED)
    assert (row_2027["applied_adjustment"], row_2027["trajectory_level"]) == ("-25.000", "9500")
    assert row_2027["adjusted_emissions_balance"] == "8975.000"
