"""The AEF checker: what a submitted document must satisfy, as a list of problems.

Pure: it reads the JSON document (as parsed) and never raises on bad input; an
empty list means the document passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from a6wire.identifiers import PARTY_PATTERN, UNIQUE_IDENTIFIER_PATTERN, parse_unique_identifier
from registry.domain.approaches import GHG_METRIC
from registry.reports.aef import (
    AEF_FORMAT,
    LIST_SEPARATOR,
    OMGE_PURPOSE,
    TABLE_COLUMNS,
    VOLUNTARY_CANCELLATION_PURPOSE,
    ActionType,
    Table,
)

# ISO 8601 in UTC with a literal Z, optionally with fractions of a second.
ISO_8601_UTC_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_ISO_8601_UTC = re.compile(ISO_8601_UTC_PATTERN)
_IDENTIFIER = re.compile(UNIQUE_IDENTIFIER_PATTERN)
_PARTY = re.compile(PARTY_PATTERN)
PURPOSES = frozenset({"NDC", "OIMP", OMGE_PURPOSE, VOLUNTARY_CANCELLATION_PURPOSE})

# Fields every action row needs (DOMAIN.md "Reports" and "Block attributes"; the
# unique identifier of 6/CMA.4 annex I para 5), and those each action type needs on top.
ACTION_FIELDS_ALWAYS = (
    "action_id",
    "action_type",
    "action_date",
    "first_identifier",
    "last_identifier",
    "quantity",
    "metric",
    "quantity_tco2e",
    "conversion_factor",
    "cooperative_approach_id",
    "vintage",
    "sector",
    "activity_type",
    "mitigation_type",
    "gwp_values",
    "first_transferring_party",
    "first_transfer",
    "authorisation_id",
    "authorisation_version",
)
_TRANSFER_FIELDS = ("transferring_party", "acquiring_party", "purpose", "transfer_id")
ACTION_FIELDS_BY_TYPE: dict[ActionType, tuple[str, ...]] = {
    # An OIMP first transfer at authorisation or issuance has no acquiring Party: it
    # names the Parties its LoA authorises.
    ActionType.AUTHORISATION: ("transferring_party", "authorised_parties", "purpose"),
    ActionType.ISSUANCE: (),
    ActionType.FIRST_TRANSFER: ("transferring_party", "authorised_parties", "purpose"),
    ActionType.TRANSFER: _TRANSFER_FIELDS,
    ActionType.ACQUISITION: _TRANSFER_FIELDS,
    ActionType.USE_TOWARDS_NDC: ("using_party", "purpose", "year_of_use"),
    ActionType.USE_FOR_OIMP: ("using_party", "purpose", "year_of_use"),
    ActionType.CANCELLATION: ("using_party", "purpose"),
    ActionType.OMGE_CANCELLATION: ("using_party", "purpose"),
}
# A first transfer across a border names its acquiring Party and transfer, too.
FIRST_TRANSFER_ACROSS_BORDER_FIELDS = ("acquiring_party",)
# What the first_transfer flag must be, per action type (None: either, but a bool).
FIRST_TRANSFER_FLAG: dict[ActionType, bool | None] = {
    ActionType.AUTHORISATION: True,
    ActionType.FIRST_TRANSFER: True,
    ActionType.ACQUISITION: None,
}
# Party columns, checked against the alpha-3 pattern wherever they are filled.
PARTY_FIELDS = ("first_transferring_party", "transferring_party", "acquiring_party", "using_party")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document; ``row`` counts from 0 within the table."""

    table: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.table if self.row is None else f"{self.table}[{self.row}]"
        if self.field is not None:
            where = f"{where}.{self.field}"
        return f"{where}: {self.message}"


_ProblemAt = Callable[[str, str], Problem]


def check_aef(document: Any) -> list[Problem]:
    """Every problem found in an AEF JSON document."""
    if not isinstance(document, dict) or document.get("format") != AEF_FORMAT:
        return [Problem("document", None, "format", f"not an {AEF_FORMAT} document")]
    tables = document.get("tables")
    if not isinstance(tables, dict):
        return [Problem("document", None, "tables", "no tables")]
    problems: list[Problem] = []
    for table in Table:
        rows = tables.get(table.value)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            problems.append(Problem(table.value, None, None, "missing, or not a list of rows"))
            continue
        for index, row in enumerate(rows):
            missing = [column for column in TABLE_COLUMNS[table] if column not in row]
            if missing:
                problems.append(
                    Problem(table.value, index, None, f"missing columns {', '.join(missing)}")
                )
    if problems:
        return problems
    reported_year = _check_submission(tables[Table.SUBMISSION.value], problems)
    for index, row in enumerate(tables[Table.ACTIONS.value]):
        problems.extend(_action_problems(index, row, reported_year))
    for index, row in enumerate(tables[Table.HOLDINGS.value]):
        if not _is_count(row["quantity"]) or row["quantity"] == 0:
            problems.append(
                Problem(Table.HOLDINGS.value, index, "quantity", "not a positive count")
            )
    return problems


def _check_submission(rows: list[dict[str, Any]], problems: list[Problem]) -> int | None:
    name = Table.SUBMISSION.value
    if len(rows) != 1:
        problems.append(Problem(name, None, None, f"has {len(rows)} rows, not 1"))
        return None
    row = rows[0]
    if not isinstance(row["party"], str) or not _PARTY.fullmatch(row["party"]):
        problems.append(Problem(name, 0, "party", "not an ISO 3166 alpha-3 code"))
    if not _is_year(row["reported_year"]):
        problems.append(Problem(name, 0, "reported_year", "not a year"))
        return None
    return int(row["reported_year"])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_year(value: Any) -> bool:
    return _is_count(value) and 1000 <= value <= 9999


