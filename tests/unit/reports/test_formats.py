"""XLSX cannot hold every string the JSON can: it is sanitised there, and only there."""

from __future__ import annotations

import copy
import csv
import io
import json
import zipfile
from typing import Any

from openpyxl import load_workbook

from registry.reports import ReportFormat, Table, render
from registry.reports.aef import TABLE_COLUMNS
from registry.reports.formats import XLSX_REPLACEMENT_CHARACTER
from tests.unit.application.support import Ledger
from tests.unit.reports.support import export

# What another Party can plant in a transfer's LoA, and a local operator in its terms.
PLANTED_ID = "LOA\x07-\x1b[31m-1"
PLANTED_TERMS = '=HYPERLINK("http://example.invalid","click")\x00\nline two\ttabbed'


def _planted(traded: tuple[Ledger, Ledger]) -> dict[str, Any]:
    document = copy.deepcopy(export(traded[0]))
    row = document["tables"][Table.AUTHORISATIONS.value][0]
    row["authorisation_id"] = PLANTED_ID
    row["terms"] = PLANTED_TERMS
    return document


def _cell(content: bytes, table: Table, column: str) -> Any:
    sheet = load_workbook(io.BytesIO(content))[table.value]
    return sheet.cell(row=2, column=TABLE_COLUMNS[table].index(column) + 1)


def test_control_characters_are_replaced_in_xlsx(traded: tuple[Ledger, Ledger]) -> None:
    content = render(_planted(traded), ReportFormat.XLSX)
    cell = _cell(content, Table.AUTHORISATIONS, "authorisation_id")
    marker = XLSX_REPLACEMENT_CHARACTER
    assert cell.value == f"LOA{marker}-{marker}[31m-1"


def test_a_string_that_looks_like_a_formula_stays_text_in_xlsx(
    traded: tuple[Ledger, Ledger],
) -> None:
    content = render(_planted(traded), ReportFormat.XLSX)
    cell = _cell(content, Table.AUTHORISATIONS, "terms")
    assert cell.data_type == "s"
    # Tab and line breaks are legal in XLSX and kept; NUL is not.
    expected = PLANTED_TERMS.replace("\x00", XLSX_REPLACEMENT_CHARACTER)
    assert cell.value == expected


def test_json_and_csv_keep_the_strings_exactly(traded: tuple[Ledger, Ledger]) -> None:
    document = _planted(traded)
    row = json.loads(render(document, ReportFormat.JSON))["tables"]["authorisations"][0]
    assert (row["authorisation_id"], row["terms"]) == (PLANTED_ID, PLANTED_TERMS)
    archive = zipfile.ZipFile(io.BytesIO(render(document, ReportFormat.CSV)))
    (member,) = [name for name in archive.namelist() if name.endswith("authorisations.csv")]
    rows = list(csv.DictReader(io.StringIO(archive.read(member).decode(), newline="")))
    assert (rows[0]["authorisation_id"], rows[0]["terms"]) == (PLANTED_ID, PLANTED_TERMS)
