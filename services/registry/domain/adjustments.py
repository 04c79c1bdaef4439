"""The corresponding-adjustment ledger: per Party, per year, per metric.

A first transfer adds the units to the transferring Party's balance for the
vintage year; use towards an NDC subtracts them from the using Party's balance
for the year of use. A non-GHG metric keeps its own account, with the sign
reversed when a higher value of the indicator is better.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from registry.domain.approaches import CooperativeApproach
from registry.domain.blocks import SerialBlock


class AdjustmentCause(StrEnum):
    FIRST_TRANSFER = "FIRST_TRANSFER"
    USE_TOWARDS_NDC = "USE_TOWARDS_NDC"


@dataclass(frozen=True, slots=True)
class CorrespondingAdjustment:
    """One entry; ``quantity`` is signed as it applies to the Party's balance."""

    party: str
    year: int
    metric: str
    quantity: int
    cause: AdjustmentCause
    first_identifier: str
    last_identifier: str
    recorded_at: datetime
    transfer_id: str | None = None


def _signed(quantity: int, approach: CooperativeApproach) -> int:
    return -quantity if approach.metric_higher_is_better else quantity


def first_transfer_adjustment(
    party: str,
    block: SerialBlock,
    approach: CooperativeApproach,
    *,
    at: datetime,
    transfer_id: str | None = None,
) -> CorrespondingAdjustment:
    """The transferring Party adds the units, for their vintage year."""
    return CorrespondingAdjustment(
        party=party,
        year=block.attributes.vintage,
        metric=block.attributes.metric,
        quantity=_signed(block.quantity, approach),
        cause=AdjustmentCause.FIRST_TRANSFER,
        first_identifier=block.first_identifier,
        last_identifier=block.last_identifier,
        recorded_at=at,
        transfer_id=transfer_id,
    )


def use_adjustment(
    party: str,
    block: SerialBlock,
    approach: CooperativeApproach,
    *,
    year_of_use: int,
    at: datetime,
) -> CorrespondingAdjustment:
    """The using Party subtracts the units, for the year of use."""
    return CorrespondingAdjustment(
        party=party,
        year=year_of_use,
        metric=block.attributes.metric,
        quantity=-_signed(block.quantity, approach),
        cause=AdjustmentCause.USE_TOWARDS_NDC,
        first_identifier=block.first_identifier,
        last_identifier=block.last_identifier,
        recorded_at=at,
    )


def balances_by_year_and_metric(
    entries: Iterable[CorrespondingAdjustment],
) -> dict[tuple[int, str], int]:
    """The ledger's balance per (year, metric): the sum of the signed entries, sorted.

    This is the ledger as recorded; what a Party applies under its NDC's method
    is ``registry.domain.ndc.summarise``.
    """
    sums: defaultdict[tuple[int, str], int] = defaultdict(int)
    for entry in entries:
        sums[(entry.year, entry.metric)] += entry.quantity
    return dict(sorted(sums.items()))


def use_adjustment_if_itmo(
    party: str,
    block: SerialBlock,
    approach: CooperativeApproach,
    *,
    year_of_use: int,
    at: datetime,
) -> CorrespondingAdjustment | None:
    """Use towards an NDC adjusts only ITMOs (units first transferred); a Party's own
    never-transferred units used at home change no balance, as they were never added."""
    if not block.attributes.first_transfer_done:
        return None
    return use_adjustment(party, block, approach, year_of_use=year_of_use, at=at)
