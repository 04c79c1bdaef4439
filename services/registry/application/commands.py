"""Typed commands, one per handler. Plain frozen dataclasses: easy to build from JSON."""

from __future__ import annotations

from dataclasses import dataclass

from registry.domain.accounts import AccountKind, AccountStatus
from registry.domain.approaches import CooperativeApproach
from registry.domain.authorisations import Authorisation, AuthorisationRef, Purpose
from registry.domain.blocks import BlockSpec
from registry.domain.ndc import NdcConfiguration
from registry.domain.selection import UnitSelection


@dataclass(frozen=True, slots=True)
class InitialiseRegistry:
    """Record this node's identity and open its four retirement accounts."""

    party: str
    registry_id: str


@dataclass(frozen=True, slots=True)
class SetTransferFreeze:
    frozen: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OpenAccount:
    account_id: str
    kind: AccountKind = AccountKind.HOLDING
    holder_entity_id: str | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class ChangeAccountStatus:
    account_id: str
    status: AccountStatus


@dataclass(frozen=True, slots=True)
class RegisterCooperativeApproach:
    approach: CooperativeApproach


@dataclass(frozen=True, slots=True)
class RecordAuthorisation:
    """Record a new version (version 1 for a new LoA) issued by this Party."""

    authorisation: Authorisation


@dataclass(frozen=True, slots=True)
class RevokeAuthorisation:
    """Revocation is a new version of the LoA with ``revoked`` set."""

    authorisation_id: str


@dataclass(frozen=True, slots=True)
class IssuanceLine:
    """One block to issue; the metric comes from the cooperative approach."""

    quantity: int
    cooperative_approach_id: str
    vintage: int
    sector: str
    activity_type: str
    mitigation_type: str
    gwp_values: str
    authorisation_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssueUnits:
    """Issue one block per line into a holding account, in one unit of work."""

    account_id: str
    lines: tuple[IssuanceLine, ...]


@dataclass(frozen=True, slots=True)
class TransferInternally:
    from_account_id: str
    to_account_id: str
    selection: UnitSelection


@dataclass(frozen=True, slots=True)
class UseTowardsNdc:
    account_id: str
    selection: UnitSelection
    # Within the NDC implementation period the node has configured (PUT /v1/ndc), if any.
    year_of_use: int


@dataclass(frozen=True, slots=True)
class UseForOimp:
    account_id: str
    selection: UnitSelection
    # The year the use is for (AEF table 3); None means the current year.
    year_of_use: int | None = None


@dataclass(frozen=True, slots=True)
class CancelVoluntarily:
    account_id: str
    selection: UnitSelection


@dataclass(frozen=True, slots=True)
class CancelForOmge:
    account_id: str
    selection: UnitSelection


@dataclass(frozen=True, slots=True)
class ReserveForTransfer:
    """Sender side: check and lock units (and the OMGE share) for a cross-border transfer."""

    transfer_id: str
    from_account_id: str
    selection: UnitSelection
    acquiring_party: str
    purpose: Purpose
    acquiring_entity: str | None = None
    # The LoA the transfer names: only units under it are picked.
    authorisation: AuthorisationRef | None = None


@dataclass(frozen=True, slots=True)
class FinaliseOutgoingTransfer:
    transfer_id: str


@dataclass(frozen=True, slots=True)
class ReleaseOutgoingReservation:
    transfer_id: str


@dataclass(frozen=True, slots=True)
class ValidateIncomingTransfer:
    """Receiver side: the checks a node runs before voting yes; changes nothing.

    ``authorisations`` are the transferring Party's LoA snapshots (current
    versions) for the authorisation ids the blocks name.
    """

    transfer_id: str
    transferring_party: str
    to_account_id: str
    blocks: tuple[BlockSpec, ...]
    authorisations: tuple[Authorisation, ...]
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class HoldIncomingTransfer:
    """Validate again and record the blocks as pending credit of the destination account."""

    transfer_id: str
    transferring_party: str
    to_account_id: str
    blocks: tuple[BlockSpec, ...]
    authorisations: tuple[Authorisation, ...]
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class FinaliseIncomingTransfer:
    transfer_id: str
    # The transfer's coordinator (its transferring Party): with the id, its key.
    coordinator_party: str


@dataclass(frozen=True, slots=True)
class ReleaseIncomingTransfer:
    transfer_id: str
    coordinator_party: str


@dataclass(frozen=True, slots=True)
class SetNdcConfiguration:
    """Record a new version of this Party's NDC configuration (type, period, method)."""

    configuration: NdcConfiguration


Command = (
    InitialiseRegistry
    | SetTransferFreeze
    | OpenAccount
    | ChangeAccountStatus
    | RegisterCooperativeApproach
    | RecordAuthorisation
    | RevokeAuthorisation
    | IssueUnits
    | TransferInternally
    | UseTowardsNdc
    | UseForOimp
    | CancelVoluntarily
    | CancelForOmge
    | ReserveForTransfer
    | FinaliseOutgoingTransfer
    | ReleaseOutgoingReservation
    | ValidateIncomingTransfer
    | HoldIncomingTransfer
    | FinaliseIncomingTransfer
    | ReleaseIncomingTransfer
    | SetNdcConfiguration
)
