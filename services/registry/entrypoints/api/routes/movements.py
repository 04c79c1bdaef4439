"""Commands that move units inside this registry: issue, transfer, use, cancel.

Each answers with the blocks that moved, as first and last unique
identifiers, so the operator can quote them in the audit trail.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from fastapi import APIRouter, status
from pydantic import Field, model_validator

from registry.application import handlers
from registry.application.commands import (
    CancelForOmge,
    CancelVoluntarily,
    IssuanceLine,
    IssueUnits,
    TransferInternally,
    UseForOimp,
    UseTowardsNdc,
)
from registry.domain.authorisations import Purpose
from registry.entrypoints.api.auth import Operator
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import (
    AccountId,
    AttributeText,
    AuthorisationId,
    CooperativeApproachId,
    MovementOut,
    Quantity,
    RequestModel,
    SelectsUnits,
    Vintage,
)

router = APIRouter(tags=["movements"])

# One issuance request is one transaction; the handler has its own, larger
# bound for batch imports, the API keeps requests small enough to answer fast.
ISSUANCE_LINES_PER_REQUEST_MAX = 1_000


class IssuanceLineIn(RequestModel):
    quantity: Quantity
    cooperative_approach_id: CooperativeApproachId
    vintage: Vintage
    sector: AttributeText
    activity_type: AttributeText
    mitigation_type: AttributeText
    gwp_values: AttributeText = Field(description="e.g. AR5 100-year")
    authorisation_id: AuthorisationId | None = None

    def to_command(self) -> IssuanceLine:
        return IssuanceLine(
            quantity=self.quantity,
            cooperative_approach_id=self.cooperative_approach_id,
            vintage=self.vintage,
            sector=self.sector,
            activity_type=self.activity_type,
            mitigation_type=self.mitigation_type,
            gwp_values=self.gwp_values,
            authorisation_id=self.authorisation_id,
        )


class IssuanceIn(RequestModel):
    account_id: AccountId
    lines: list[IssuanceLineIn] = Field(min_length=1, max_length=ISSUANCE_LINES_PER_REQUEST_MAX)


class InternalTransferIn(SelectsUnits):
    from_account_id: AccountId
    to_account_id: AccountId


class UseIn(SelectsUnits):
    account_id: AccountId
    purpose: Purpose
    year_of_use: Vintage | None = Field(
        default=None,
        description=(
            "the year the use is for: required for NDC use (the year the adjustment "
            "applies to); for OIMP use, the current year when left out"
        ),
    )

    @model_validator(mode="after")
    def _year_for_ndc(self) -> Self:
        if self.purpose is Purpose.NDC and self.year_of_use is None:
            raise ValueError("use towards an NDC needs year_of_use")
        return self


class CancellationKind(StrEnum):
    VOLUNTARY = "VOLUNTARY"
    OMGE = "OMGE"


class CancellationIn(SelectsUnits):
    account_id: AccountId
    kind: CancellationKind


@router.post("/issuances", status_code=status.HTTP_201_CREATED, response_model=MovementOut)
def issue(body: IssuanceIn, node: NodeDep, _: Operator) -> MovementOut:
    command = IssueUnits(body.account_id, tuple(line.to_command() for line in body.lines))
    return MovementOut.of(execute(node, handlers.issue_units, command))


@router.post("/internal-transfers", response_model=MovementOut)
def transfer_internally(body: InternalTransferIn, node: NodeDep, _: Operator) -> MovementOut:
    command = TransferInternally(body.from_account_id, body.to_account_id, body.selection())
    return MovementOut.of(execute(node, handlers.transfer_internally, command))


@router.post("/uses", response_model=MovementOut)
def use(body: UseIn, node: NodeDep, _: Operator) -> MovementOut:
    if body.purpose is Purpose.NDC and body.year_of_use is not None:
        ndc = UseTowardsNdc(body.account_id, body.selection(), body.year_of_use)
        return MovementOut.of(execute(node, handlers.use_towards_ndc, ndc))
    oimp = UseForOimp(body.account_id, body.selection(), body.year_of_use)
    return MovementOut.of(execute(node, handlers.use_for_oimp, oimp))


@router.post("/cancellations", response_model=MovementOut)
def cancel(body: CancellationIn, node: NodeDep, _: Operator) -> MovementOut:
    if body.kind is CancellationKind.OMGE:
        omge = CancelForOmge(body.account_id, body.selection())
        return MovementOut.of(execute(node, handlers.cancel_for_omge, omge))
    voluntary = CancelVoluntarily(body.account_id, body.selection())
    return MovementOut.of(execute(node, handlers.cancel_voluntarily, voluntary))
