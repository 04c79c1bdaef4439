"""The Party's NDC configuration: ``PUT /v1/ndc`` (operators) and ``GET /v1/ndc``.

What the corresponding-adjustment methods need (``registry.domain.ndc``): the
NDC's type and implementation period, the target year and method of a
single-year NDC, its metrics, an indicative trajectory, and optionally the
emissions the Party reports. Each PUT records a new version; the rules that
refuse a configuration live in the domain, and come back as 422 with their
reason code. The summary these figures feed is ``GET /v1/ca-ledger/summary``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from registry.application import handlers
from registry.application.commands import SetNdcConfiguration
from registry.domain.approaches import GHG_METRIC
from registry.domain.ndc import (
    NDC_LEVELS_MAX,
    NDC_METRICS_MAX,
    SUMMARY_DECIMAL_PLACES,
    CaMethod,
    NdcConfiguration,
    NdcLevel,
    NdcRecord,
    NdcType,
)
from registry.entrypoints.api.auth import Operator, Reader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import AttributeText, RequestModel, Vintage

router = APIRouter(prefix="/ndc", tags=["NDC"])

# A national total in tCO2e has at most 11 integer digits (about 10^10 t);
# 15 leaves room for any non-GHG metric, plus the summary's decimal places.
LEVEL_DIGITS_MAX = 15 + SUMMARY_DECIMAL_PLACES

Level = Annotated[
    Decimal, Field(max_digits=LEVEL_DIGITS_MAX, decimal_places=SUMMARY_DECIMAL_PLACES)
]


class LevelIn(RequestModel):
    year: Vintage
    metric: AttributeText = GHG_METRIC
    level: Level

    def to_domain(self) -> NdcLevel:
        return NdcLevel(self.year, self.metric, self.level)


class NdcIn(RequestModel):
    ndc_type: NdcType
    period_start: Vintage
    period_end: Vintage
    target_year: Vintage | None = Field(
        default=None, description="single-year NDC: the last year of the period"
    )
    method: CaMethod = Field(
        description="ANNUAL for a multi-year NDC; AVERAGING or TRAJECTORY for a single-year one"
    )
    metrics: list[AttributeText] = Field(default=[GHG_METRIC], max_length=NDC_METRICS_MAX)
    trajectory: list[LevelIn] = Field(
        default_factory=list,
        max_length=NDC_LEVELS_MAX,
        description="one level per year of the period and metric (TRAJECTORY: required)",
    )
    reported_emissions: list[LevelIn] = Field(
        default_factory=list,
        max_length=NDC_LEVELS_MAX,
        description="optional: the Party's reported emissions (or metric level), any years",
    )

    def to_domain(self) -> NdcConfiguration:
        return NdcConfiguration(
            ndc_type=self.ndc_type,
            period_start=self.period_start,
            period_end=self.period_end,
            target_year=self.target_year,
            method=self.method,
            metrics=tuple(self.metrics),
            trajectory=tuple(level.to_domain() for level in self.trajectory),
            reported_emissions=tuple(level.to_domain() for level in self.reported_emissions),
        )


class LevelOut(BaseModel):
    year: int
    metric: str
    level: Decimal

    @classmethod
    def of(cls, level: NdcLevel) -> LevelOut:
        return cls(year=level.year, metric=level.metric, level=level.level)


class NdcOut(BaseModel):
    party: str
    version: int
    recorded_at: datetime
    ndc_type: NdcType
    period_start: int
    period_end: int
    target_year: int | None
    method: CaMethod | None
    metrics: list[str]
    trajectory: list[LevelOut]
    reported_emissions: list[LevelOut]

    @classmethod
    def of(cls, record: NdcRecord) -> NdcOut:
        config = record.configuration
        return cls(
            party=record.party,
            version=record.version,
            recorded_at=record.recorded_at,
            ndc_type=config.ndc_type,
            period_start=config.period_start,
            period_end=config.period_end,
            target_year=config.target_year,
            method=config.method,
            metrics=list(config.metrics),
            trajectory=[
                LevelOut(year=x.year, metric=x.metric, level=x.level) for x in config.trajectory
            ],
            reported_emissions=[
                LevelOut(year=x.year, metric=x.metric, level=x.level)
                for x in config.reported_emissions
            ],
        )


@router.put("", response_model=NdcOut)
def set_ndc(body: NdcIn, node: NodeDep, _: Operator) -> NdcOut:
    record = execute(node, handlers.set_ndc_configuration, SetNdcConfiguration(body.to_domain()))
    return NdcOut.of(record)


@router.get("", response_model=NdcOut)
def get_ndc(node: NodeDep, _: Reader) -> NdcOut:
    return NdcOut.of(execute(node, handlers.ndc_configuration))
