"""``GET /public``: each section's content after seeding through the API, and nothing private."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from registry.entrypoints.public.page import AEF_FIRST_REPORTED_YEAR, transfer_rows_of
from tests.integration.api.conftest import (
    APPROACH_ID,
    HOLDING_ACCOUNT,
    LOA_ID,
    OTHER_ACCOUNT,
    approach_body,
    issuance_body,
    loa_body,
    ok,
)
from tests.integration.public.html_tables import parse, table_with_caption

HOLDER_NAMES = ("Thai Government Treasury", "Solar Co <b>Ltd</b>")
HOLDER_ENTITY = "ENT-7"
SECTION_HEADINGS = (
    "Holdings by cooperative approach and vintage",
    "Cross-border transfers",
    "Corresponding adjustments",
    "Authorisations (Letters of Authorisation)",
    "Agreed Electronic Format (AEF) reports",
)


def _seed(operator: TestClient) -> None:
    """One approach and LoA, two accounts with named holders, 1,000 units, 5 used for OIMP."""
    ok(operator.post("/v1/cooperative-approaches", json=approach_body()), 201)
    ok(operator.post("/v1/authorisations", json=loa_body(quantity_cap=40_000)), 201)
    for account_id, name, entity in (
        (HOLDING_ACCOUNT, HOLDER_NAMES[0], None),
        (OTHER_ACCOUNT, HOLDER_NAMES[1], HOLDER_ENTITY),
    ):
        body = {"account_id": account_id, "name": name, "holder_entity_id": entity}
        ok(operator.post("/v1/accounts", json={k: v for k, v in body.items() if v}), 201)
    ok(operator.post("/v1/issuances", json=issuance_body(1000)), 201)
    use = {"account_id": HOLDING_ACCOUNT, "purpose": "OIMP", "quantity": 5}
    ok(operator.post("/v1/uses", json=use))


def _page(client: TestClient) -> str:
    response = client.get("/public")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return str(response.text)


def test_an_empty_registry_has_every_section_and_accessible_tables(
    anonymous: TestClient,
) -> None:
    html = _page(anonymous)
    headings, tables = parse(html)
    assert headings[0] == "Article 6.2 registry of THA"
    for heading in SECTION_HEADINGS:
        assert heading in headings
    assert '<html lang="en">' in html
    assert "<script" not in html
    for table in tables:
        assert table.caption, f"a table without caption: {table}"
        assert table.header, f"a table without header row: {table.caption}"
    holdings = table_with_caption(tables, "Units in this registry")
    assert holdings.rows == [["No units have been issued or acquired yet."]]
    assert table_with_caption(tables, "Transfers out").rows == [["No transfers out."]]
    assert table_with_caption(tables, "Transfers in").rows == [["No transfers in."]]
    assert anonymous.get("/public/style.css").headers["content-type"].startswith("text/css")


def test_sections_show_holdings_ledger_and_authorisations(
    operator: TestClient, anonymous: TestClient
) -> None:
    _seed(operator)
    _, tables = parse(_page(anonymous))

    holdings = table_with_caption(tables, "Units in this registry")
    assert holdings.header[:3] == ["Cooperative approach", "Vintage", "Metric"]
    assert holdings.rows == [[APPROACH_ID, "2025", "tCO2e", "995", "5", "0"]]

    balances = table_with_caption(tables, "Balance by year and metric")
    assert balances.rows == [["2025", "tCO2e", "5"]]
    entries = table_with_caption(tables, "Entries, newest first")
    assert len(entries.rows) == 1
    year, metric, quantity, cause, first, last, _transfer, _recorded = entries.rows[0]
    assert (year, metric, quantity, cause) == ("2025", "tCO2e", "5", "first transfer")
    assert first.startswith(f"{APPROACH_ID}-THA01-THA-")
    assert last.endswith("-2025")

    loas = table_with_caption(tables, "Current version of every authorisation")
    assert loas.rows == [
        [
            LOA_ID,
            "1",
            APPROACH_ID,
            "2024-06-01",
            "CHE, THA",
            "NDC, OIMP",
            "40,000",
            "not limited",
            "not limited",
            "in force",
        ]
    ]
    ok(operator.post(f"/v1/authorisations/{LOA_ID}/revoke"))
    _, tables = parse(_page(anonymous))
    revoked = table_with_caption(tables, "Current version of every authorisation").rows[0]
    assert (revoked[1], revoked[-1]) == ("2", "revoked")


def test_no_account_or_holder_appears(operator: TestClient, anonymous: TestClient) -> None:
    _seed(operator)
    html = _page(anonymous)
    for private in (*HOLDER_NAMES, "Solar Co", HOLDER_ENTITY, HOLDING_ACCOUNT, OTHER_ACCOUNT):
        assert private not in html, f"{private!r} leaked onto the public page"


def test_aef_links_for_every_reported_year_and_the_public_may_fetch_them(
    anonymous: TestClient,
) -> None:
    _, tables = parse(_page(anonymous))
    reports = table_with_caption(tables, "Download the AEF")
    current_year = datetime.now(UTC).year
    years = [int(row[0]) for row in reports.rows]
    assert years == list(range(current_year, AEF_FIRST_REPORTED_YEAR - 1, -1))
    html = _page(anonymous)
    for report_format in ("json", "csv", "xlsx"):
        href = f"/v1/reports/aef/{current_year}?format={report_format}"
        assert f'href="{href}"' in html
        response = anonymous.get(href)
        assert response.status_code == 200, (href, response.text[:300])


def test_an_unknown_token_is_refused_rather_than_shown_less(anonymous: TestClient) -> None:
    response = anonymous.get("/public", headers={"Authorization": "Bearer not-a-known-token"})
    assert response.status_code == 401


def test_transfer_views_become_rows_in_and_out_without_accounts() -> None:
    block = {"first_identifier": "CA0001-GHA01-GHA-000000001-2024", "quantity": 250}
    block["last_identifier"] = "CA0001-GHA01-GHA-000000250-2024"
    view = {
        "transfer_id": "t-1",
        "role": "COORDINATOR",
        "status": "COMMITTED",
        "from_party": "THA",
        "to_party": "CHE",
        "from_account_id": HOLDING_ACCOUNT,
        "to_account_id": "CHE-GOV",
        "quantity": 250,
        "blocks": [block],
        "reasons": [],
        "updated_at": "2026-01-02T03:04:05+00:00",
    }
    # The same transfer seen as a participant too: the coordinator's view wins.
    as_participant = {**view, "role": "PARTICIPANT", "status": "PENDING"}
    incoming = {**view, "transfer_id": "t-2", "from_party": "CHE", "to_party": "THA"}
    rows = transfer_rows_of([as_participant, view, incoming], "THA")
    by_id = {row.transfer_id: row for row in rows}
    assert set(by_id) == {"t-1", "t-2"}
    assert (by_id["t-1"].direction, by_id["t-1"].counterparty) == ("out", "CHE")
    assert by_id["t-1"].status == "COMMITTED"
    assert (by_id["t-2"].direction, by_id["t-2"].counterparty) == ("in", "CHE")
    assert by_id["t-1"].blocks[0].last_identifier == block["last_identifier"]
    assert HOLDING_ACCOUNT not in repr(rows)
    assert "CHE-GOV" not in repr(rows)


def test_the_ca_summary_section_explains_each_number(
    operator: TestClient, anonymous: TestClient
) -> None:
    """5 units first transferred (OIMP use) for 2025; single-year NDC 2021-2030 by
    averaging: 2025 shows 5 / 5 = 1 (indicative), 2030 applies 5 / 10 = 0.5."""
    _seed(operator)
    html = _page(anonymous)
    assert "has not configured its NDC" in html
    ndc = {
        "ndc_type": "SINGLE_YEAR",
        "period_start": 2021,
        "period_end": 2030,
        "target_year": 2030,
        "method": "AVERAGING",
        "reported_emissions": [{"year": 2030, "level": 1234}],
    }
    ok(operator.put("/v1/ndc", json=ndc))
    html = _page(anonymous)
    headings, tables = parse(html)
    assert "Corresponding adjustments under the NDC" in headings
    assert "has a single-year NDC (target year 2030" in html
    assert "by the averaging method" in html
    for column in ("Annual adjustment", "Cumulative", "Applied adjustment", "Adjusted emissions"):
        assert f"<dt>{column}" in html
    assert "divided by its number of years" in html
    summary = table_with_caption(tables, "tCO2e: adjustments by year")
    assert "period total 5; outside the period 0" in summary.caption
    by_year = {row[0]: row for row in summary.rows}
    assert list(by_year) == [str(year) for year in range(2021, 2031)]
    assert by_year["2025"][1:7] == ["5", "0", "5", "5", "1.000", "indicative"]
    assert by_year["2030"][5:] == ["0.500", "applied", "—", "1,234", "1,234.500"]
