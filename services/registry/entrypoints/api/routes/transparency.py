"""The public transparency subset: holdings totals and the corresponding-adjustment ledger.

``/ca-ledger`` lists the entries as recorded; ``/ca-ledger/summary`` applies the
Party's NDC method to them (``registry.domain.ndc``), per year and metric.

No account, holder or entity appears here; anyone may read it without a token.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel

from registry.application import handlers
from registry.domain.adjustments import AdjustmentCause, balances_by_year_and_metric
from registry.domain.ndc import CaSummary
from registry.entrypoints.api.auth import ANONYMOUS_ALLOWED, PublicReader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.routes.ndc import NdcOut
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
    return LedgerOut(
        party=node.settings.party,
        balances=[
            BalanceOut(year=year_, metric=metric_, quantity=quantity)
            for (year_, metric_), quantity in balances_by_year_and_metric(entries).items()
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


class CaYearOut(BaseModel):
    """One year of one metric; see ``registry.domain.ndc.YearSummary`` and the README."""

    year: int
    first_transferred: int
    used: int
    annual_adjustment: int
    cumulative_adjustment: int
    applied_adjustment: Decimal
    indicative: bool
    trajectory_level: Decimal | None
    reported_emissions: Decimal | None
    adjusted_emissions_balance: Decimal | None


class CaMetricOut(BaseModel):
    metric: str
    period_total: int
    outside_period: int
    years: list[CaYearOut]


class CaSummaryOut(BaseModel):
    """The adjustments this Party reports, by the method of its configured NDC."""

    party: str
    ndc: NdcOut
    metrics: list[CaMetricOut]

    @classmethod
    def of(cls, summary: CaSummary, year: int | None, metric: str | None) -> CaSummaryOut:
        return cls(
            party=summary.party,
            ndc=NdcOut.of(summary.ndc),
            metrics=[
                CaMetricOut(
                    metric=found.metric,
                    period_total=found.period_total,
                    outside_period=found.outside_period,
                    years=[
                        CaYearOut(**{k: v for k, v in asdict(row).items() if k != "metric"})
                        for row in found.years
                        if year in (None, row.year)
                    ],
                )
                for found in summary.metrics
                if metric in (None, found.metric)
            ],
        )


@router.get("/ca-ledger/summary", response_model=CaSummaryOut, openapi_extra=ANONYMOUS_ALLOWED)
def corresponding_adjustments_summary(
    node: NodeDep,
    _: PublicReader,
    year: VintageParam | None = None,
    metric: AttributeText | None = None,
) -> CaSummaryOut:
    """Per year and metric: what the NDC's method makes of the ledger (404 if no NDC is set)."""
    return CaSummaryOut.of(execute(node, handlers.ca_summary), year, metric)
