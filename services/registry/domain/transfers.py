"""Reservations that lock units for a cross-border transfer until it commits or aborts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from registry.domain.authorisations import Purpose
from registry.domain.errors import DomainError, ReasonCode

TRANSFER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_TRANSFER_ID = re.compile(TRANSFER_ID_PATTERN)


def check_transfer_id(transfer_id: str) -> list[ReasonCode]:
    return [] if _TRANSFER_ID.fullmatch(transfer_id) else [ReasonCode.MALFORMED_IDENTIFIER]


class TransferDirection(StrEnum):
    OUTGOING = "OUTGOING"
    INCOMING = "INCOMING"


class ReservationState(StrEnum):
    PENDING = "PENDING"
    FINALISED = "FINALISED"
    RELEASED = "RELEASED"


@dataclass(frozen=True, slots=True)
class Reservation:
    """This registry's side of one cross-border transfer.

    Outgoing: ``account_id`` is the sending account and ``counterparty_party`` the
    acquiring Party. Incoming: ``account_id`` is the destination account and
    ``counterparty_party`` the transferring Party.
    """

    transfer_id: str
    direction: TransferDirection
    account_id: str
    counterparty_party: str
    # With ``transfer_id``, the key of the transfer across the federation: ids are
    # drawn by coordinators, so only the pair names one transfer.
    coordinator_party: str
    purpose: Purpose
    quantity: int
    omge_quantity: int
    first_transfer_quantity: int
    state: ReservationState
    created_at: datetime
    updated_at: datetime
    acquiring_entity: str | None = None

    def finalised(self, at: datetime) -> Reservation:
        self._check_pending()
        return replace(self, state=ReservationState.FINALISED, updated_at=at)

    def released(self, at: datetime) -> Reservation:
        self._check_pending()
        return replace(self, state=ReservationState.RELEASED, updated_at=at)

    def _check_pending(self) -> None:
        if self.state is ReservationState.FINALISED:
            raise DomainError(
                ReasonCode.TRANSFER_ALREADY_FINALISED,
                f"transfer {self.transfer_id} is already finalised",
            )
        if self.state is ReservationState.RELEASED:
            raise DomainError(
                ReasonCode.TRANSFER_ALREADY_RELEASED,
                f"transfer {self.transfer_id} was already released",
            )


@dataclass(frozen=True, slots=True)
class TransferIdClaim:
    """What this node already knows under one transfer id: who coordinates it, is it over."""

    coordinator_party: str
    final: bool


def check_transfer_id_claims(
    coordinator_party: str, claims: Iterable[TransferIdClaim]
) -> list[ReasonCode]:
    """May a PREPARE of ``coordinator_party`` start a transfer under an id this node knows?

    A transfer is the pair (transfer id, coordinator). A node that held units,
    voted, or kept a decision under one coordinator must never let another
    coordinator's messages reach that record: the first claim of an id at a node
    keeps it, and a finished transfer's id is never reused. A claim by the same
    coordinator that is still open is the same transfer, repeated: no refusal.
    """
    reasons: list[ReasonCode] = []
    for claim in claims:
        if claim.final:
            reasons.append(ReasonCode.TRANSFER_ALREADY_FINAL)
        elif claim.coordinator_party != coordinator_party:
            reasons.append(ReasonCode.TRANSFER_ID_CLAIMED)
    return list(dict.fromkeys(reasons))


def reservation_claim(reservation: Reservation) -> TransferIdClaim:
    return TransferIdClaim(
        reservation.coordinator_party, reservation.state is not ReservationState.PENDING
    )
