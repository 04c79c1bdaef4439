"""Building first-transfer notices and the ledgers they apply to, for the handler tests.

CHE authorises units for OIMP with first transfer = use or cancellation, sends
some abroad for OIMP (no first transfer yet), and later receives a notice that
they were used there (``registry.domain.first_transfer``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from registry.application.commands import (
    ApplyFirstTransferNotice,
    FinaliseOutgoingTransfer,
    ReserveForTransfer,
)
from registry.application.results import ReservationResult
from registry.domain.authorisations import FirstTransferDefinition, Purpose
from registry.domain.blocks import BlockSpec
from registry.domain.first_transfer import FirstTransferNotice, RetirementAction
from registry.domain.selection import QuantitySelection
from tests.unit.application.support import (
    LOA_ID,
    PARTNER,
    PARTY,
    Ledger,
    line,
    oimp_authorisation,
    set_up_registry,
)

USED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def oimp_ready(
    ledger: Ledger,
    definition: FirstTransferDefinition = FirstTransferDefinition.USE_OR_CANCELLATION,
) -> Ledger:
    """CHE with an NDC+OIMP LoA of ``definition`` and 100 units (1-100) in CHE-A."""
    set_up_registry(ledger, loa=oimp_authorisation(definition))
    ledger.issue("CHE-A", line(100))
    return ledger


def reserve_oimp(ledger: Ledger, transfer_id: str = "T1", quantity: int = 10) -> ReservationResult:
    result: ReservationResult = ledger.run(
        ReserveForTransfer(
            transfer_id=transfer_id,
            from_account_id="CHE-A",
            selection=QuantitySelection(quantity),
            acquiring_party=PARTNER,
            purpose=Purpose.OIMP,
        )
    )
    return result


def sent_abroad(ledger: Ledger, quantity: int = 10, **ready: Any) -> tuple[BlockSpec, ...]:
    """CHE sends ``quantity`` units to GHA for OIMP (committed); their specs as GHA got them."""
    oimp_ready(ledger, **ready)
    reserved = reserve_oimp(ledger, quantity=quantity)
    ledger.run(FinaliseOutgoingTransfer("T1"))
    return reserved.blocks


def notice(blocks: tuple[BlockSpec, ...], **overrides: Any) -> ApplyFirstTransferNotice:
    values: dict[str, Any] = {
        "notice_id": str(uuid4()),
        "authorising_party": PARTY,
        "noticing_party": PARTNER,
        "authorisation_id": LOA_ID,
        "authorisation_version": 1,
        "action": RetirementAction.USE_FOR_OIMP,
        "year": USED_AT.year,
        "occurred_at": USED_AT,
        "blocks": blocks,
    }
    values.update(overrides)
    return ApplyFirstTransferNotice(FirstTransferNotice(**values))


def spec_range(spec: BlockSpec, first: int, last: int) -> BlockSpec:
    return replace(spec, first_serial=first, last_serial=last)
