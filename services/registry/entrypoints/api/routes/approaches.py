"""Cooperative approaches this Party takes part in."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, StrictBool

from registry.application import handlers
from registry.application.commands import RegisterCooperativeApproach
from registry.domain.approaches import GHG_METRIC, CooperativeApproach
from registry.domain.errors import DomainError, ReasonCode
from registry.entrypoints.api.auth import Operator, Reader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import (
    AttributeText,
    CooperativeApproachId,
    Name,
    PartyCode,
    RequestModel,
    Vintage,
)

router = APIRouter(prefix="/cooperative-approaches", tags=["cooperative approaches"])

# A bilateral approach has two Parties; the largest plurilateral ones a few dozen.
PARTICIPATING_PARTIES_MAX = 200
COVERED_ATTRIBUTES_MAX = 500
# A share is a fraction below one; ten digits say more than any agreement does, and
# fit the column that stores it.
OMGE_SHARE_DIGITS_MAX = 10
OMGE_SHARE_INTEGER_DIGITS_MAX = 2


class ApproachIn(RequestModel):
    cooperative_approach_id: CooperativeApproachId
    participating_parties: list[PartyCode] = Field(
        min_length=2, max_length=PARTICIPATING_PARTIES_MAX
    )
    vintage_from: Vintage
    vintage_to: Vintage
    in_force_from: date
    in_force_until: date | None = None
    sectors: list[AttributeText] = Field(default_factory=list, max_length=COVERED_ATTRIBUTES_MAX)
    activity_types: list[AttributeText] = Field(
        default_factory=list, max_length=COVERED_ATTRIBUTES_MAX
    )
    metric: AttributeText = GHG_METRIC
    metric_higher_is_better: StrictBool = False
    omge_share: Decimal | None = Field(
        default=None,
        # Room for a few integer digits, so "1.5" reaches the domain's own refusal.
        max_digits=OMGE_SHARE_DIGITS_MAX + OMGE_SHARE_INTEGER_DIGITS_MAX,
        decimal_places=OMGE_SHARE_DIGITS_MAX,
        description="e.g. 0.02 for 2 %",
    )
    name: Name = ""
    tco2e_per_unit: Decimal | None = Field(
        default=None, description="non-GHG metrics only: tCO2e per unit, the AEF conversion factor"
    )

    def to_domain(self) -> CooperativeApproach:
        return CooperativeApproach(
            cooperative_approach_id=self.cooperative_approach_id,
            participating_parties=frozenset(self.participating_parties),
            vintage_from=self.vintage_from,
            vintage_to=self.vintage_to,
            in_force_from=self.in_force_from,
            in_force_until=self.in_force_until,
            sectors=frozenset(self.sectors),
            activity_types=frozenset(self.activity_types),
            metric=self.metric,
            metric_higher_is_better=self.metric_higher_is_better,
            omge_share=self.omge_share,
            name=self.name,
            tco2e_per_unit=self.tco2e_per_unit,
        )


class ApproachOut(BaseModel):
    cooperative_approach_id: str
    participating_parties: list[str]
    vintage_from: int
    vintage_to: int
    in_force_from: date
    in_force_until: date | None
    sectors: list[str]
    activity_types: list[str]
    metric: str
    metric_higher_is_better: bool
    omge_share: Decimal | None
    name: str
    tco2e_per_unit: Decimal | None = None

    @classmethod
    def of(cls, approach: CooperativeApproach) -> ApproachOut:
        return cls(
            cooperative_approach_id=approach.cooperative_approach_id,
            participating_parties=sorted(approach.participating_parties),
            vintage_from=approach.vintage_from,
            vintage_to=approach.vintage_to,
            in_force_from=approach.in_force_from,
            in_force_until=approach.in_force_until,
            sectors=sorted(approach.sectors),
            activity_types=sorted(approach.activity_types),
            metric=approach.metric,
            metric_higher_is_better=approach.metric_higher_is_better,
            omge_share=approach.omge_share,
            name=approach.name,
            tco2e_per_unit=approach.tco2e_per_unit,
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApproachOut)
def register_approach(body: ApproachIn, node: NodeDep, _: Operator) -> ApproachOut:
    command = RegisterCooperativeApproach(body.to_domain())
    return ApproachOut.of(execute(node, handlers.register_cooperative_approach, command))


@router.get("", response_model=list[ApproachOut])
def list_approaches(node: NodeDep, _: Reader) -> list[ApproachOut]:
    approaches = execute(node, handlers.list_cooperative_approaches)
    return [ApproachOut.of(approach) for approach in approaches]


@router.get("/{cooperative_approach_id}", response_model=ApproachOut)
def get_approach(
    cooperative_approach_id: CooperativeApproachId, node: NodeDep, _: Reader
) -> ApproachOut:
    for approach in execute(node, handlers.list_cooperative_approaches):
        if approach.cooperative_approach_id == cooperative_approach_id:
            return ApproachOut.of(approach)
    raise DomainError(
        ReasonCode.UNKNOWN_COOPERATIVE_APPROACH,
        f"cooperative approach {cooperative_approach_id} is not registered here",
    )
