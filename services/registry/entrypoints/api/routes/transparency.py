"""The public transparency subset: holdings totals and the corresponding-adjustment ledger.

No account, holder or entity appears here; anyone may read it without a token.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from registry.application import handlers
from registry.domain.adjustments import AdjustmentCause
from registry.entrypoints.api.auth import ANONYMOUS_ALLOWED, PublicReader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import AttributeText, CooperativeApproachId, VintageParam

router = APIRouter(tags=["transparency"])


class HoldingsTotalOut(BaseModel):
    cooperative_approach_id: str
    vintage: int
    metric: str
    held: int
    retired: int
    cancelled: int


class AdjustmentOut(BaseModel):
    year: int
    metric: str
    quantity: int
    cause: AdjustmentCause
    first_identifier: str
    last_identifier: str
    recorded_at: datetime
    transfer_id: str | None


class BalanceOut(BaseModel):
    year: int
    metric: str
    quantity: int


class LedgerOut(BaseModel):
    """This Party's corresponding adjustments: entries and per-year, per-metric balances."""

    party: str
    balances: list[BalanceOut]
    entries: list[AdjustmentOut]


@router.get(
    "/holdings/totals", response_model=list[HoldingsTotalOut], openapi_extra=ANONYMOUS_ALLOWED
)
def holdings_totals(
    node: NodeDep,
    _: PublicReader,
    cooperative_approach_id: CooperativeApproachId | None = None,
    vintage: VintageParam | None = None,
) -> list[HoldingsTotalOut]:
    totals = execute(node, handlers.holdings_totals, cooperative_approach_id, vintage)
    return [HoldingsTotalOut(**asdict(total)) for total in totals]


@router.get("/ca-ledger", response_model=LedgerOut, openapi_extra=ANONYMOUS_ALLOWED)
def corresponding_adjustments(
    node: NodeDep,
    _: PublicReader,
    year: VintageParam | None = None,
    metric: AttributeText | None = None,
) -> LedgerOut:
    entries = [
        entry
        for entry in execute(node, handlers.adjustments_for_party, node.settings.party)
        if year in (None, entry.year) and metric in (None, entry.metric)
    ]
    balances: defaultdict[tuple[int, str], int] = defaultdict(int)
    for entry in entries:
        balances[(entry.year, entry.metric)] += entry.quantity
    return LedgerOut(
        party=node.settings.party,
        balances=[
            BalanceOut(year=year_, metric=metric_, quantity=quantity)
            for (year_, metric_), quantity in sorted(balances.items())
        ],
        entries=[
            AdjustmentOut(
                year=entry.year,
                metric=entry.metric,
                quantity=entry.quantity,
                cause=entry.cause,
                first_identifier=entry.first_identifier,
                last_identifier=entry.last_identifier,
                recorded_at=entry.recorded_at,
                transfer_id=entry.transfer_id,
            )
            for entry in entries
        ],
    )
