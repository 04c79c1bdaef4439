"""The AEF checker passes a correct export and catches each kind of corruption."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from registry.reports import check_aef
from tests.unit.application.support import Ledger
from tests.unit.reports.support import actions, export

Document = dict[str, Any]


def _row_of(document: Document, action_type: str) -> dict[str, Any]:
    return next(row for row in actions(document) if row["action_type"] == action_type)


def _set(action_type: str, field: str, value: Any) -> Callable[[Document], None]:
    def corrupt(document: Document) -> None:
        _row_of(document, action_type)[field] = value

    return corrupt


def _drop_column(document: Document) -> None:
    del actions(document)[0]["metric"]


# (corruption, the field the checker must name)
CORRUPTIONS: dict[str, tuple[Callable[[Document], None], str]] = {
    "identifier pattern": (
        _set("issuance", "first_identifier", "CA0001-CHE01-CHE-1-2025"),
        "first_identifier",
    ),
    "identifier of another block": (
        _set("issuance", "last_identifier", "CA0002-CHE01-CHE-000000500-2025"),
        "last_identifier",
    ),
    "quantity not last - first + 1": (_set("first_transfer", "quantity", 401), "quantity"),
    "year of use missing on a use": (_set("use_towards_ndc", "year_of_use", None), "year_of_use"),
    "acquiring Party missing on a first transfer": (
        _set("first_transfer", "transferring_party", ""),
        "transferring_party",
    ),
    "transfer id missing on an acquisition": (
        _set("acquisition", "transfer_id", None),
        "transfer_id",
    ),
    "date without UTC designator": (
        _set("issuance", "action_date", "2026-03-01T12:00:00+01:00"),
        "action_date",
    ),
    "date not ISO 8601": (_set("cancellation", "action_date", "01/03/2026"), "action_date"),
    "date outside the reported year": (
        _set("cancellation", "action_date", "2025-12-31T23:59:59Z"),
        "action_date",
    ),
    "impossible date": (_set("issuance", "action_date", "2026-02-30T12:00:00Z"), "action_date"),
    "unknown action type": (_set("issuance", "action_type", "gift"), "action_type"),
    "Party not alpha-3": (_set("first_transfer", "acquiring_party", "Ghana"), "acquiring_party"),
    "vintage differs from the identifier": (_set("issuance", "vintage", 2024), "vintage"),
    "purpose unknown": (_set("use_towards_ndc", "purpose", "GIFT"), "purpose"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupted_export_is_caught(kind: str, traded: tuple[Ledger, Ledger]) -> None:
    sender, _ = traded
    document = copy.deepcopy(export(sender))
    corrupt, field = CORRUPTIONS[kind]
    corrupt(document)
    problems = check_aef(document)
    assert field in {problem.field for problem in problems}, problems
    assert all(problem.table == "actions" for problem in problems)


def test_a_dropped_column_is_named(traded: tuple[Ledger, Ledger]) -> None:
    document = copy.deepcopy(export(traded[0]))
    _drop_column(document)
    (problem,) = check_aef(document)
    assert (problem.table, problem.row) == ("actions", 0)
    assert "metric" in problem.message


@pytest.mark.parametrize(
    "document", [None, [], {"format": "other"}, {"format": "a6-aef", "tables": []}]
)
def test_not_an_aef_document(document: Any) -> None:
    (problem,) = check_aef(document)
    assert problem.table == "document"


def test_a_missing_table_is_named(traded: tuple[Ledger, Ledger]) -> None:
    document = copy.deepcopy(export(traded[0]))
    del document["tables"]["holdings"]
    assert [str(problem) for problem in check_aef(document)] == [
        "holdings: missing, or not a list of rows"
    ]
