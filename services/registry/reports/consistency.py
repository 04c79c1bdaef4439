"""Cross-Party consistency: what one Party reports as a transfer, its counterpart must report
as an acquisition of the same blocks, quantity and date (DOMAIN.md, "Reports"), of the same
metric and vintage, and both must agree whether it was the units' first transfer.

Pure: it takes two or more Parties' AEF JSON documents and lists every
disagreement. A transfer to a Party whose document is not given is not checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from registry.reports.aef import ActionType, Table

SENDER_ACTIONS = frozenset({ActionType.FIRST_TRANSFER.value, ActionType.TRANSFER.value})
RECEIVER_ACTIONS = frozenset({ActionType.ACQUISITION.value})
# "The same date": the calendar day in UTC, the first ten characters of ISO 8601.
ISO_DATE_LENGTH = 10


class DisagreementKind(StrEnum):
    MISSING_ACQUISITION = "missing_acquisition"
    MISSING_TRANSFER = "missing_transfer"
    BLOCK_IDENTIFIERS = "block_identifiers"
    QUANTITY = "quantity"
    DATE = "date"
    FIRST_TRANSFER = "first_transfer"
    METRIC = "metric"
    VINTAGE = "vintage"
    DUPLICATE_PARTY = "duplicate_party"
    REPORTED_YEAR = "reported_year"


@dataclass(frozen=True, slots=True)
class Disagreement:
    kind: DisagreementKind
    transferring_party: str | None
    acquiring_party: str | None
    transfer_id: str | None
    first_identifier: str | None
    message: str

    def __str__(self) -> str:
        route = f"{self.transferring_party}->{self.acquiring_party}"
        return f"{self.kind.value} {route} transfer {self.transfer_id}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Side:
    """One Party's row of one block of one transfer."""

    first_identifier: str
    last_identifier: str
    quantity: Any
    action_date: str
    # Whether the row says this transfer was the units' first transfer: a sender's
    # first_transfer row is, a sender's transfer row is not, an acquisition says so.
    first_transfer: Any
    metric: Any
    vintage: Any


def find_disagreements(documents: Sequence[dict[str, Any]]) -> list[Disagreement]:
    """Every transfer between two of the given Parties whose two sides disagree."""
    by_party: dict[str, dict[str, Any]] = {}
    problems: list[Disagreement] = []
    years = set()
    for document in documents:
        submission = document["tables"][Table.SUBMISSION.value][0]
        party = submission["party"]
        years.add(submission["reported_year"])
        if party in by_party:
            problems.append(
                Disagreement(
                    DisagreementKind.DUPLICATE_PARTY, party, None, None, None, "given twice"
                )
            )
        by_party[party] = document
    if len(years) > 1:
        problems.append(
            Disagreement(
                DisagreementKind.REPORTED_YEAR,
                None,
                None,
                None,
                None,
                f"the documents report different years {sorted(years)}",
            )
        )
    sent = _sides(by_party, SENDER_ACTIONS, "acquiring_party")
    received = _sides(by_party, RECEIVER_ACTIONS, "transferring_party")
    for route_key in sorted(set(sent) | set(received)):
        transferring, acquiring, _ = route_key
        if transferring not in by_party or acquiring not in by_party:
            continue
        problems.extend(
            _compare_transfer(route_key, sent.get(route_key, []), received.get(route_key, []))
        )
    return problems


RouteKey = tuple[str, str, str]


def _first_transfer(row: dict[str, Any]) -> Any:
    if row.get("action_type") == ActionType.ACQUISITION.value:
        return row.get("first_transfer")
    return row.get("action_type") == ActionType.FIRST_TRANSFER.value


_DisagreementAt = Callable[[DisagreementKind, str | None, str], Disagreement]


