"""The AEF built from a traded ledger: what each table holds, and that it passes the checker."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

from openpyxl import load_workbook

from registry.domain.accounts import AccountKind
from registry.domain.blocks import BlockStatus
from registry.reports import ReportFormat, Table, check_aef, render
from registry.reports.aef import TABLE_COLUMNS
from registry.reports.formats import csv_cell
from registry.reports.holdings import holdings_at
from tests.unit.application.support import Ledger, line
from tests.unit.reports.support import (
    CANCELLED_BY_SENDER,
    ISSUED,
    REPORTED_YEAR,
    SENT_BACK,
    SENT_FIRST,
    SENT_SECOND,
    USED_BY_SENDER,
    actions,
    export,
)

Traded = tuple[Ledger, Ledger]
LATER_ISSUED = 10


def test_exports_of_both_parties_pass_the_checker(traded: Traded) -> None:
    sender, receiver = traded
    assert check_aef(export(sender)) == []
    assert check_aef(export(receiver)) == []


def test_the_sender_reports_each_action_once(traded: Traded) -> None:
    rows = actions(export(traded[0]))
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row["action_type"]] = by_type.get(row["action_type"], 0) + row["quantity"]
    # A cross-border first transfer is not also reported as a transfer; the internal
    # transfer is no Article 6 action at all.
    assert by_type == {
        "issuance": ISSUED,
        "use_towards_ndc": USED_BY_SENDER,
        "cancellation": CANCELLED_BY_SENDER,
        "first_transfer": SENT_FIRST + SENT_SECOND,
        "acquisition": SENT_BACK,
    }
    first_transfers = [row for row in rows if row["action_type"] == "first_transfer"]
    assert {(row["transferring_party"], row["acquiring_party"]) for row in first_transfers} == {
        ("CHE", "GHA")
    }
    assert all(row["first_transfer"] and row["purpose"] == "NDC" for row in first_transfers)
    (use,) = [row for row in rows if row["action_type"] == "use_towards_ndc"]
    assert (use["using_party"], use["year_of_use"], use["purpose"]) == ("CHE", 2026, "NDC")


def test_an_onward_transfer_is_a_transfer_not_a_first_transfer(traded: Traded) -> None:
    rows = actions(export(traded[1]))
    (onward,) = [row for row in rows if row["action_type"] == "transfer"]
    assert (onward["transferring_party"], onward["acquiring_party"]) == ("GHA", "CHE")
    assert onward["first_transfer"] is False
    assert onward["first_transferring_party"] == "CHE"


def test_every_row_has_the_columns_of_its_table(traded: Traded) -> None:
    document = export(traded[0])
    for table in Table:
        for row in document["tables"][table.value]:
            assert tuple(row) == TABLE_COLUMNS[table]


def test_holdings_at_the_year_end_agree_with_the_blocks_now(traded: Traded) -> None:
    """Replaying the whole trail gives what the block table holds today."""
    for ledger in traded:
        source = ledger.query("report_source", REPORTED_YEAR)
        kinds = {account.account_id: account.kind for account in source.accounts}
        replayed = {
            (key.account_kind, key.vintage): quantity
            for key, quantity in holdings_at(source.audit, kinds).items()
        }
        with ledger.uow:
            stored = ledger.uow.blocks.quantities_by_class()
        now: dict[tuple[AccountKind, int], int] = {}
        for row in stored:
            if row.status not in (BlockStatus.TRANSFERRED_OUT, BlockStatus.INCOMING):
                key = (row.account_kind, row.vintage)
                now[key] = now.get(key, 0) + row.quantity
        assert replayed == now


def test_a_year_reports_only_its_own_actions(traded: Traded) -> None:
    sender, _ = traded
    assert actions(export(sender, REPORTED_YEAR - 1)) == []
    assert export(sender, REPORTED_YEAR - 1)["tables"]["holdings"] == []
    # Holdings at the end of a year stay what they were, whatever happens later.
    before = export(sender)["tables"]["holdings"]
    sender.clock.advance(timedelta(days=366))
    sender.issue("CHE-A", line(LATER_ISSUED))
    assert export(sender)["tables"]["holdings"] == before
    (later,) = actions(export(sender, REPORTED_YEAR + 1))
    assert (later["action_type"], later["quantity"]) == ("issuance", LATER_ISSUED)


def test_the_authorisation_tables(traded: Traded) -> None:
    document = export(traded[0])
    (loa,) = document["tables"]["authorisations"]
    assert (loa["authorisation_id"], loa["version"], loa["authorised_parties"]) == (
        "LOA-CHE-1",
        1,
        "CHE;GHA",
    )
    # The receiver keeps CHE's LoA as a snapshot; it is not GHA's to report.
    assert export(traded[1])["tables"]["authorisations"] == []
    (submission,) = document["tables"]["submission"]
    assert (submission["party"], submission["reported_year"]) == ("CHE", REPORTED_YEAR)


def test_xlsx_has_five_sheets_with_the_json_rows(traded: Traded) -> None:
    document = export(traded[0])
    workbook = load_workbook(io.BytesIO(render(document, ReportFormat.XLSX)))
    assert workbook.sheetnames == [table.value for table in Table]
    for table in Table:
        header, *rows = workbook[table.value].iter_rows(values_only=True)
        assert header == TABLE_COLUMNS[table]
        expected = [tuple(row.values()) for row in document["tables"][table.value]]
        # openpyxl reads an empty string back as an empty cell.
        assert rows == [tuple(None if value == "" else value for value in row) for row in expected]


def test_csv_is_a_zip_of_five_tables_with_the_json_rows(traded: Traded) -> None:
    document = export(traded[0])
    with zipfile.ZipFile(io.BytesIO(render(document, ReportFormat.CSV))) as archive:
        names = archive.namelist()
        assert names == [f"{n}_{table.value}.csv" for n, table in enumerate(Table, start=1)]
        for name, table in zip(names, Table, strict=True):
            rows = list(csv.DictReader(io.StringIO(archive.read(name).decode())))
            json_rows = document["tables"][table.value]
            assert len(rows) == len(json_rows)
            assert rows == [
                {column: csv_cell(value) for column, value in json_row.items()}
                for json_row in json_rows
            ]