def _action_problems(
    index: int, row: dict[str, Any], reported_year: int | None
) -> Iterator[Problem]:
    name = Table.ACTIONS.value

    def problem(field: str, message: str) -> Problem:
        return Problem(name, index, field, message)

    try:
        action_type = ActionType(row["action_type"])
    except ValueError:
        yield problem("action_type", f"unknown action type {row['action_type']!r}")
        return
    required = [*ACTION_FIELDS_ALWAYS, *ACTION_FIELDS_BY_TYPE[action_type]]
    if action_type is ActionType.FIRST_TRANSFER and row.get("transfer_id"):
        required += FIRST_TRANSFER_ACROSS_BORDER_FIELDS
    for field in required:
        if row.get(field) is None or row.get(field) == "":
            yield problem(field, f"required for {action_type.value}")
    yield from _first_transfer_flag_problems(row, action_type, problem)
    yield from _tco2e_problems(row, problem)
    for field in PARTY_FIELDS:
        value = row.get(field)
        if value not in (None, "") and not (isinstance(value, str) and _PARTY.fullmatch(value)):
            yield problem(field, f"{value!r} is not an ISO 3166 alpha-3 code")
    authorised = row.get("authorised_parties")
    if authorised not in (None, "") and not (
        isinstance(authorised, str)
        and all(_PARTY.fullmatch(party) for party in authorised.split(LIST_SEPARATOR))
    ):
        yield problem("authorised_parties", f"{authorised!r} is not a list of alpha-3 codes")
    if row.get("purpose") not in (None, "", *PURPOSES):
        yield problem("purpose", f"{row['purpose']!r} is not one of {sorted(PURPOSES)}")
    yield from _identifier_problems(row, problem)
    yield from _date_problems(row, reported_year, problem)


def _first_transfer_flag_problems(
    row: dict[str, Any], action_type: ActionType, problem: _ProblemAt
) -> Iterator[Problem]:
    value = row.get("first_transfer")
    if value is None:
        return  # reported as missing above
    if not isinstance(value, bool):
        yield problem("first_transfer", f"{value!r} is not true or false")
        return
    expected = FIRST_TRANSFER_FLAG.get(action_type, False)
    if expected is not None and value is not expected:
        yield problem("first_transfer", f"must be {str(expected).lower()} on {action_type.value}")


def _tco2e_problems(row: dict[str, Any], problem: _ProblemAt) -> Iterator[Problem]:
    """The tCO2e quantity is the quantity times the conversion factor (1 for tCO2e)."""
    factor = _decimal(row.get("conversion_factor"))
    in_tco2e = _decimal(row.get("quantity_tco2e"))
    quantity = row.get("quantity")
    if row.get("conversion_factor") not in (None, "") and (factor is None or factor <= 0):
        yield problem("conversion_factor", f"{row['conversion_factor']!r} is not a positive number")
        return
    if row.get("quantity_tco2e") not in (None, "") and in_tco2e is None:
        yield problem("quantity_tco2e", f"{row['quantity_tco2e']!r} is not a number")
        return
    if factor is None or in_tco2e is None or not isinstance(quantity, int):
        return
    if row.get("metric") == GHG_METRIC and factor != 1:
        yield problem("conversion_factor", f"is {factor}, but the metric is {GHG_METRIC}")
    if in_tco2e != quantity * factor:
        yield problem("quantity_tco2e", f"{in_tco2e} is not {quantity} x {factor}")


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _identifier_problems(row: dict[str, Any], problem: _ProblemAt) -> Iterator[Problem]:
    first, last = row.get("first_identifier"), row.get("last_identifier")
    units = []
    for field, value in (("first_identifier", first), ("last_identifier", last)):
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            yield problem(field, f"{value!r} does not match {UNIQUE_IDENTIFIER_PATTERN}")
        else:
            units.append(parse_unique_identifier(value))
    if len(units) != 2:
        return
    first_unit, last_unit = units
    if first_unit[:3] != last_unit[:3] or first_unit.vintage != last_unit.vintage:
        yield problem("last_identifier", "first and last identifier are not of one block")
    if last_unit.serial < first_unit.serial:
        yield problem("last_identifier", "last serial is below the first")
    quantity = row.get("quantity")
    expected = last_unit.serial - first_unit.serial + 1
    if not _is_count(quantity) or quantity != expected:
        yield problem("quantity", f"{quantity!r} is not last - first + 1 = {expected}")
    if row.get("cooperative_approach_id") not in (None, first_unit.cooperative_approach_id):
        yield problem("cooperative_approach_id", "differs from the identifier's")
    if row.get("vintage") not in (None, first_unit.vintage):
        yield problem("vintage", "differs from the identifier's")
    if row.get("first_transferring_party") not in (None, first_unit.first_transferring_party):
        yield problem("first_transferring_party", "differs from the identifier's")


def _date_problems(
    row: dict[str, Any], reported_year: int | None, problem: Any
) -> Iterator[Problem]:
    value = row.get("action_date")
    if value is None:
        return
    if not isinstance(value, str) or not _ISO_8601_UTC.fullmatch(value):
        yield problem("action_date", f"{value!r} is not ISO 8601 UTC (…Z)")
        return
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        yield problem("action_date", f"{value!r} is not a real date and time")
        return
    if reported_year is not None and moment.year != reported_year:
        yield problem("action_date", f"{value} is outside the reported year {reported_year}")
