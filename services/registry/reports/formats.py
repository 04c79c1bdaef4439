"""The AEF document as JSON, as CSV (one file per table, in a zip) and as XLSX (one sheet each).

Every format is made from the JSON document, so all three carry the same rows
in the same column order. JSON and CSV carry every string exactly; XLSX cannot
hold control characters (other than tab and line breaks), and a spreadsheet
would run a string starting with "=" as a formula, so ``xlsx_cell`` (the one
place that adapts a value to XLSX) replaces the first and keeps the second text.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from enum import StrEnum
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell

from registry.reports.aef import TABLE_COLUMNS, Table

JSON_INDENT = 2
# Put where XLSX cannot hold a character: U+FFFD, Unicode's "unrepresentable".
XLSX_REPLACEMENT_CHARACTER = "\ufffd"
# What openpyxl refuses, plus lone surrogates and the two non-characters XML forbids.
_XLSX_ILLEGAL = re.compile(f"{ILLEGAL_CHARACTERS_RE.pattern}|[\ud800-\udfff\ufffe\uffff]")
# A fixed timestamp for the zip members, so one document always gives the same bytes.
ZIP_MEMBER_DATE_TIME = (2000, 1, 1, 0, 0, 0)


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ReportFormat.JSON: "application/json",
    ReportFormat.CSV: "application/zip",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FILE_SUFFIXES = {
    ReportFormat.JSON: ".json",
    ReportFormat.CSV: ".csv.zip",
    ReportFormat.XLSX: ".xlsx",
}


def render(document: dict[str, Any], report_format: ReportFormat) -> bytes:
    if report_format is ReportFormat.JSON:
        return to_json(document)
    if report_format is ReportFormat.CSV:
        return to_csv_zip(document)
    return to_xlsx(document)


def to_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=JSON_INDENT, ensure_ascii=False).encode()


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table_csv(document: dict[str, Any], table: Table) -> str:
    columns = TABLE_COLUMNS[table]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in document["tables"][table.value]:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def to_csv_zip(document: dict[str, Any]) -> bytes:
    """A zip with ``<n>_<table>.csv`` per table, numbered as the AEF numbers them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for number, table in enumerate(Table, start=1):
            member = zipfile.ZipInfo(f"{number}_{table.value}.csv", ZIP_MEMBER_DATE_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, table_csv(document, table))
    return buffer.getvalue()


def xlsx_cell(sheet: Any, value: Any) -> Any:
    """A cell for ``value``: strings without what XLSX cannot hold, and never a formula."""
    if not isinstance(value, str):
        return value
    cell = Cell(sheet, value=_XLSX_ILLEGAL.sub(XLSX_REPLACEMENT_CHARACTER, value))
    # openpyxl makes "=..." a formula; a reported string is data, whoever wrote it.
    cell.data_type = "s"
    return cell


def to_xlsx(document: dict[str, Any]) -> bytes:
    """One sheet per table, named after it, a header row and then the rows."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for table in Table:
        sheet = workbook.create_sheet(table.value)
        columns = TABLE_COLUMNS[table]
        sheet.append(list(columns))
        for row in document["tables"][table.value]:
            sheet.append([xlsx_cell(sheet, row.get(column)) for column in columns])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
