"""What handlers return: plain frozen dataclasses of domain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry.domain.accounts import Account
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditEntry
from registry.domain.authorisations import Authorisation
from registry.domain.blocks import BlockSpec
from registry.domain.errors import ReasonCode
from registry.domain.ndc import NdcRecord
from registry.domain.registry_node import RegistryNode
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


@dataclass(frozen=True, slots=True)
class HoldingsTotal:
    """Units of one class (approach, vintage, metric) summed over every account."""

    cooperative_approach_id: str
    vintage: int
    metric: str
    held: int
    retired: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class ReportSource:
    """What the AEF of one reported year is built from, read in one transaction.

    ``audit`` holds every entry before the end of the reported year: the year's
    own entries are its actions, and replaying all of them gives the holdings at
    the year's end. ``authorisations`` are every version of this Party's LoAs.
    """

    node: RegistryNode
    reported_year: int
    read_at: datetime
    accounts: tuple[Account, ...]
    approaches: tuple[CooperativeApproach, ...]
    authorisations: tuple[Authorisation, ...]
    audit: tuple[AuditEntry, ...]
    # The current NDC configuration, if the Party has set one (AEF table 1).
    ndc: NdcRecord | None = None
