"""What handlers return: plain frozen dataclasses of domain values."""

from __future__ import annotations

from dataclasses import dataclass

from registry.domain.blocks import BlockSpec
from registry.domain.errors import ReasonCode
from registry.domain.transfers import ReservationState


@dataclass(frozen=True, slots=True)
class MovementResult:
    """Units moved by an issuance, internal transfer, use or cancellation."""

    quantity: int
    blocks: tuple[BlockSpec, ...]


@dataclass(frozen=True, slots=True)
class ReservationResult:
    """An outgoing transfer's reservation.

    ``blocks`` are the deliveries exactly as the acquiring registry should record
    them (first transfer marked done); ``omge_blocks`` will be cancelled here at
    finalisation.
    """

    transfer_id: str
    state: ReservationState
    quantity: int
    omge_quantity: int
    first_transfer_quantity: int
    blocks: tuple[BlockSpec, ...]
    omge_blocks: tuple[BlockSpec, ...]


@dataclass(frozen=True, slots=True)
class IncomingResult:
    transfer_id: str
    state: ReservationState
    quantity: int
    blocks: tuple[BlockSpec, ...]


@dataclass(frozen=True, slots=True)
class IncomingValidation:
    """A receiving node's verdict: no reasons means it may vote yes."""

    transfer_id: str
    reasons: tuple[ReasonCode, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """Units by where they are, and where they came from; the two sums must agree."""

    held: int
    reserved: int
    incoming: int
    retired: int
    cancelled: int
    transferred_out: int
    issued: int
    acquired: int

    @property
    def accounted(self) -> int:
        return self.held + self.reserved + self.retired + self.cancelled + self.transferred_out

    @property
    def conserved(self) -> bool:
        return self.accounted == self.issued + self.acquired
