"""GET /v1/reports/aef/{year}, GET /v1/authorisations and GET /v1/holdings/totals over a
real node, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from registry.application import handlers
from registry.application.commands import RecordAuthorisation
from registry.bootstrap import Node
from registry.entrypoints.api.dependencies import execute
from registry.reports import Table, check_aef
from registry.reports.aef import TABLE_COLUMNS
from tests.integration.api.conftest import HOLDING_ACCOUNT, LOA_ID, ok, refused
from tests.unit.application.support import authorisation

USED = 100
CANCELLED = 30


def _trade(operator: TestClient) -> None:
    use = {"account_id": HOLDING_ACCOUNT, "purpose": "NDC", "year_of_use": 2026, "quantity": USED}
    ok(operator.post("/v1/uses", json=use))
    cancel = {"account_id": HOLDING_ACCOUNT, "kind": "VOLUNTARY", "quantity": CANCELLED}
    ok(operator.post("/v1/cancellations", json=cancel))


def _year() -> int:
    # The node's clock is the system clock: its actions happen this year.
    return datetime.now(UTC).year


def test_the_json_export_passes_the_checker(
    issued: dict[str, Any], operator: TestClient, anonymous: TestClient
) -> None:
    _trade(operator)
    document = ok(anonymous.get(f"/v1/reports/aef/{_year()}"))
    assert check_aef(document) == []
    types = [row["action_type"] for row in document["tables"]["actions"]]
    assert types.count("issuance") == 1
    assert {"use_towards_ndc", "cancellation"} <= set(types)
    holdings = {row["account_type"]: row["quantity"] for row in document["tables"]["holdings"]}
    assert holdings == {
        "HOLDING": 1000 - USED - CANCELLED,
        "NDC_USE": USED,
        "VOLUNTARY_CANCELLATION": CANCELLED,
    }
    (loa,) = document["tables"]["authorisations"]
    assert loa["authorisation_id"] == LOA_ID


def test_xlsx_and_csv_carry_the_json_rows(issued: dict[str, Any], auditor: TestClient) -> None:
    year = _year()
    document = ok(auditor.get(f"/v1/reports/aef/{year}"))
    response = auditor.get(f"/v1/reports/aef/{year}", params={"format": "xlsx"})
    assert response.status_code == 200
    assert f'filename="aef-THA-{year}.xlsx"' in response.headers["content-disposition"]
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == [table.value for table in Table]
    for table in Table:
        header, *rows = workbook[table.value].iter_rows(values_only=True)
        assert header == TABLE_COLUMNS[table]
        assert len(rows) == len(document["tables"][table.value])
    archive = zipfile.ZipFile(
        io.BytesIO(auditor.get(f"/v1/reports/aef/{year}", params={"format": "csv"}).content)
    )
    assert len(archive.namelist()) == len(Table)


def test_bad_requests_are_refused(anonymous: TestClient) -> None:
    refused(anonymous.get("/v1/reports/aef/1999"), 422, "MALFORMED_REQUEST")
    refused(anonymous.get("/v1/reports/aef/2025?format=pdf"), 422, "MALFORMED_REQUEST")


def test_table_1_states_the_ndc_set_under_put_v1_ndc(
    operator: TestClient, anonymous: TestClient
) -> None:
    (before,) = ok(anonymous.get(f"/v1/reports/aef/{_year()}"))["tables"]["submission"]
    assert (before["ndc_type"], before["ndc_period_from"]) == (None, None)
    ndc = {"ndc_type": "MULTI_YEAR", "period_start": 2026, "period_end": 2035, "method": "ANNUAL"}
    ok(operator.put("/v1/ndc", json=ndc))
    document = ok(anonymous.get(f"/v1/reports/aef/{_year()}"))
    (row,) = document["tables"]["submission"]
    assert (row["ndc_type"], row["ndc_period_from"], row["ndc_period_to"]) == (
        "MULTI_YEAR",
        2026,
        2035,
    )
    assert (row["ndc_target_year"], row["ca_method"], row["ndc_metrics"]) == (
        None,
        "ANNUAL",
        "tCO2e",
    )
    assert check_aef(document) == []


def test_current_authorisations_are_public(ledger: TestClient, anonymous: TestClient) -> None:
    ok(
        ledger.post(
            f"/v1/authorisations/{LOA_ID}/versions",
            json={
                "version": 2,
                "authorised_on": "2025-01-01",
                "cooperative_approach_id": "CA0001",
                "authorised_parties": ["CHE"],
                "purposes": ["NDC"],
            },
        ),
        201,
    )
    (current,) = ok(anonymous.get("/v1/authorisations"))
    assert (current["authorisation_id"], current["version"]) == (LOA_ID, 2)


def test_holdings_totals_are_summed_by_the_store(
    issued: dict[str, Any], operator: TestClient, anonymous: TestClient
) -> None:
    _trade(operator)
    (total,) = ok(anonymous.get("/v1/holdings/totals"))
    assert (total["held"], total["retired"], total["cancelled"]) == (
        1000 - USED - CANCELLED,
        USED,
        CANCELLED,
    )
    assert ok(anonymous.get("/v1/holdings/totals", params={"vintage": 2024})) == []


def test_an_xlsx_export_survives_control_characters_in_stored_strings(
    issued: dict[str, Any], node: Node, auditor: TestClient
) -> None:
    # Stored behind the API's back, as a peer's PREPARE or an older node could have.
    planted = authorisation(
        authorisation_id="LOA\x07-PLANTED",
        authorising_party="THA",
        cooperative_approach_id="CA0001",
        authorised_on=datetime.now(UTC).date(),
        terms="=1+1\x1b[0m",
    )
    execute(node, handlers.record_authorisation, RecordAuthorisation(planted))
    response = auditor.get(f"/v1/reports/aef/{_year()}", params={"format": "xlsx"})
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content))[Table.AUTHORISATIONS.value]
    values = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "LOA\ufffd-PLANTED" in values
    document = ok(auditor.get(f"/v1/reports/aef/{_year()}"))
    ids = {row["authorisation_id"] for row in document["tables"]["authorisations"]}
    assert "LOA\x07-PLANTED" in ids