def _sides(
    by_party: dict[str, dict[str, Any]], actions: frozenset[str], counterparty_field: str
) -> dict[RouteKey, list[_Side]]:
    """Rows of the given action types, per (transferring, acquiring, transfer id)."""
    sides: defaultdict[RouteKey, list[_Side]] = defaultdict(list)
    for party, document in by_party.items():
        for row in document["tables"][Table.ACTIONS.value]:
            if row.get("action_type") not in actions or not row.get("transfer_id"):
                continue
            counterparty = row.get(counterparty_field)
            if not counterparty:
                continue
            transferring, acquiring = (
                (party, counterparty) if actions is SENDER_ACTIONS else (counterparty, party)
            )
            sides[(transferring, acquiring, row["transfer_id"])].append(
                _Side(
                    row.get("first_identifier", ""),
                    row.get("last_identifier", ""),
                    row.get("quantity"),
                    str(row.get("action_date", "")),
                    _first_transfer(row),
                    row.get("metric"),
                    row.get("vintage"),
                )
            )
    return sides


def _compare_transfer(
    route_key: RouteKey, sender: list[_Side], receiver: list[_Side]
) -> list[Disagreement]:
    transferring, acquiring, transfer_id = route_key

    def disagreement(kind: DisagreementKind, first: str | None, message: str) -> Disagreement:
        return Disagreement(kind, transferring, acquiring, transfer_id, first, message)

    problems: list[Disagreement] = []
    receiver_by_first = {side.first_identifier: side for side in receiver}
    unmatched_sender: list[_Side] = []
    for side in sorted(sender, key=lambda s: s.first_identifier):
        other = receiver_by_first.pop(side.first_identifier, None)
        if other is None:
            unmatched_sender.append(side)
            continue
        problems.extend(_compare_block(side, other, disagreement))
    unmatched_receiver = sorted(receiver_by_first.values(), key=lambda s: s.first_identifier)
    # Leftovers on both sides, paired in serial order, are the same block reported
    # under different identifiers; what is left after that has no counterpart at all.
    for side, other in zip(unmatched_sender, unmatched_receiver, strict=False):
        problems.append(
            disagreement(
                DisagreementKind.BLOCK_IDENTIFIERS,
                side.first_identifier,
                f"sent {side.first_identifier}..{side.last_identifier}, "
                f"acquired {other.first_identifier}..{other.last_identifier}",
            )
        )
    paired = min(len(unmatched_sender), len(unmatched_receiver))
    for side in unmatched_sender[paired:]:
        problems.append(
            disagreement(
                DisagreementKind.MISSING_ACQUISITION,
                side.first_identifier,
                f"{acquiring} reports no acquisition of {side.first_identifier}..",
            )
        )
    for other in unmatched_receiver[paired:]:
        problems.append(
            disagreement(
                DisagreementKind.MISSING_TRANSFER,
                other.first_identifier,
                f"{transferring} reports no transfer of {other.first_identifier}..",
            )
        )
    return problems


def _compare_block(
    sent: _Side, acquired: _Side, disagreement: _DisagreementAt
) -> list[Disagreement]:
    problems: list[Disagreement] = []
    first = sent.first_identifier
    if sent.last_identifier != acquired.last_identifier:
        problems.append(
            disagreement(
                DisagreementKind.BLOCK_IDENTIFIERS,
                first,
                f"last identifier sent {sent.last_identifier}, acquired {acquired.last_identifier}",
            )
        )
    if sent.quantity != acquired.quantity:
        problems.append(
            disagreement(
                DisagreementKind.QUANTITY,
                first,
                f"quantity sent {sent.quantity}, acquired {acquired.quantity}",
            )
        )
    for kind, name, sent_value, acquired_value in (
        (
            DisagreementKind.FIRST_TRANSFER,
            "first transfer",
            sent.first_transfer,
            acquired.first_transfer,
        ),
        (DisagreementKind.METRIC, "metric", sent.metric, acquired.metric),
        (DisagreementKind.VINTAGE, "vintage", sent.vintage, acquired.vintage),
    ):
        if sent_value != acquired_value:
            problems.append(
                disagreement(kind, first, f"{name} sent {sent_value}, acquired {acquired_value}")
            )
    if sent.action_date[:ISO_DATE_LENGTH] != acquired.action_date[:ISO_DATE_LENGTH]:
        problems.append(
            disagreement(
                DisagreementKind.DATE,
                first,
                f"sent on {sent.action_date}, acquired on {acquired.action_date}",
            )
        )
    return problems
