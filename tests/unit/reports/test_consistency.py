"""Cross-Party consistency: a correct pair agrees; each corruption is one disagreement."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from registry.reports import DisagreementKind, find_disagreements
from tests.unit.application.support import Ledger
from tests.unit.reports.support import REPORTED_YEAR, actions, export

Document = dict[str, Any]
Traded = tuple[Ledger, Ledger]


def _first(document: Document, action_type: str, transfer_id: str) -> dict[str, Any]:
    return next(
        row
        for row in actions(document)
        if row["action_type"] == action_type and row["transfer_id"] == transfer_id
    )


def _acquisition(document: Document) -> dict[str, Any]:
    return _first(document, "acquisition", "T-CHE-GHA-1")


def _drop(action_type: str, transfer_id: str) -> Callable[[Document], None]:
    def corrupt(document: Document) -> None:
        actions(document).remove(_first(document, action_type, transfer_id))

    return corrupt


def _change(field: str, value: Any) -> Callable[[Document], None]:
    def corrupt(document: Document) -> None:
        _acquisition(document)[field] = value

    return corrupt


# Corruptions of the receiver's (GHA's) export or, where said, the sender's.
RECEIVER_CORRUPTIONS: dict[str, tuple[Callable[[Document], None], DisagreementKind]] = {
    "quantity": (_change("quantity", 399), DisagreementKind.QUANTITY),
    "date": (_change("action_date", "2026-03-02T00:00:01Z"), DisagreementKind.DATE),
    "last identifier": (
        _change("last_identifier", "CA0001-CHE01-CHE-000000399-2025"),
        DisagreementKind.BLOCK_IDENTIFIERS,
    ),
    "first identifier": (
        _change("first_identifier", "CA0001-CHE01-CHE-000000002-2025"),
        DisagreementKind.BLOCK_IDENTIFIERS,
    ),
    "acquisition dropped": (
        _drop("acquisition", "T-CHE-GHA-2"),
        DisagreementKind.MISSING_ACQUISITION,
    ),
    "onward transfer dropped": (
        _drop("transfer", "T-GHA-CHE-1"),
        DisagreementKind.MISSING_TRANSFER,
    ),
}


def test_a_correct_pair_agrees(traded: Traded) -> None:
    sender, receiver = traded
    assert find_disagreements([export(sender), export(receiver)]) == []


@pytest.mark.parametrize("kind", sorted(RECEIVER_CORRUPTIONS))
def test_each_disagreement_is_found(kind: str, traded: Traded) -> None:
    sender, receiver = traded
    corrupted = copy.deepcopy(export(receiver))
    corrupt, expected = RECEIVER_CORRUPTIONS[kind]
    corrupt(corrupted)
    found = find_disagreements([export(sender), corrupted])
    assert [disagreement.kind for disagreement in found] == [expected], found


def test_a_dropped_sender_row_is_a_missing_transfer(traded: Traded) -> None:
    sender, receiver = traded
    corrupted = copy.deepcopy(export(sender))
    _drop("first_transfer", "T-CHE-GHA-2")(corrupted)
    (found,) = find_disagreements([corrupted, export(receiver)])
    assert (found.kind, found.transfer_id) == (DisagreementKind.MISSING_TRANSFER, "T-CHE-GHA-2")
    assert (found.transferring_party, found.acquiring_party) == ("CHE", "GHA")


def test_several_corruptions_are_all_listed(traded: Traded) -> None:
    sender, receiver = traded
    corrupted = copy.deepcopy(export(receiver))
    _change("quantity", 1)(corrupted)
    _change("action_date", "2026-04-01T00:00:00Z")(corrupted)
    kinds = {d.kind for d in find_disagreements([export(sender), corrupted])}
    assert kinds == {DisagreementKind.QUANTITY, DisagreementKind.DATE}


def test_a_transfer_to_a_party_not_given_is_not_checked(traded: Traded) -> None:
    assert find_disagreements([export(traded[0])]) == []


def test_different_years_and_a_party_given_twice_are_reported(traded: Traded) -> None:
    sender, receiver = traded
    earlier = export(receiver, REPORTED_YEAR - 1)
    kinds = {d.kind for d in find_disagreements([export(sender), export(sender), earlier])}
    assert {DisagreementKind.DUPLICATE_PARTY, DisagreementKind.REPORTED_YEAR} <= kinds
