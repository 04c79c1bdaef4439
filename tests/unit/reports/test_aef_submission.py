"""AEF table 1 states the NDC the Party configured, not one passed in per export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from registry.domain.ndc import CaMethod, NdcConfiguration, NdcType
from registry.domain.registry_node import RegistryNode
from registry.reports import check_aef
from registry.reports.aef import build_aef

AVERAGING_2030 = NdcConfiguration(
    ndc_type=NdcType.SINGLE_YEAR,
    period_start=2021,
    period_end=2030,
    target_year=2030,
    metrics=("tCO2e", "MWh"),
    method=CaMethod.AVERAGING,
)


def submission(ndc: NdcConfiguration | None) -> dict[str, Any]:
    document = build_aef(
        node=RegistryNode(party="CHE", registry_id="CHE01"),
        reported_year=2026,
        generated_at=datetime(2027, 1, 15, tzinfo=UTC),
        accounts=(),
        approaches=(),
        authorisations=(),
        audit=(),
        ndc=ndc,
    ).to_document()
    assert check_aef(document) == []
    (row,) = document["tables"]["submission"]
    return dict(row)


def test_table_1_carries_the_configured_ndc() -> None:
    row = submission(AVERAGING_2030)
    assert {
        key: row[key]
        for key in (
            "ndc_type",
            "ndc_period_from",
            "ndc_period_to",
            "ndc_target_year",
            "ca_method",
            "ndc_metrics",
        )
    } == {
        "ndc_type": "SINGLE_YEAR",
        "ndc_period_from": 2021,
        "ndc_period_to": 2030,
        "ndc_target_year": 2030,
        "ca_method": "AVERAGING",
        "ndc_metrics": "MWh;tCO2e",
    }


def test_without_a_configured_ndc_its_cells_are_empty() -> None:
    row = submission(None)
    assert row["ndc_type"] is None
    assert (row["ndc_period_from"], row["ndc_period_to"], row["ca_method"]) == (None, None, None)
